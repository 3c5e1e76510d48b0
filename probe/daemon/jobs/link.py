"""The collector link's jobs, thin over their services: ``heartbeat`` every 60 s (30 s inside
an event window, ``probe.daemon.heartbeat.Heartbeats``) and ``upload``, which drains the spool
in batches while the collector answers (``probe.daemon.upload.Uploads``). Neither is metered:
they go on when the day's budget is spent (their traffic still counts in it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.daemon.jobs import Context


class HeartbeatJob:
    kind = "heartbeat"
    metered = False

    @staticmethod
    def interval(ctx: Context) -> float:
        schedule = ctx.config.schedule
        return schedule.event_heartbeat_interval if ctx.window else schedule.heartbeat_interval

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        return now + self.interval(ctx)

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        return True

    async def run(self, ctx: Context, subject: str) -> int:
        await ctx.heartbeat_service.beat()
        return 0


class UploadJob:
    kind = "upload"
    metered = False

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        # While one runs, or while the collector does not answer (heartbeats find out when
        # it is back and pull the upload forward), try again later; else the upload plans
        # its own next try.
        if "upload" in ctx.in_flight or ctx.reachable is not True:
            return now + ctx.config.schedule.upload_interval
        return None

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        return ctx.reachable is True

    async def run(self, ctx: Context, subject: str) -> int:
        await ctx.uploads.drain(lambda: ctx.stopping)
        return 0
