"""Where uploads are prepared: worker processes for large bodies, a worker thread for small ones.

Preparing an upload (``collector.api.prepare``: parse, validate, scrub, serialize, compress,
extract) is almost all of the CPU an ingest costs, and nearly all of it holds Python's global
lock: on worker threads it runs one thread at a time, beside the event loop and the store's
writer, so the collector used about one core however many the machine has. Worker processes
each have their own lock: a batch prepared in one runs beside the event loop, the store and
the other workers (``bench/collector_scale.py``'s ingest, BENCHMARKS.md "Worker processes").

A body smaller than ``ingest.process_min_bytes`` is prepared on a thread: the trip to a
process and back costs about as much as preparing a few measurements. A worker process that
dies (killed, out of memory) takes only the uploads it held: those are prepared again on a
thread, and the next large upload starts new processes. Nothing is acknowledged before the
store's commit, so no path here can lose a measurement.

Workers start from a fork server (``multiprocessing``'s "forkserver"), never by forking the
collector itself: the collector runs threads (the store's, the pipeline's), and a fork of a
threaded process can inherit a lock held by one of them. They start at the first large upload,
not with the collector, so a collector that only ever receives small uploads runs none.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from functools import partial

from collector.api.geoip import Location
from collector.api.prepare import Prepared, prepare_upload, start_worker, warm
from collector.limits import Limits
from collector.store.coming import WritesComing

log = logging.getLogger("kuzot.ingest")
MAX_AUTO_WORKERS = 4


def auto_workers() -> int:
    """As many worker processes as CPUs this process may run on, at most four (beyond that
    the store's single writer is the limit, not preparation)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_WORKERS, cpus))


class IngestWorkers:
    """Prepares uploads on a thread or in worker processes (see the module's docstring)."""

    def __init__(self, processes: int, process_min_bytes: int,
                 coming: WritesComing | None = None) -> None:
        self.processes = processes
        self.process_min_bytes = process_min_bytes
        # Told of each upload being prepared, for the store's writer to wait for it.
        self.coming = coming or WritesComing()
        self._pool: ProcessPoolExecutor | None = None
        self._starting = asyncio.Lock()  # one pool starts at a time
        self.started = 0  # process pools started (1, or more after a worker died)

    async def prepare(self, raw: bytes, limits: Limits, now: datetime, probe_id: str,
                      submitter_ip: str | None, located: Location | None) -> Prepared:
        """``prepare_upload`` of ``raw``, off the event loop, counted in ``coming`` while it
        runs. The caller hands the rows to the store without awaiting anything else first,
        so the writer, woken by the count's fall, finds them already queued."""
        with self.coming.expecting():
            return await self._prepare(raw, limits, now, probe_id, submitter_ip, located)

    async def _prepare(self, raw: bytes, limits: Limits, now: datetime, probe_id: str,
                       submitter_ip: str | None, located: Location | None) -> Prepared:
        if self.processes <= 0 or len(raw) < self.process_min_bytes:
            return await asyncio.to_thread(prepare_upload, raw, limits, now, probe_id,
                                           submitter_ip, located)
        try:
            pool = self._pool or await self._start_pool()
        except (OSError, ImportError, ValueError) as exc:
            # No fork server here (a container without /dev/shm for its semaphores, a
            # platform without it): every upload is prepared on a thread from now on.
            log.warning("ingest worker processes cannot start (%s); uploads are prepared on "
                        "threads of the collector's process", exc)
            self.processes = 0
            return await asyncio.to_thread(prepare_upload, raw, limits, now, probe_id,
                                           submitter_ip, located)
        work = partial(prepare_upload, raw, limits, now, probe_id, submitter_ip, located,
                       keep_text=False)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work)
        except BrokenProcessPool:
            # A worker died with this upload (or another) in hand. The pool cannot be used
            # again; the upload is prepared here, and the next one starts a new pool.
            log.warning("an ingest worker process died; its uploads are prepared in the "
                        "collector's process and new workers start")
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            return await asyncio.to_thread(prepare_upload, raw, limits, now, probe_id,
                                           submitter_ip, located)

    async def _start_pool(self) -> ProcessPoolExecutor:
        """The pool, started on a thread: starting the fork server and the first workers
        waits for their imports (a few hundred milliseconds), which on the event loop would
        hold up every other client's answer."""
        async with self._starting:
            return await asyncio.to_thread(self._running_pool)

    def _running_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            # Imported once in the fork server: each worker forked from it starts ready.
            context.set_forkserver_preload(["collector.api.prepare"])
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context,
                                             initializer=start_worker)
            self.started += 1
            for _ in range(self.processes):
                self._pool.submit(warm)
        return self._pool

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (for the metrics of their memory, and for tests)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(processes)

    async def close(self) -> None:
        """Stop the workers, waiting for the uploads they hold (their clients get answers)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=False)
