"""The outside-in component inside the collector: prober rounds -> verdicts -> engine + metrics.

Started by ``outside_ctx`` when ``outside.enabled`` is set. It owns the raw sockets, the prober
and the monitor; after each round it keeps the report and verdicts for the metrics, and hands one
``OutsideReading`` per network (blocks up, of its watched blocks: ``outside.watch_per_network``)
to ``on_readings``: the detection
pipeline's engine, whose ``outside`` detector (``collector.detect.outside_in``) opens and
corroborates shutdowns with them.
A network that turns critical in a round is confirmed at once (``Prober.confirm``): a sample of
its dark blocks is probed again ``outside.confirm_after`` later, and the estimate goes to the
engine as a reading of its own, so the detector's second critical observation comes within a
minute of the first instead of a round later; a network that answers again (a burst of loss on
the path, ICMP newly filtered while TCP answers) breaks the streak instead.
"Turned critical" is the metrics' verdict (``OutsideMonitor``: blocks up below
``critical_below`` of the median of the network's history) now, after a look that was not
critical. That history is saved after each round (``save_history``, the store's
``outside.verdict_history``) and read back at start, like the engine's own detector state, so a
collector restarted with a saved history confirms a cut in its first rounds too; only a
collector without one (a first start, or a damaged document) waits ``min_history`` rounds.
The prober's watch sets are saved likewise (``save_prober``, the store's
``outside.prober_state``, ``collector.outside.prober_state``) and loaded before the first round
(``saved_prober``), so that round probes and reports the blocks watched before the restart
instead of waiting hours for discovery to find them again.
Without CAP_NET_RAW the component stays down (``kuzot_outside_up 0``, a logged error) and the
collector runs on.

Time: the rate bucket and the prober's round timing read the running event loop's clock (for
asyncio's loop, ``time.monotonic``), the clock its sleeps and timeouts follow; readings carry
``wall`` time. ``make_transport`` and ``wall`` exist so that ``bench/outside_latency.py`` can run
this service unchanged in virtual time against a simulated Internet; the collector leaves both
at their defaults (raw sockets, ``time.time``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from aiohttp import web

from collector.detect.outside import Level, OutsideParams
from collector.detect.outside_in import OutsideReading
from collector.outside import prober_state
from collector.outside.config import OutsideConfig, load_blocks
from collector.outside.hourly import HourlyShare
from collector.outside.pacer import TokenBucket
from collector.outside.prober import Confirmation, Prober, RoundReport
from collector.outside.sender import Clock, Counters, PacedSender, Scope
from collector.outside.signal import GroupVerdict, OutsideMonitor
from collector.outside.wire import RawTransport, SocketFactory, Target

log = logging.getLogger(__name__)


class OpenTransport(Protocol):
    """What ``run`` needs of a transport: ``open`` (``OSError`` when it cannot, e.g. no
    CAP_NET_RAW), ``probe``, ``close``. ``RawTransport`` is the one the collector uses."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    async def probe(self, target: Target, timeout: float) -> bool: ...


class OutsideService:
    """One prober on the configured blocks; state read by ``OutsideCollector`` at scrape."""

    def __init__(self, config: OutsideConfig, make_socket: SocketFactory = socket.socket,
                 on_readings: Callable[[list[OutsideReading]], None] | None = None,
                 params: OutsideParams | None = None,
                 make_transport: Callable[[], OpenTransport] | None = None,
                 wall: Clock = time.time, rng: random.Random | None = None) -> None:
        """``params``: the verdict's thresholds, the engine's ``detection.outside``, so the
        metrics and the events judge alike (IODA's defaults when None). ``make_transport``:
        raw sockets from ``make_socket`` when None. ``wall``: the time readings carry.
        ``rng``: where the prober draws its random orders (which addresses discovery tries
        first); a fresh one when None. A test that counts the blocks its lab's discovery
        finds gives a seeded one: a sample of a block's addresses can miss all its hosts."""
        self.config = config
        self.blocks, self.opt_out = load_blocks(config)
        self.params = params or OutsideParams()
        self.monitor = OutsideMonitor(self.params, config.history_points)
        self.on_readings = on_readings
        self._make_socket = make_socket
        self._make_transport = make_transport
        self._wall = wall
        self._rng = rng
        self.up = False
        self.problem: str | None = None
        self.counters = Counters()
        self.rounds = 0
        self.report: RoundReport | None = None
        self.verdicts: list[GroupVerdict] = []
        # Per (country, network): whether its latest look (round or confirmation) was critical.
        self._critical: dict[tuple[str, str], bool] = {}
        self.confirmations: dict[str, int] = {"dark": 0, "recovered": 0}
        self.last_confirmation: Confirmation | None = None
        self.prober: Prober | None = None
        # The hourly share of blocks up per network (the status page's chart), and where it
        # is saved after each round (the store's named state; None: kept in memory only).
        self.hourly = HourlyShare()
        self.save_hourly: Callable[[HourlyShare], Awaitable[None]] | None = None
        # Where the monitor's history (the verdicts' baseline) is saved after each round, so
        # that a restart does not lose it (None: kept in memory only).
        self.save_history: Callable[[OutsideMonitor], Awaitable[None]] | None = None
        # The prober's saved state (``collector.outside.prober_state``), loaded into the
        # prober before its first round, and where it is saved after each round (None: kept
        # in memory only), so that a restart keeps the watch sets and the first round
        # reports them.
        self.saved_prober: str | None = None
        self.save_prober: Callable[[Prober], Awaitable[None]] | None = None

    async def _round(self, report: RoundReport) -> None:
        self.rounds += 1
        self.report = report
        self.verdicts = self.monitor.observe(
            report, None if self.prober is None else self.prober.ready())
        if self.on_readings is not None:
            self.on_readings([OutsideReading(cc=v.group.country, asn=v.group.network,
                                             t=report.started, blocks_up=v.group.up,
                                             blocks_total=v.group.judged + v.group.unjudged)
                              for v in self.verdicts if v.group.network])
        for v in self.verdicts:
            if v.group.network and v.group.share_up is not None:
                self.hourly.add(v.group.country, v.group.network, report.started,
                                v.group.share_up)
        if self.save_hourly is not None:
            try:
                await self.save_hourly(self.hourly)
            except Exception:  # a store hiccup must not stop the prober; next round retries
                log.exception("could not save the outside-in hourly signal")
        if self.save_history is not None:
            try:
                await self.save_history(self.monitor)
            except Exception:  # likewise: the next round saves again
                log.exception("could not save the outside-in history")
        if self.save_prober is not None and self.prober is not None:
            try:
                await self.save_prober(self.prober)
            except Exception:  # likewise: the next round saves again
                log.exception("could not save the outside-in prober state")

    def _suspects(self, report: RoundReport) -> list[tuple[str, str]]:
        """Networks critical in this round whose previous look was not: confirm them now."""
        turned = []
        for item in self.verdicts:
            if not item.group.network:
                continue
            key = (item.group.country, item.group.network)
            critical = item.verdict.level is Level.CRITICAL
            if critical and not self._critical.get(key, False):
                turned.append(key)
            self._critical[key] = critical
        return turned

    async def _confirmed(self, result: Confirmation) -> None:
        key = (result.country, result.network)
        baseline = next((v.verdict.baseline for v in self.verdicts
                         if (v.group.country, v.group.network) == key), None)
        dark = baseline is not None and result.blocks_up < self.params.critical_below * baseline
        self._critical[key] = dark
        self.confirmations["dark" if dark else "recovered"] += 1
        self.last_confirmation = result
        log.info("outside-in confirmation of %s %s: %d of %d sampled dark blocks answer again "
                 "(%s)", result.country, result.network, result.recovered, result.sampled,
                 "still dark" if dark else "recovered")
        if self.on_readings is not None:
            self.on_readings([OutsideReading(cc=result.country, asn=result.network,
                                             t=result.started, blocks_up=result.blocks_up,
                                             blocks_total=result.blocks)])

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set; returns at once if the raw sockets cannot be opened."""
        transport = (RawTransport(self._make_socket) if self._make_transport is None
                     else self._make_transport())
        clock = asyncio.get_running_loop().time
        try:
            transport.open()
        except OSError as exc:
            self.problem = f"cannot open raw sockets: {exc}"
            log.error("outside-in probing is off: %s (needs CAP_NET_RAW)", self.problem)
            return
        try:
            sender = PacedSender(transport, Scope.of(self.blocks, self.opt_out),
                                 TokenBucket(rate=self.config.rate, burst=self.config.burst),
                                 max_in_flight=self.config.max_in_flight, clock=clock)
            self.counters = sender.counters
            prober = Prober(self.blocks, sender, self.config.prober_settings(), rng=self._rng,
                            clock=clock, wall=self._wall)
            try:
                restored = prober_state.load_json(prober, self.saved_prober)
            except ValueError as exc:
                restored = 0
                log.warning("starting the outside-in watch sets anew: %s", exc)
            self.saved_prober = None
            self.prober = prober
            self.up = True
            if restored:
                log.info("outside-in prober state of %d blocks restored", restored)
            log.info("outside-in probing %d blocks (watching %s per network) at up to %.1f "
                     "packets/s, a round every %.0f s", len(self.blocks),
                     self.config.watch_per_network or "all", self.config.rate,
                     self.config.round)
            await prober.run(self._round, stop, confirm=self._suspects,
                             on_confirm=self._confirmed)
        finally:
            self.up = False
            transport.close()


def outside_context(service: OutsideService) -> Callable[[web.Application],
                                                         AsyncIterator[None]]:
    """A cleanup_ctx that runs ``service`` for the life of the app."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop), name="outside-in prober")
        yield
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=service.config.timeout + 5.0)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context
