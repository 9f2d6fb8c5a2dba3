"""A plan's runtime limits acting on the mobile world (messaging seed): rate limit, notifications, throttling.

:class:`PlanEnforcer` is built from the runtime parts of a plan only (``restrictions``, ``throttling``,
and the free limits / notification thresholds as plain numbers); it knows no prices. What it does:

* **Message rate limit** (``measure: messages_per_second``, ``action: reject``; seed FAQ "What is
  Message Rate Limit?"): at most ``cap = max(1, floor(limit))`` originated messages are accepted in
  any wall-clock second across the app, first come first served; the others are refused (reason
  ``message_rate``). A refused client **retries with backoff** (deterministic: 1 s, 2 s, 4 s ... after
  the refused attempt, ``retries`` times); a retry is a new attempt that competes for its own second's
  capacity. A message whose last retry is refused, or whose next retry would fall after midnight of
  its day, is finally rejected. Every refused attempt is listed in the :class:`Admission` so that the
  world charges its upload and the platform's error reply; conservation is over final outcomes.
* **Notifications** (FAQ "What happens if my apps exceed the limits"): when cumulative usage of a
  watched meter crosses each threshold (50 %, 75 %) of its free limit / included quantity. The times
  reported at the end (:meth:`finish`) are computed from the final usage meters with ``sim.pricing.metering``
  itself (quantities, not money), so they equal the bill's.
* **Throttling** ("We will throttle ... only if you do not take any action after these notifications";
  plan ``throttling``): once usage passes 100 % of a free limit and ``grace`` has passed since that
  meter's last notification (a simulated app never acts), the app is throttled to
  ``throttling.messages_per_second`` (refused messages: reason ``throttled``, retried like above).
  The platform evaluates usage once per simulated day, from what the world knows at midnight (minutes
  not yet final can only gain usage later, so runtime crossing times are never earlier than the final
  ones): throttling starts at ``max(exceeded, last notification + grace)``, but not before the
  midnight at which that became known.
* **Daily message quota** (``measure: messages_per_day``, ``action: reject``; Azure IoT Hub, Pusher
  Channels): each UTC day (00:00 UTC to 00:00 UTC, whatever the period's time zone) at most ``limit``
  units are accepted; a message uses ``ceil(size / unit_bytes)`` units (at least 1; 1 without
  ``unit_bytes``), times ``1 + fan-out`` with ``counts: originated_and_delivered``. It is applied after
  the rate limit and throttling, in time order over the messages they accepted (at their accepted
  times): a message whose units would take the day's used units past the limit is rejected (reason
  ``daily_quota``), refused once (its upload and the error reply are charged as a refused attempt)
  and not retried (a retry the same UTC day would be refused too); from then on the day's quota is
  exhausted and every later message of that UTC day is rejected, however small. ``limit_per_mau``
  gives a per-user allowance. The events engine asks the same rule message by message
  (:meth:`quota_admit`, with the same counters). Without ``sizes`` (an old caller) every message is
  one size unit.
* ``dry_run=True``: admits everything and records in :attr:`report` what it would have done on this
  traffic (rejections by reason, the throttling start), so that an unrestricted probe shows which
  plans bind (:attr:`binds`) and only those need a restricted re-run.

Nothing here draws random numbers, so an enforcer whose limits never bind leaves the run
bit-identical to the unrestricted one.

Report (plain JSON; the usage document's ``enforcement`` section)::

    {"plan": name, "dry_run": bool,
     "suspensions": [{"element", "limit", "start", "minutes"}],   # none for the messaging seed's plans
     "rejected": {reason: copies}, "rejected_messages": {reason: originated messages},
     "refused_attempts": {reason: attempts}, "discarded": {reason: copies},
     "notifications": [{"meter", "threshold", "at"}], "throttled_from": iso or null,
     "unsupported": [restriction names this world does not enforce],
     "quota_days": [{"day": "YYYY-MM-DD", "used": units, "limit": L, "reached_at": iso or null,
                     "rejected": messages}]}   # with a daily quota: the UTC days on which it was reached

``quota_days``: ``used`` is the units the day's accepted messages used, ``reached_at`` the first instant
the quota was full (the message that used its last unit, or the first one refused), ``rejected`` the
messages refused that day. Rejections are also under ``rejected`` / ``rejected_messages`` /
``refused_attempts`` with reason ``daily_quota``. A sampled run (sim/sampling.py) simulates a share of the
users, so its quota is that share of the app's (``quota_scale``); the report shows the share's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from sim.pricing.metering import first_reach, measure_metric, progress_of
from sim.pricing.plan import Metric
from sim.world.enforcer import REJECT_REASONS, Admission, Enforcer
from sim.world.rate_limit import admit_per_second

DAY_MS = 86_400_000
SECOND_MS = 1000
MINUTE_S = 60
_MESSAGE_RATE = REJECT_REASONS.index("message_rate") + 1
_THROTTLED = REJECT_REASONS.index("throttled") + 1
_DAILY_QUOTA = REJECT_REASONS.index("daily_quota") + 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DailyQuota:
    """A daily message quota: ``limit`` units per UTC day (already scaled to the simulated share of users)."""

    name: str
    limit: float
    unit_bytes: int | None = None
    delivered: bool = False   # counts: originated_and_delivered (1 + fan-out per message)

    def units(self, sizes: np.ndarray | None, fanout: np.ndarray) -> np.ndarray:
        """Units each message uses (int64)."""
        fan = np.asarray(fanout, dtype=np.int64)
        if self.unit_bytes is None or sizes is None:
            u = np.ones(fan.size, dtype=np.int64)
        else:
            u = np.maximum(1, -(-np.asarray(sizes, dtype=np.int64) // self.unit_bytes))
        return u * (1 + fan) if self.delivered else u

    def unit(self, size: int, copies: int) -> int:
        """Units one message uses (the same rule, one event at a time)."""
        u = 1 if self.unit_bytes is None else max(1, -(-int(size) // self.unit_bytes))
        return u * (1 + int(copies)) if self.delivered else u


class _QuotaDay:
    """What the platform has counted on one UTC day: units used per quota, whether the quota is exhausted, the
    instant it was reached (UTC ms since the epoch), the messages refused, and the day's report row."""

    __slots__ = ("used", "exhausted", "reached", "which", "rejected", "row")

    def __init__(self, n: int) -> None:
        self.used = [0] * n
        self.exhausted = False
        self.reached: int | None = None
        self.which = 0
        self.rejected = 0
        self.row: dict | None = None


@dataclass(frozen=True)
class Watch:
    """A usage meter watched against a free limit: how it is metered, and the limit in the metric's unit."""

    metric: str
    spec: Metric         # the plan's metric: meter, aggregation, unit conversion (no prices)
    base: Decimal        # the free limit / included quantity, in metric units

    @property
    def meter(self) -> str:
        return self.spec.meter

    def progress(self, values: np.ndarray) -> np.ndarray:
        """The metric's value so far at the end of each minute, in its unit (sim.pricing.metering's rule)."""
        p = progress_of(np.asarray(values, dtype=np.float64), self.spec.aggregation)
        return p * float(self.spec.factor) if self.spec.factor != 1 else p

    def minute_reaching(self, progress: np.ndarray, level: float, period_s: float) -> float | None:
        """Seconds from the start at which ``progress`` (one value per minute) first reached ``level``."""
        hit = first_reach(progress, level, self.spec.aggregation in ("sum", "unique"))
        if hit is None:
            return None
        i, frac = hit
        start = float(MINUTE_S * i)
        return start + (min(period_s, start + MINUTE_S) - start) * frac


class PlanEnforcer(Enforcer):
    """Rate limit, notifications and throttling of one plan, for the mobile world."""

    def __init__(self, name: str = "", *, message_rate: float | None = None, notify: tuple[Watch, ...] = (),
                 thresholds: tuple[float, ...] = (), free_limits: tuple[Watch, ...] = (),
                 throttle_grace_s: int | None = None, throttle_rate: float | None = None,
                 unsupported: tuple[str, ...] = (), dry_run: bool = False, retries: int = 3,
                 backoff_s: float = 1.0, start: datetime | None = None, minutes: int | None = None,
                 until_binding: bool = False, quotas: tuple[DailyQuota, ...] = ()) -> None:
        """``until_binding`` (dry runs): stop counting once the limits are known to bind -- for a caller that
        only asks :attr:`binds` (a fleet's free plans: sim/comparison.py ``run_plans(own_runs="priced")``);
        the report's counts then stop at that point. ``quotas``: daily message quotas (:class:`DailyQuota`)."""
        super().__init__()
        self.name = name
        self.until_binding = bool(until_binding and dry_run)
        self.rate_cap = None if message_rate is None else max(1, math.floor(message_rate))
        self.throttle_cap = None if throttle_rate is None else max(1, math.floor(throttle_rate))
        self.throttle_grace_s = throttle_grace_s
        self.notify = notify
        self.thresholds = tuple(sorted(thresholds))
        self.free_limits = free_limits if throttle_rate is not None else ()
        self.dry_run = dry_run
        self.retries = int(retries)
        self.backoff_ms = int(round(backoff_s * 1000))
        self.quotas = tuple(quotas)
        self._quota_days: dict[int, _QuotaDay] = {}   # UTC day number (days since 1970-01-01) -> its counters
        self._utc0, self._utc0_of = 0, None              # the period start in UTC ms since the epoch, and of which start
        self.start = start
        self.minutes = minutes
        self.throttled_from_ms: int | None = None
        self._dry_seconds: dict[int, int] = {}
        self._runtime_notes: dict[tuple[str, float], float] = {}   # (meter, threshold) -> seconds from start
        self.report = {
            "plan": name, "dry_run": dry_run, "suspensions": [], "rejected": {}, "rejected_messages": {},
            "refused_attempts": {}, "discarded": {}, "notifications": [], "throttled_from": None,
            "unsupported": list(unsupported),
        }
        if self.quotas:
            self.report["quota_days"] = []

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan, users: int, book=None, dry_run: bool = False, rate_scale: float | None = 1.0,
                  quota_scale: float | None = None, **kw) -> PlanEnforcer:
        """The runtime parts of ``plan`` (a :class:`sim.pricing.plan.Plan`) for an app of ``users`` registered users.

        ``rate_scale``: the world simulates that share of the app's users, so it gets that share of the app's
        per-second message rate; None: the rate is not enforced (a sampled run, sim/sampling.py: a sample's
        per-second bursts are far larger, relative to its mean, than the whole app's, so a scaled cap would
        reject what the app never would).

        ``quota_scale``: the share of the app's users the world simulates, for daily quotas (a sum over a day: a
        sample gets its share of it, sampled or not); default ``rate_scale``. A daily quota is listed as
        unsupported when neither is known (``rate_scale`` None and no ``quota_scale``).

        ``book`` (a :class:`sim.meters.MeterBook`), if given, fixes the period now; otherwise the world
        tells the enforcer when the run begins. ``kw``: ``retries``, ``backoff_s``.
        """
        rate, unsupported, quotas = None, [], []
        share = rate_scale if quota_scale is None else quota_scale
        for name, r in plan.restrictions.items():
            if r.measure == "messages_per_second" and r.action in ("reject", "throttle") \
                    and r.scope in ("app", "account", "platform"):
                if rate_scale is None:
                    unsupported.append(name)
                    continue
                limit = r.resolved_limit(users) * rate_scale
                rate = limit if rate is None else min(rate, limit)
            elif r.measure == "messages_per_day" and r.action == "reject" and r.scope in ("app", "account", "platform"):
                if share is None:
                    unsupported.append(name)
                    continue
                quotas.append(DailyQuota(name, r.resolved_limit(users) * float(share), r.unit_bytes, r.counts_delivered))
            else:
                unsupported.append(name)

        def watch(metric: str, base) -> Watch:
            m = plan.metrics[metric]
            return Watch(metric, m, Decimal(base))

        limits = tuple(watch(lim.metric, lim.max) for lim in plan.limits if lim.max is not None)
        included = tuple(watch(c.metric, c.included) for c in plan.charges if c.included > 0)
        notify, thresholds = (), ()
        if plan.notifications is not None:
            notify = limits if plan.notifications.of == "limits" else included
            thresholds = tuple(plan.notifications.thresholds)
        grace, trate = None, None
        credits = plan.throttling is not None and plan.throttling.on == "credits"
        if credits:  # throttled only when an account's credits run out (throttle_from, sim/months/enforcer.py)
            limits, included = (), ()
        if plan.throttling is not None:
            from sim.pricing.period import Interval

            grace = Interval.parse(plan.throttling.grace).seconds
            trate = float(plan.throttling.messages_per_second)
        return cls(plan.name, message_rate=rate, notify=notify, thresholds=thresholds,
                   free_limits=limits or included, throttle_grace_s=grace, throttle_rate=trate,
                   unsupported=tuple(unsupported), dry_run=dry_run,
                   start=book.start if book is not None else None,
                   minutes=book.minutes if book is not None else None, quotas=tuple(quotas), **kw)

    @property
    def binds(self) -> bool:
        """Whether the enforcer changed (or, in a dry run, would have changed) anything in the run."""
        r = self.report
        return bool(any(r["rejected"].values()) or any(r["refused_attempts"].values())
                    or any(r["discarded"].values()) or r["suspensions"] or r["throttled_from"])

    def begin(self, start: datetime, minutes: int) -> None:
        self.start, self.minutes = start, minutes

    def throttle_from(self, t_ms: int | None) -> None:
        """Throttle from ``t_ms`` (ms from the period start, rounded up to a whole second) whatever the free limits
        say: an account's credits ran out (sim/months/enforcer.py); ``None``: credit was added, the throttle is
        lifted. Needs the plan's ``throttling`` rate."""
        if self.throttle_cap is None:
            raise ValueError(f"plan {self.name}: an account throttles it, but it has no throttling rate "
                             "(plan throttling: {on: credits, messages_per_second: ...})")
        self.throttled_from_ms = None if t_ms is None else -(-int(t_ms) // SECOND_MS) * SECOND_MS
        self.report["throttled_from"] = None if t_ms is None else self._iso(self.throttled_from_ms / 1000)

    # -- admission ---------------------------------------------------------------------------------
    def admit_messages(self, t_ms, sender, fanout, sizes=None):
        rate = self.rate_cap is not None or self.throttled_from_ms is not None
        if len(t_ms) == 0 or not (rate or self.quotas):
            return None
        if self.until_binding and self.binds:
            return None
        t = np.asarray(t_ms, dtype=np.int64)
        fan = np.asarray(fanout, dtype=np.int64)
        adm = None
        if rate:
            cs = int(t[0]) // DAY_MS * DAY_MS
            adm = self._limit(t, cs, cs + DAY_MS)
        if adm is not None:
            for code, reason in enumerate(REJECT_REASONS, start=1):
                sel = adm.reason == code
                if sel.any():
                    self._add("rejected_messages", reason, int(sel.sum()))
                    self._add("rejected", reason, int(fan[sel].sum()))
            if adm.attempt_msg.size:
                thr = self._throttled(adm.attempt_t)
                self._add("refused_attempts", "throttled", int(thr.sum()))
                self._add("refused_attempts", "message_rate", int((~thr).sum()))
        if self.quotas:
            adm = self._quota(t, fan, sizes, adm)
        return None if self.dry_run else adm

    # -- the daily quota ---------------------------------------------------------------------------
    def _utc_ms(self, t_ms):
        """ms from the period start -> UTC ms since the epoch (the period start unknown: it is the epoch)."""
        start = self.start
        if start is not self._utc0_of:
            aware = start if start is None or start.tzinfo is not None else start.replace(tzinfo=UTC)
            self._utc0 = 0 if aware is None else round((aware - _EPOCH).total_seconds() * 1000)
            self._utc0_of = start
        return t_ms + self._utc0

    def _day(self, key: int) -> _QuotaDay:
        st = self._quota_days.get(key)
        if st is None:
            st = self._quota_days[key] = _QuotaDay(len(self.quotas))
        return st

    def _quota(self, t: np.ndarray, fan: np.ndarray, sizes, adm: Admission | None) -> Admission | None:
        """The daily quota over the messages the rate limit accepted, in order of their accepted times (then index)."""
        n = t.size
        if adm is None:
            keep, when, order = np.ones(n, dtype=bool), t, np.arange(n)
        else:
            keep, when = np.asarray(adm.keep, dtype=bool), np.asarray(adm.t, dtype=np.int64)
            idx = np.flatnonzero(keep)
            order = idx[np.lexsort((idx, when[idx]))]
        if order.size == 0:
            return adm
        units = [q.units(sizes, fan)[order] for q in self.quotas]
        at = self._utc_ms(when[order])
        day = at // DAY_MS
        cuts = np.flatnonzero(np.diff(day)) + 1
        refuse = np.zeros(order.size, dtype=bool)
        for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, order.size].tolist(), strict=True):
            st = self._day(int(day[a]))
            first = b
            if st.exhausted:
                first = a
            else:
                # used units only grow (every message uses at least one): the first message past a limit is
                # refused, and the quota being exhausted from then on, so is every later one of the day
                cums = [st.used[k] + np.cumsum(u[a:b]) for k, u in enumerate(units)]
                over = [a + int(np.searchsorted(cum, q.limit, side="right")) for q, cum in zip(self.quotas, cums,
                                                                                              strict=True)]
                full = [a + int(np.searchsorted(cum, q.limit, side="left")) for q, cum in zip(self.quotas, cums,
                                                                                             strict=True)]
                first = min(over)
                # reached: by an accepted message using the last unit, or at the first refusal (message order)
                cand = [(f, k) for k, f in enumerate(full) if f < first]
                if first < b:
                    cand.append((first, over.index(first)))
                if cand and st.reached is None:
                    i, st.which = min(cand)
                    st.reached = int(at[i])
                if first > a:
                    for k, cum in enumerate(cums):
                        st.used[k] = int(cum[first - a - 1])
                st.exhausted = first < b
            if first < b:
                refuse[first:b] = True
                st.rejected += b - first
            self._quota_row(int(day[a]), st)
        rej = order[refuse]
        if rej.size == 0:
            return adm
        copies = int(fan[rej].sum())
        self._add("rejected_messages", "daily_quota", int(rej.size))
        self._add("rejected", "daily_quota", copies)
        self._add("refused_attempts", "daily_quota", int(rej.size))
        keep = keep.copy()
        keep[rej] = False
        if adm is None:
            reason = np.zeros(n, dtype=np.int8)
            att_msg, att_t = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        else:
            reason = np.asarray(adm.reason, dtype=np.int8).copy()
            att_msg, att_t = np.asarray(adm.attempt_msg, dtype=np.int64), np.asarray(adm.attempt_t, dtype=np.int64)
        reason[rej] = _DAILY_QUOTA
        return Admission(keep, when.copy(), reason, np.concatenate([att_msg, rej.astype(np.int64)]),
                         np.concatenate([att_t, when[rej]]))

    def quota_admit(self, t_ms: int, size: int, copies: int) -> str | None:
        """One message past the per-second cap at ``t_ms`` (the events engine): the rule of :meth:`_quota`, on the
        same counters. A dry run records a refusal and still answers None (the world admits everything)."""
        if not self.quotas or (self.until_binding and self.binds):
            return None
        at = int(self._utc_ms(int(t_ms)))
        key = at // DAY_MS
        st = self._day(key)
        ok = not st.exhausted
        if ok:
            need = [q.unit(size, copies) for q in self.quotas]
            ok = all(st.used[k] + u <= q.limit for k, (q, u) in enumerate(zip(self.quotas, need, strict=True)))
            if ok:
                for k, (q, u) in enumerate(zip(self.quotas, need, strict=True)):
                    st.used[k] += u
                    if st.reached is None and st.used[k] >= q.limit:
                        st.reached, st.which = at, k
            else:
                st.exhausted = True
                if st.reached is None:
                    st.reached = at
                    st.which = next(k for k, (q, u) in enumerate(zip(self.quotas, need, strict=True))
                                    if st.used[k] + u > q.limit)
        if not ok:
            st.rejected += 1
            self._add("rejected_messages", "daily_quota", 1)
            self._add("rejected", "daily_quota", int(copies))
            self._add("refused_attempts", "daily_quota", 1)
        if st.reached is not None:
            self._quota_row(key, st)
        return None if ok or self.dry_run else "daily_quota"

    def _quota_row(self, key: int, st: _QuotaDay) -> None:
        """The report's row of UTC day ``key`` (days on which the quota was reached only)."""
        if st.reached is None:
            return
        q = self.quotas[st.which]
        if st.row is None:
            st.row = {"day": (_EPOCH + timedelta(days=key)).date().isoformat(), "used": 0,
                      "limit": int(q.limit) if float(q.limit).is_integer() else q.limit, "reached_at": None,
                      "rejected": 0}
            rows = self.report.setdefault("quota_days", [])
            rows.append(st.row)
            rows.sort(key=lambda r: r["day"])
        st.row["used"] = int(st.used[st.which])
        st.row["reached_at"] = (_EPOCH + timedelta(milliseconds=st.reached)).isoformat()
        st.row["rejected"] = st.rejected

    def carry_quota(self, prev: Enforcer) -> None:
        """Continue the daily quota's counters of ``prev`` (the enforcer before this one: the previous billing
        month's, or the plan switched from, sim/months/enforcer.py): a UTC day is counted whole by the platform.
        Units carry by restriction name; an exhausted day stays exhausted under the same limits."""
        days = getattr(prev, "_quota_days", None)
        if not self.quotas or not days:
            return
        old = {q.name: (k, q.limit) for k, q in enumerate(getattr(prev, "quotas", ()))}
        same = {q.name: q.limit for q in self.quotas} == {name: lim for name, (_, lim) in old.items()}
        for key, pst in days.items():
            st = self._day(key)
            for k, q in enumerate(self.quotas):
                if q.name in old:
                    st.used[k] = pst.used[old[q.name][0]]
            st.exhausted = pst.exhausted and same
            if st.exhausted or any(st.used[k] >= q.limit for k, q in enumerate(self.quotas)):
                st.reached = pst.reached

    def note_rejected(self, reason: str, messages: int, copies: int) -> None:
        self._add("rejected_messages", reason, messages)
        self._add("rejected", reason, copies)

    # -- one event at a time (the events engine) ---------------------------------------------------
    def message_cap(self, t_ms: int) -> int | None:
        caps = [] if self.rate_cap is None else [self.rate_cap]
        if self.throttled_from_ms is not None and t_ms >= self.throttled_from_ms // SECOND_MS * SECOND_MS:
            caps.append(self.throttle_cap)
        return min(caps) if caps else None

    def retry_policy(self) -> tuple[int, int]:
        return self.retries, self.backoff_ms

    def observe_message(self, t_ms: int, copies: int) -> None:
        """Dry run, one message at a time: count it against its second's cap; an attempt over the cap is
        recorded as refused (without the retries an acting limit would cause)."""
        cap = self.message_cap(t_ms)
        if cap is None:
            return
        sec = t_ms // SECOND_MS
        seen = self._dry_seconds
        n = seen.get(sec, 0) + 1
        seen[sec] = n
        if len(seen) > 4096:
            self._dry_seconds = {k: v for k, v in seen.items() if k >= sec - 1}
        if n > cap:
            self.note_refusal(t_ms, False, copies)

    def note_refusal(self, t_ms: int, final: bool, copies: int) -> str:
        """Same reasons as :meth:`_limit`: ``throttled`` from the throttle's second on, else ``message_rate``."""
        reason = "throttled" if bool(self._throttled(np.array([t_ms]))[0]) else "message_rate"
        self._add("refused_attempts", reason, 1)
        if final:
            self._add("rejected_messages", reason, 1)
            self._add("rejected", reason, copies)
        return reason

    def _add(self, section: str, reason: str, n: int) -> None:
        if n:
            d = self.report[section]
            d[reason] = d.get(reason, 0) + int(n)

    def _throttled(self, t: np.ndarray) -> np.ndarray:
        if self.throttled_from_ms is None:
            return np.zeros(t.shape, dtype=bool)
        return t >= self.throttled_from_ms // SECOND_MS * SECOND_MS

    def _limit(self, t: np.ndarray, cs: int, ce: int) -> Admission | None:
        """Per-second caps with retries (sim/world/rate_limit.py); ``None`` when no second is over its cap."""
        nsec = (ce - cs) // SECOND_MS
        big = np.iinfo(np.int64).max
        cap = np.full(nsec, self.rate_cap if self.rate_cap is not None else big, dtype=np.int64)
        thr_sec = nsec
        if self.throttled_from_ms is not None and self.throttled_from_ms < ce:
            thr_sec = max(0, (self.throttled_from_ms - cs) // SECOND_MS)
            cap[thr_sec:] = np.minimum(cap[thr_sec:], self.throttle_cap)
        decided = admit_per_second(t, cs, ce, cap, self.retries, self.backoff_ms)
        if decided is None:
            return None
        keep, when, final_second, att_msg, att_t = decided
        reason = np.where(final_second < 0, 0,
                          np.where(final_second >= thr_sec, _THROTTLED, _MESSAGE_RATE)).astype(np.int8)
        return Admission(keep, when, reason, att_msg, att_t)

    # -- notifications and throttling --------------------------------------------------------------
    def day_end(self, day_end_ms: int, usage_so_far: Callable[[], dict[str, np.ndarray]]) -> None:
        if self._quota_days:  # days before the one still being counted are done: forget their counters
            done = (int(self._utc_ms(day_end_ms)) // DAY_MS) - 1
            self._quota_days = {k: v for k, v in self._quota_days.items() if k >= done}
        if not self.notify and not self.free_limits:
            return
        if self.until_binding and self.binds:
            return
        if self.throttle_cap is None and self.notify and self.start is not None and self.minutes:
            return  # notifications alone are decided at finish(), from the final meters; nothing acts on them
        meters = usage_so_far()
        upto = day_end_ms // (MINUTE_S * 1000)
        for w in self.notify:
            v = meters.get(w.meter)
            if v is None:
                continue
            progress = w.progress(v[:upto])
            for th in self.thresholds:
                key = (w.meter, th)
                if key in self._runtime_notes:
                    continue
                at = w.minute_reaching(progress, float(w.base * Decimal(repr(th))), self._period_s())
                if at is not None:
                    self._runtime_notes[key] = at
        if self.throttled_from_ms is None and self.throttle_cap is not None:
            self._decide_throttling(meters, upto, day_end_ms)
        self.report["notifications"] = self._notes(self._runtime_notes)

    def _decide_throttling(self, meters: dict, upto: int, day_end_ms: int) -> None:
        best = None
        for w in self.free_limits:
            v = meters.get(w.meter)
            if v is None:
                continue
            progress = w.progress(v[:upto])
            above = np.flatnonzero(progress > float(w.base))
            if above.size == 0:
                continue
            exceeded_s = float(above[0]) * MINUTE_S
            notes = [at for (meter, _), at in self._runtime_notes.items() if meter == w.meter]
            start_s = max([exceeded_s] + [at + self.throttle_grace_s for at in notes])
            # from a whole second on: the throttle is a per-second cap, so it starts at the next second boundary
            start_ms = max(int(math.ceil(start_s)) * SECOND_MS, day_end_ms)
            best = start_ms if best is None else min(best, start_ms)
        if best is not None and (self.minutes is None or best < self.minutes * MINUTE_S * 1000):
            self.throttled_from_ms = best
            self.report["throttled_from"] = self._iso(best / 1000)

    def finish(self, meters: dict) -> None:
        """Notifications from the final usage meters, metered as the bill meters them (so equal to the bill's)."""
        if not self.notify or self.start is None or not self.minutes or (self.until_binding and self.binds):
            return
        from sim.pricing.usage import usage_from_dict

        period = {"start": self._iso(0), "end": self._iso(self._period_s())}
        out: dict[tuple[str, float], float | None] = {}
        for w in self.notify:
            if w.meter not in meters:
                continue
            usage = usage_from_dict({"period": period, "meters": {w.meter: meters[w.meter]}}, "<run>")
            m = measure_metric(w.metric, w.spec, usage.meters[w.meter], usage.period)
            for th in self.thresholds:
                level = w.base * Decimal(repr(th))
                if m.converted < level:
                    continue
                at = m.time_reaching(usage.period, float(level))
                out[(w.meter, th)] = None if at is None else (at - usage.period.start).total_seconds()
        self.report["notifications"] = self._notes(out)

    # -- helpers -----------------------------------------------------------------------------------
    def _period_s(self) -> float:
        return float(self.minutes * MINUTE_S) if self.minutes else math.inf

    def _iso(self, seconds: float) -> str:
        start = self.start if self.start is not None else datetime(1970, 1, 1, tzinfo=UTC)
        return (start.astimezone(UTC) + timedelta(seconds=seconds)).isoformat()

    def _notes(self, notes: dict) -> list[dict]:
        rows = sorted(notes.items(), key=lambda kv: (kv[1] is None, kv[1] or 0.0, kv[0][0], kv[0][1]))
        return [{"meter": meter, "threshold": th, "at": None if at is None else self._iso(at)}
                for (meter, th), at in rows]
