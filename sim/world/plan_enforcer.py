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
     "unsupported": [restriction names this world does not enforce]}
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
                 until_binding: bool = False) -> None:
        """``until_binding`` (dry runs): stop counting once the limits are known to bind -- for a caller that
        only asks :attr:`binds` (a fleet's free plans: sim/comparison.py ``run_plans(own_runs="priced")``);
        the report's counts then stop at that point."""
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

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan, users: int, book=None, dry_run: bool = False, rate_scale: float | None = 1.0,
                  **kw) -> PlanEnforcer:
        """The runtime parts of ``plan`` (a :class:`sim.pricing.plan.Plan`) for an app of ``users`` registered users.

        ``rate_scale``: the world simulates that share of the app's users, so it gets that share of the app's
        per-second message rate; None: the rate is not enforced (a sampled run, sim/sampling.py: a sample's
        per-second bursts are far larger, relative to its mean, than the whole app's, so a scaled cap would
        reject what the app never would).

        ``book`` (a :class:`sim.meters.MeterBook`), if given, fixes the period now; otherwise the world
        tells the enforcer when the run begins. ``kw``: ``retries``, ``backoff_s``.
        """
        rate, unsupported = None, []
        for name, r in plan.restrictions.items():
            if r.measure == "messages_per_second" and r.action in ("reject", "throttle") \
                    and r.scope in ("app", "account", "platform"):
                if rate_scale is None:
                    unsupported.append(name)
                    continue
                limit = r.resolved_limit(users) * rate_scale
                rate = limit if rate is None else min(rate, limit)
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
                   minutes=book.minutes if book is not None else None, **kw)

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
    def admit_messages(self, t_ms, sender, fanout):
        if len(t_ms) == 0 or (self.rate_cap is None and self.throttled_from_ms is None):
            return None
        if self.until_binding and self.binds:
            return None
        cs = int(t_ms[0]) // DAY_MS * DAY_MS
        adm = self._limit(np.asarray(t_ms, dtype=np.int64), cs, cs + DAY_MS)
        if adm is None:
            return None
        fan = np.asarray(fanout, dtype=np.int64)
        for code, reason in enumerate(REJECT_REASONS, start=1):
            sel = adm.reason == code
            if sel.any():
                self._add("rejected_messages", reason, int(sel.sum()))
                self._add("rejected", reason, int(fan[sel].sum()))
        if adm.attempt_msg.size:
            thr = self._throttled(adm.attempt_t)
            self._add("refused_attempts", "throttled", int(thr.sum()))
            self._add("refused_attempts", "message_rate", int((~thr).sum()))
        return None if self.dry_run else adm

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
