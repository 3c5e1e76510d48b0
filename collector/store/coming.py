"""Writes on their way to a store: uploads still being prepared, that a commit can wait for.

SQLite's writer commits whatever writes are queued in one transaction (group commit). Under a
heavy ingest the uploads still reached it one at a time: each spends tens of milliseconds in a
worker being parsed and compressed, so they arrive spread out, and nine commits in ten held a
single batch. A commit costs mostly per page it dirties, and a batch of 100 measurements
dirties a page of the target index per target and one of the domain index per domain; the next
batch dirties most of the same pages again. Over HTTP, the writer's thread took 71-96 us of
CPU per measurement before, 60-86 with the wait (BENCHMARKS.md, "Group commit that waits for
uploads on their way"). PostgreSQL's groups (``collector.store.postgres_groups``) wait the
same way.

A writer can only wait for company it knows is coming, or it would delay a lone upload for
nothing: the ingest counts here the uploads it is preparing (``expecting``), and the writer
waits, for at most its configured time, while that count says more are on their way
(PostgreSQL's ``commit_delay`` and ``commit_siblings`` make the same bet on other backends'
transactions). Only the event loop's thread touches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# The most jobs a group waits to gather (each an upload of up to ``limits.max_batch``).
MAX_GROUP = 16


class WritesComing:
    """How many uploads are being prepared for the store, and who to tell when one is done."""

    def __init__(self) -> None:
        self.count = 0
        self._listeners: list[Callable[[], None]] = []

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """One upload in preparation for the length of the block, however the block ends (a
        refused upload never reaches the store: the writer must not keep waiting for it)."""
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
            for listener in self._listeners:
                listener()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` each time an upload's preparation ends."""
        self._listeners.append(listener)


class CompanyWait:
    """A group writer's wait for the uploads on their way: what both stores' group commits
    share. The writer calls ``queued`` as each job joins its queue and ``gather`` before it
    takes the queue to write it."""

    def __init__(self, coming: WritesComing | None, wait: float) -> None:
        self.coming = coming
        self.wait = wait if coming is not None else 0.0
        self._first_queued = 0.0
        self._news = asyncio.Event()  # a job arrived, or an upload's preparation ended
        if coming is not None:
            coming.listen(self._news.set)

    def queued(self, first: bool) -> None:
        """A job joined the queue; ``first``: it was empty (the wait counts from then)."""
        if first:
            self._first_queued = asyncio.get_running_loop().time()
        self._news.set()

    async def gather(self, queued: Callable[[], int]) -> None:
        """Return once the queue may be written: at once when no upload is on its way, else
        when ``queued()`` reaches ``MAX_GROUP``, the last upload on its way has arrived (or
        was refused), or the first queued job has waited ``wait``."""
        if self.coming is None or self.wait <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = self._first_queued + self.wait
        while queued() < MAX_GROUP and self.coming.count > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._news.clear()
            try:
                await asyncio.wait_for(self._news.wait(), remaining)
            except TimeoutError:
                return
