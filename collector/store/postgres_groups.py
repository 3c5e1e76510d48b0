"""PostgreSQL: uploads that arrive together, written in one transaction.

Each upload used to be its own transaction: about ten statements (the uids claimed, two
copies, the target and five rollup upserts, the total) and a commit, for a batch of 100. Most
of that is per statement and per commit, on both sides of the connection, and the rollup
upserts of consecutive batches share most of their keys. Measured in process
(``bench/commit_groups.py``, uploads of 100 of the scale bench's measurements): one upload a
transaction took 60 us of the collector's CPU and 87 of the server's per measurement, three
44 and 68, six 43 and 60.

So, as SQLite's writer does, uploads are queued and each group of them written in one
transaction, after waiting (``collector.store.coming.CompanyWait``) for uploads still being
prepared. What each upload gets back is what it would have got alone, in the order they were
queued: a uid that two uploads of a group carry is stored from the first and is a duplicate
for the second. A group that fails is written again upload by upload, so an upload the
server refuses fails alone, not with its group (unless the database itself is unavailable:
then the whole group is answered so at once). Up to ``IN_FLIGHT`` groups are written at
once (each on its own pooled connection), so one slow transaction does not hold every upload.

Detection's feed pages by transaction (``collector.store.postgres_events``): a page can now
run past its limit by a whole group, at most ``MAX_GROUP`` uploads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from collector.store.coming import MAX_GROUP, CompanyWait
from collector.store.interface import StoredMeasurement, StoreUnavailable

Rows = dict[str, StoredMeasurement]  # by uid, each uid once
WriteRows = Callable[[Rows], Awaitable[set[str]]]  # a transaction; the uids it stored
IN_FLIGHT = 2


class UploadGroups:
    """Queues uploads and writes each group of them with ``write_rows`` (see the module)."""

    def __init__(self, write_rows: WriteRows, company: CompanyWait) -> None:
        self.write_rows = write_rows
        self.company = company
        self.queue: list[tuple[Rows, asyncio.Future[set[str]]]] = []
        self.transactions = 0  # groups written (for tests and benchmarks)
        self._drain_task: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    async def write(self, rows: Rows) -> set[str]:
        """The uids of ``rows`` stored by this upload (not stored before, nor by an upload
        queued before it), once committed."""
        future: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        self.queue.append((rows, future))
        self.company.queued(first=len(self.queue) == 1)
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.queue:
            await self.company.gather(lambda: len(self.queue))
            await self._slots.acquire()  # more may queue meanwhile: they join this group
            # At most MAX_GROUP uploads a transaction, so that a burst is not one huge one.
            group, self.queue = self.queue[:MAX_GROUP], self.queue[MAX_GROUP:]
            task = asyncio.create_task(self._write_group(group))
            self._writing.add(task)
            task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        self._slots.release()

    async def _write_group(self, group: list[tuple[Rows, asyncio.Future[set[str]]]]) -> None:
        self.transactions += 1
        if len(group) == 1:
            await _settle(group[0][1], self.write_rows(group[0][0]))
            return
        merged: Rows = {}
        owner: dict[str, int] = {}
        for index, (rows, _) in enumerate(group):
            for uid, row in rows.items():
                if uid not in merged:
                    merged[uid], owner[uid] = row, index
        try:
            stored = await self.write_rows(merged)
        except StoreUnavailable as exc:
            # The database, not an upload: each alone would wait for it again (up to the
            # pool's timeout each), so all of them get the answer now, and their clients retry.
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception:  # noqa: BLE001 - which upload failed is not known: each alone
            for rows, future in group:
                self.transactions += 1
                await _settle(future, self.write_rows(rows))
            return
        for index, (rows, future) in enumerate(group):
            if not future.done():  # its client may have gone: the rows are stored anyway
                future.set_result({uid for uid in rows if uid in stored and owner[uid] == index})

    async def close(self) -> None:
        """Wait for the uploads queued and being written."""
        if self._drain_task is not None:
            await asyncio.gather(self._drain_task, return_exceptions=True)
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)


async def _settle(future: asyncio.Future[set[str]], write: Awaitable[set[str]]) -> None:
    """``future`` given what ``write`` returns, or its error."""
    try:
        result = await write
    except Exception as exc:  # noqa: BLE001 - handed to the upload's handler
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(result)
