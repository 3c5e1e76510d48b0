"""Spending the day's data budget over the whole day, the sites that matter most first.

A probe with Citizen Lab's lists has some two hundred (KG) to six hundred (KZ) targets, and a
volunteer's budget (``budget.daily_mb``, 100 MB by default) that a plain schedule spends by
noon: after that the probe measures nothing until the next UTC day, which is exactly when a
shutdown or a block may begin. So the daemon paces itself:

* **Priority targets** are measured at their cadence while the day's use stays within
  ``budget x (share + PRIORITY_LEAD x (1 - share))``, ``share`` being the part of the day
  gone: a burst may run ahead of an even spend, less and less as the day goes on, so the
  evening is not left dark. Priority means the curated sites (no interval
  of their own: measured at the config's cadence), the categories the project watches first
  (news, political criticism, human rights, LGBT, circumvention: ``PRIORITY_CATEGORIES``),
  baselines and canaries, and during an event window every target of the probe's own country.
  The collector's operator may override this per entry (``Target.priority``: ``high`` is
  always priority, ``low`` only inside an event window of its country).
* **The rest** (Citizen Lab's long tail) are measured only while the day's use is at or below
  an even spend (``budget x share of the day gone``, at least ``FIRST_SHARE``); one that is
  not is tried again after ``ROTATION``, so over the day the tail is sampled in rotation with
  whatever the priority targets leave.
* At the budget itself nothing more is measured, as before; the ladder and uploads go on.

Pure functions of the target, the clock and the day's use, so the policy is tested on its
own and the daemon only asks.
"""

from __future__ import annotations

from probe.config.probe_config import Target

DAY = 86400.0
# Citizen Lab's category codes the project measures first (lists/00-LEGEND-new_category_codes).
PRIORITY_CATEGORIES = frozenset({"NEWS", "POLR", "HUMR", "LGBT", "ANON"})
# How far ahead of an even spend priority targets may run (a share of the day's budget).
PRIORITY_LEAD = 0.25
# The share of the budget the tail may use at the very start of a day (an hour's worth).
FIRST_SHARE = 1 / 24
# A tail target deferred for the pace is tried again after this long.
ROTATION = 3600.0
# What a measurement is expected to cost before any has been made (a news page with its
# control comparison and upload, as the probe footprint bench measures: ~250 kB).
DEFAULT_COST = 250_000


def is_priority(target: Target, country: str, in_window: bool) -> bool:
    """Whether ``target`` is measured at its cadence while the budget allows (see above)."""
    if target.priority is not None:
        return target.priority == "high" or (in_window and target.cc == country)
    return (target.interval is None or target.category in PRIORITY_CATEGORIES
            or target.role != "test" or (in_window and target.cc == country))


def allowance(budget: int, seconds_into_day: float, priority: bool) -> float:
    """The bytes the day's use may have reached for a target of this kind to be measured."""
    share = min(max(seconds_into_day, 0.0), DAY) / DAY
    if priority:
        return budget * min(1.0, share + PRIORITY_LEAD * (1.0 - share))
    return budget * min(1.0, max(share, FIRST_SHARE))


def may_measure(target: Target, country: str, in_window: bool, budget: int | None,
                used_today: int, seconds_into_day: float) -> bool:
    """Whether the day's pace lets ``target`` be measured now (always, without a budget)."""
    if budget is None:
        return True
    if used_today >= budget:
        return False
    priority = is_priority(target, country, in_window)
    return used_today <= allowance(budget, seconds_into_day, priority)
