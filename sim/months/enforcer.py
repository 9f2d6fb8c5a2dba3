"""A plan's runtime limits over several billing months, and what an account does to the world.

Why a wrapper: every rule a plan enforces at run time belongs to a billing period. The free quota renews on
the 1st, notifications fire once per period, throttling for a passed free limit ends with the period. So a
run of ``simulation.months`` gets one inner enforcer per month (:class:`Monthly`), built fresh at the
month's first call from the same factory, each seeing its own month: times from the month's start and
per-minute usage from its first minute. Calls are routed by time (every simulated day lies in one month:
month boundaries are whole days from the start, sim/world/clock.py ``month_bounds``).

An account acts on the world through the same object, from outside, at the end of each day (``on_day``,
given by sim/months/accounts.py, which prices; this module does not):

* credits ran out and nothing was done: the app is throttled from an instant on, in this month and the
  following ones, until credit is added (:meth:`Monthly.throttle`);
* the Free -> PAYG switch: from an instant on, the month's enforcer is the PAYG plan's and every later
  month's too (irreversible, :meth:`Monthly.switch`).

The report is the months' reports summed (rejections by reason, suspensions, notifications in time order,
the first throttling) with each month's own under ``months``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sim.pricing.period import Period
from sim.world.enforcer import Admission, Enforcer, admit_with_sizes

MINUTE_MS = 60_000
#: Sections of an enforcement report that count things by reason (summed over months).
COUNTED = ("rejected", "rejected_messages", "refused_attempts", "discarded")


class Monthly(Enforcer):
    """One enforcer per billing month from ``make(plan_key, month_start, minutes)``; ``bounds`` are the months'
    start instants and the end. ``plan_key`` is ``"plan"`` until :meth:`switch`, then ``"switched"``."""

    def __init__(self, make: Callable[[str, datetime, int], Enforcer], bounds: list[datetime],
                 on_day: Callable[[Monthly, int, int, Callable[[], dict]], None] | None = None,
                 name: str = "") -> None:
        super().__init__()
        self.make, self.bounds, self.on_day, self.name = make, list(bounds), on_day, name
        t0 = self.bounds[0]
        self.offsets_ms = np.array([round((b - t0).total_seconds() * 1000) for b in self.bounds], dtype=np.int64)
        self.inner: list[list[Enforcer]] = [[] for _ in range(len(self.bounds) - 1)]
        self.key = "plan"
        self.switched_at_ms: int | None = None
        self.throttled_from_ms: int | None = None   # from the account (credits), ms from the first month's start
        self._month = 0

    # -- routing -------------------------------------------------------------------------------------
    def month_of(self, t_ms: int) -> int:
        return int(min(max(np.searchsorted(self.offsets_ms, t_ms, side="right") - 1, 0), len(self.inner) - 1))

    def current(self, m: int) -> Enforcer:
        """Month ``m``'s enforcer in force (built at its first use, told of a throttle already in force)."""
        if not self.inner[m]:
            self._add(m)
        return self.inner[m][-1]

    def _add(self, m: int) -> Enforcer:
        minutes = int((self.offsets_ms[m + 1] - self.offsets_ms[m]) // MINUTE_MS)
        e = self.make(self.key, self.bounds[m], minutes)
        e.begin(self.bounds[m], minutes)
        # a daily quota counts per UTC day, not per billing month: the day a month starts on (a zone other than
        # UTC), or a switch, continues with what the platform has counted so far that day
        prev = self.inner[m][-1] if self.inner[m] else next((es[-1] for es in reversed(self.inner[:m]) if es), None)
        carry = getattr(e, "carry_quota", None)
        if prev is not None and callable(carry):
            carry(prev)
        self.inner[m].append(e)
        if self.throttled_from_ms is not None:
            _throttle(e, max(0, self.throttled_from_ms - int(self.offsets_ms[m])))
        return e

    def _off(self, m: int) -> int:
        return int(self.offsets_ms[m])

    # -- the account's actions -----------------------------------------------------------------------
    def throttle(self, t_ms: int | None) -> None:
        """Throttle the app from ``t_ms`` (ms from the first month's start) on; ``None`` lifts it (credit was added)."""
        self.throttled_from_ms = t_ms
        m = self.month_of(t_ms) if t_ms is not None else self._month
        for k in range(m, len(self.inner)):
            for e in self.inner[k]:
                _throttle(e, None if t_ms is None else max(0, t_ms - self._off(k)))

    def switch(self, t_ms: int) -> None:
        """From ``t_ms`` on, the switched-to plan's limits (this month: a new enforcer watching the whole month)."""
        if self.switched_at_ms is not None:
            return  # irreversible, and once
        self.key, self.switched_at_ms = "switched", int(t_ms)
        m = self.month_of(t_ms)
        if self.inner[m]:
            old = self.inner[m][-1]
            t_from = getattr(old, "throttled_from_ms", None)
            if t_from is not None and t_from >= t_ms - self._off(m):
                old.throttle_from(None)  # decided at this same midnight, and never applied: the switch came first
            self._add(m)

    # -- the Enforcer interface, routed by time -------------------------------------------------------
    def begin(self, start: datetime, minutes: int) -> None:
        pass  # each month begins at its first call

    def admit_messages(self, t_ms, sender, fanout, sizes=None):
        if len(t_ms) == 0:
            return None
        m = self._month = self.month_of(int(t_ms[0]))
        off = self._off(m)
        res = admit_with_sizes(self.current(m), np.asarray(t_ms) - off, sender, fanout, sizes)
        if isinstance(res, Admission):
            return Admission(res.keep, np.asarray(res.t) + off, res.reason, res.attempt_msg,
                             np.asarray(res.attempt_t) + off)
        return res

    def suspensions(self, day_start_ms, day_end_ms, messages_per_minute, connections_per_minute):
        m = self._month = self.month_of(day_start_ms)
        off = self._off(m)
        windows = self.current(m).suspensions(day_start_ms - off, day_end_ms - off, messages_per_minute,
                                              connections_per_minute)
        return [(a + off, b + off) for a, b in windows]

    def admit_storage(self, t_ms, nbytes, stored_level_bytes):
        if len(t_ms) == 0:
            return None
        m = self.month_of(int(np.asarray(t_ms)[0]))
        return self.current(m).admit_storage(np.asarray(t_ms) - self._off(m), nbytes, stored_level_bytes)

    def note_rejected(self, reason: str, messages: int, copies: int) -> None:
        self.current(self._month).note_rejected(reason, messages, copies)

    def message_cap(self, t_ms: int) -> int | None:
        m = self._month = self.month_of(t_ms)
        return self.current(m).message_cap(t_ms - self._off(m))

    def retry_policy(self) -> tuple[int, int]:
        return self.current(self._month).retry_policy()

    def note_refusal(self, t_ms: int, final: bool, copies: int) -> str:
        m = self.month_of(t_ms)
        return self.current(m).note_refusal(t_ms - self._off(m), final, copies)

    def observe_message(self, t_ms: int, copies: int) -> None:
        m = self.month_of(t_ms)
        self.current(m).observe_message(t_ms - self._off(m), copies)

    def quota_admit(self, t_ms: int, size: int, copies: int) -> str | None:
        m = self.month_of(t_ms)
        return self.current(m).quota_admit(t_ms - self._off(m), size, copies)

    @property
    def dry_run(self) -> bool:
        return bool(getattr(self.current(0), "dry_run", False))

    @property
    def binds(self) -> bool:
        return any(getattr(e, "binds", False) for es in self.inner for e in es) or self.throttled_from_ms is not None

    def day_end(self, day_end_ms: int, usage_so_far) -> None:
        m = self._month = self.month_of(day_end_ms - 1)
        lo, hi = (int(self.offsets_ms[k] // MINUTE_MS) for k in (m, m + 1))
        month_usage = _cached(lambda: {k: v[lo:hi] for k, v in usage_so_far(lo).items()})
        self.current(m).day_end(day_end_ms - self._off(m), month_usage)
        if self.on_day is not None:
            self.on_day(self, m, day_end_ms, month_usage)

    def finish(self, meters: dict) -> None:
        from sim.months.split import cut

        whole = Period.create(self.bounds[0], self.bounds[-1], getattr(self.bounds[0].tzinfo, "key", None))
        for m, es in enumerate(self.inner):
            lo, hi = (int(self.offsets_ms[k] // 1000) for k in (m, m + 1))
            sliced = {k: cut(v, lo, hi, whole) for k, v in meters.items()}
            for e in es:
                e.finish(sliced)

    # -- the report ----------------------------------------------------------------------------------
    @property
    def report(self) -> dict:  # type: ignore[override]
        months = [_merged([e.report for e in es], once=True) if es else {} for es in self.inner]
        out = _merged([r for r in months if r])
        out["plan"] = self.name or out.get("plan")
        out["months"] = months
        if self.switched_at_ms is not None:
            out["switched_at"] = _iso(self.bounds[0], self.switched_at_ms)
        if self.throttled_from_ms is not None:
            account_at = _iso(self.bounds[0], self.throttled_from_ms)
            out["throttled_from"] = min(filter(None, [out.get("throttled_from"), account_at]))
            out["credit_throttled_from"] = account_at
        return out

    @report.setter
    def report(self, value: dict) -> None:
        pass  # built from the months' reports


def _throttle(e: Enforcer, t_ms: int | None) -> None:
    fn = getattr(e, "throttle_from", None)
    if fn is None:
        raise TypeError(f"{type(e).__name__} cannot be throttled by an account")
    fn(t_ms)


def _cached(fn: Callable[[], dict]) -> Callable[[], dict]:
    box: list[dict] = []

    def get() -> dict:
        if not box:
            box.append(fn())
        return box[0]
    return get


def _merged(reports: list[dict], once: bool = False) -> dict:
    """Several enforcement reports as one: counts by reason summed, lists joined in time order; ``once``: one
    notification per meter and threshold (the reports of one month)."""
    if not reports:
        return {}
    out: dict[str, Any] = {k: v for k, v in reports[0].items() if k not in COUNTED}
    for key in COUNTED:
        acc: dict[str, int] = {}
        for r in reports:
            for reason, n in (r.get(key) or {}).items():
                acc[reason] = acc.get(reason, 0) + int(n)
        out[key] = acc
    for key, when in (("suspensions", "start"), ("notifications", "at")):
        rows = sorted([x for r in reports for x in r.get(key, [])], key=lambda x: (x.get(when) is None, x.get(when) or ""))
        if key == "notifications" and once:  # a switch's new enforcer notices what the old one did: once each
            seen: set = set()
            rows = [x for x in rows if not ((x.get("meter"), x.get("threshold")) in seen
                                            or seen.add((x.get("meter"), x.get("threshold"))))]
        out[key] = rows
    firsts = [r.get("throttled_from") for r in reports if r.get("throttled_from")]
    out["throttled_from"] = min(firsts) if firsts else None
    out["unsupported"] = sorted({u for r in reports for u in r.get("unsupported", [])})
    if any("quota_days" in r for r in reports):
        out["quota_days"] = merged_quota_days([r.get("quota_days") or [] for r in reports])
    return out


def merged_quota_days(lists: list[list[dict]]) -> list[dict]:
    """Daily-quota rows of several enforcers, one per UTC day: a day two enforcers share (the day a month starts
    on, outside UTC, or a switch) continued counting (sim/world/plan_enforcer.py ``carry_quota``), so its units
    used are the later count, its limit the one in force last, its refusals summed, reached at the first time."""
    by_day: dict[str, dict] = {}
    for rows in lists:
        for row in rows:
            cur = by_day.get(row["day"])
            if cur is None:
                by_day[row["day"]] = dict(row)
                continue
            cur["used"] = max(cur["used"], row["used"])
            cur["limit"] = row["limit"]
            cur["rejected"] = cur["rejected"] + row["rejected"]
            ats = [a for a in (cur.get("reached_at"), row.get("reached_at")) if a]
            cur["reached_at"] = min(ats) if ats else None
    return [by_day[d] for d in sorted(by_day)]


def _iso(t0: datetime, ms: int) -> str:
    return (t0.astimezone(UTC) + timedelta(milliseconds=int(ms))).isoformat()
