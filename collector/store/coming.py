"""Writes on their way to a store: uploads still being prepared, that a commit can wait for.

SQLite's writer commits whatever writes are queued in one transaction (group commit). Under a
heavy ingest the uploads still reached it one at a time: each spends tens of milliseconds in a
worker being parsed and compressed, so they arrive spread out, and nine commits in ten held a
single batch. A commit costs mostly per page it dirties, and a batch of 100 measurements
dirties a page of the target index per target and one of the domain index per domain; the next
batch dirties most of the same pages again. Written alone, a batch cost the writer 81-85 us
of CPU per measurement and 15 KB of WAL; grouped in threes and fours, 52-75 us
(BENCHMARKS.md, "Group commit that waits for uploads on their way").

A writer can only wait for company it knows is coming, or it would delay a lone upload for
nothing: the ingest counts here the uploads it is preparing (``expecting``), and the writer
waits, for at most its configured time, while that count says more are on their way
(PostgreSQL's ``commit_delay`` and ``commit_siblings`` make the same bet on other backends'
transactions). Only the event loop's thread touches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


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
