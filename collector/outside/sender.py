"""The one door every probe goes through: scope check, packet-rate bucket, bounded in-flight.

Why one door: the two promises the operator makes for this component ("only the blocks I
configured, minus the opt-out list" and "never more than R packets per second") are kept here
and nowhere else, so they are tested here once and cannot be bypassed by a new kind of probe.
A target outside the scope is a bug, not a network outcome: it raises ``OutOfScope`` and no
packet leaves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from collector.outside.blocks import Block
from collector.outside.pacer import TokenBucket
from collector.outside.wire import Target, Transport

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class OutOfScope(RuntimeError):
    """A probe to an address outside the configured blocks (or inside the opt-out list)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The addresses the prober may send to: the configured /24 blocks minus the opt-outs."""

    blocks: frozenset[int]
    opt_out: tuple[ipaddress.IPv4Network, ...] = ()

    @classmethod
    def of(cls, blocks: Iterable[Block],
           opt_out: Iterable[ipaddress.IPv4Network] = ()) -> Scope:
        return cls(frozenset(int(b.prefix.network_address) >> 8 for b in blocks), tuple(opt_out))

    def allows(self, address: ipaddress.IPv4Address) -> bool:
        if int(address) >> 8 not in self.blocks:
            return False
        return not any(address in network for network in self.opt_out)


@dataclass(slots=True)
class Counters:
    """What the door let through, for metrics."""

    sent: int = 0
    answered: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class PacedSender:
    """Checks the scope, waits for a token, then lets ``transport`` send one probe.

    ``max_in_flight`` bounds the probes waiting for a reply at once (each holds a pending
    future and, with the raw transport, a matching key). Tokens are handed out in order under
    one lock, so the bucket's bound holds for the sum of all concurrent callers.
    """

    def __init__(self, transport: Transport, scope: Scope, bucket: TokenBucket,
                 max_in_flight: int = 64, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self._transport = transport
        self.scope = scope
        self._bucket = bucket
        self._clock = clock
        self._sleep = sleep
        self._token_lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self.counters = Counters()

    async def _token(self) -> None:
        async with self._token_lock:
            while True:
                wait = self._bucket.try_take(self._clock())
                if wait <= 0:
                    return
                await self._sleep(wait)

    async def probe(self, target: Target, timeout: float) -> bool:
        """Send one probe to ``target``; True if it answered within ``timeout`` seconds."""
        if not self.scope.allows(target.address):
            raise OutOfScope(f"{target.address} is outside the configured blocks")
        async with self._in_flight:
            await self._token()
            self.counters.sent += 1
            method = str(target.method)
            self.counters.by_method[method] = self.counters.by_method.get(method, 0) + 1
            answered = await self._transport.probe(target, timeout)
        if answered:
            self.counters.answered += 1
        return answered
