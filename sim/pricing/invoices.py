"""The IoT seed's billing timeline: invoices, deadlines, reminders, downgrade to Free and restoration.

Pure calendar arithmetic (no SimPy, no world). Seed 004, "Billing terms and conditions"::

    You get the invoice from us for the reporting month (e.g. November) no later than five days after the
    end of the reporting month (December 5). You have to pay until the end of this month (December 28).
    You'll get additional reminder three days before the deadline. On January 1, new invoice will be issued
    (for December) and in case of non-payment of November's invoice, your account will be downgraded to the
    free version ... Once you pay both invoices (for November and December), your limits and data will be
    restored immediately.

Readings (each instant is the *start* of a calendar day, 00:00 in the period's time zone ``tz``):

* **reporting month** -- the calendar month (in ``tz``) containing each of ``month_starts``; a simulated
  span that starts or ends inside a month still bills that whole calendar month's invoice.
* **issued** -- the latest day the seed allows: the month's last day + ``invoice_within_days`` (5), i.e.
  00:00 on the 5th of the next month (November -> 2026-12-05T00:00). The seed's "On January 1, new invoice
  will be issued (for December)" contradicts it (January 1 is not "December 5"'s analogue); we keep the
  first bullet's rule, which both the due date and the reminder refer to.
* **due** -- 00:00 on the ``due_day`` (28th) of the month after the reporting month (December 28).
* **reminder** -- ``reminder_days_before`` (3) days before the due instant (December 25, 00:00). It is
  always listed on the invoice; the ``reminder`` *event* is emitted only if the invoice is still unpaid then.
* **downgrade** -- 00:00 on the 1st of the month after the due month (January 1), if the invoice is still
  unpaid at that instant. A payment at exactly that instant counts as made in time (no zero-length window).
* **restoration** -- "once you pay both invoices": while downgraded, a payment pays every invoice issued so
  far (the one that caused the downgrade and any later one already issued), so the limits are restored at
  that payment.

Payment policies (``payment``: any object with ``policy`` in ``{"on_time", "late", "never"}`` and an int
``late_days``; ``None`` = on time):

* ``on_time`` -- each invoice is paid at its due instant (00:00 on the 28th);
* ``late`` -- each invoice is paid ``late_days`` calendar days after its due instant (December 28 + 10 days
  = January 7, 00:00); an invoice already paid by an earlier payment (see restoration) is not paid again;
* ``never`` -- no invoice is ever paid: the first downgrade never ends.

Examples (November 2026): never paid -> downgraded from 2027-01-01; late by 10 days -> downgraded
2027-01-01 to 2027-01-07 (restored at the payment); late by 2 days (paid December 30) -> no downgrade.

The timeline of the last simulated months runs past the simulated span (November's invoice is issued in
December): those invoices, events and downgrade windows are reported too, flagged ``after_run``.

Interface for the world (the IoT fleet runs under the Free plan's limits during a downgrade)::

    tl = invoice_timeline(month_starts, end, payment, tz)
    windows = tl.windows_s()          # [(a, b | None)] seconds from tl.start, [a, b), intersecting the span
    limits = IotPlanLimits.from_plan(commercial).with_downgrades(windows, free_plan)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sim.pricing.period import parse_zone, zone_name

__all__ = ["DEFAULT_TERMS", "Invoice", "Terms", "Timeline", "Window", "calendar_months", "invoice_timeline"]

POLICIES = ("on_time", "late", "never")
#: event kinds in the order they are listed when they share an instant (a payment before a downgrade check)
KINDS = ("invoice", "reminder", "due", "paid", "restore", "downgrade")


@dataclass(frozen=True)
class Terms:
    """The billing terms (duck-typed like :class:`sim.pricing.plan.BillingTerms`)."""

    invoice_within_days: int = 5
    due_day: int = 28
    reminder_days_before: int = 3


#: the seed's terms (flespi-commercial.yaml ``billing_terms``)
DEFAULT_TERMS = Terms()


@dataclass(frozen=True)
class Invoice:
    """One reporting month's invoice; instants are aware datetimes in the timeline's time zone."""

    month: str  #: "YYYY-MM"
    start: datetime  #: the reporting month [start, end)
    end: datetime
    issued: datetime
    due: datetime
    reminder: datetime
    downgrade_at: datetime  #: the instant non-payment downgrades the account
    paid: datetime | None  #: None: never paid
    late: bool  #: paid after ``due`` (or never)
    reminder_sent: bool  #: still unpaid at ``reminder``


@dataclass(frozen=True)
class Window:
    """A downgrade ``[start, end)`` (``end`` None: not restored), caused by ``month``'s unpaid invoice."""

    start: datetime
    end: datetime | None
    month: str


@dataclass
class Timeline:
    """The billing timeline of the simulated months; see the module doc."""

    start: datetime  #: the simulated span [start, end)
    end: datetime
    tz: tzinfo
    policy: str
    late_days: int
    invoices: list[Invoice]
    windows: list[Window] = field(default_factory=list)

    @property
    def downgrades(self) -> list[tuple[datetime, datetime | None]]:
        """Downgrade windows ``(from, to or None)``: each intersects or follows the simulated span."""
        return [(w.start, w.end) for w in self.windows]

    def events(self) -> list[tuple[datetime, str, str]]:
        """``(at, kind, month)`` sorted by time (ties in :data:`KINDS` order), kind in invoice / reminder /
        due / paid / downgrade / restore; a downgrade and its restore carry the month that caused it."""
        ev: list[tuple[datetime, str, str]] = []
        for inv in self.invoices:
            ev.append((inv.issued, "invoice", inv.month))
            if inv.reminder_sent:
                ev.append((inv.reminder, "reminder", inv.month))
            ev.append((inv.due, "due", inv.month))
            if inv.paid is not None:
                ev.append((inv.paid, "paid", inv.month))
        for w in self.windows:
            ev.append((w.start, "downgrade", w.month))
            if w.end is not None:
                ev.append((w.end, "restore", w.month))
        return sorted(ev, key=lambda e: (e[0].astimezone(UTC), KINDS.index(e[1]), e[2]))

    def after_run(self, t: datetime | None) -> bool:
        return t is not None and t >= self.end

    def windows_s(self, origin: datetime | None = None) -> list[tuple[int, int | None]]:
        """Downgrade windows as whole seconds from ``origin`` (default: the span's start), ``[a, b)``, ``b``
        None when never restored; only windows starting before the span's end (the others act after it)."""
        o = (origin or self.start).astimezone(UTC)
        out: list[tuple[int, int | None]] = []
        for w in self.windows:
            if w.start >= self.end:
                continue
            a = int((w.start.astimezone(UTC) - o).total_seconds())
            b = None if w.end is None else int((w.end.astimezone(UTC) - o).total_seconds())
            out.append((a, b))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ISO instants, ``after_run`` flags for what happens at or after the span's end."""

        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "tz": zone_name(self.tz),
            "start": iso(self.start),
            "end": iso(self.end),
            "payment": {"policy": self.policy, "late_days": self.late_days},
            "invoices": [
                {
                    "month": i.month,
                    "issued": iso(i.issued),
                    "due": iso(i.due),
                    "reminder": iso(i.reminder),
                    "reminder_sent": i.reminder_sent,
                    "downgrade_at": iso(i.downgrade_at),
                    "paid": iso(i.paid),
                    "late": i.late,
                    "after_run": self.after_run(i.issued),
                }  # fmt: skip
                for i in self.invoices
            ],
            "downgrades": [
                {
                    "start": iso(w.start),
                    "end": iso(w.end),
                    "month": w.month,
                    "after_run": self.after_run(w.start),
                    "restored_after_run": w.end is None or self.after_run(w.end),
                }  # fmt: skip
                for w in self.windows
            ],
            "events": [
                {"at": iso(at), "kind": kind, "month": month, "after_run": self.after_run(at)}
                for at, kind, month in self.events()
            ],
        }


def _zone(tz: tzinfo | str | None, fallback: datetime) -> tzinfo:
    if tz is None:
        return fallback.tzinfo or UTC
    return parse_zone(tz) if isinstance(tz, str) else tz


def _midnight(d: date, tz: tzinfo) -> datetime:
    return datetime.combine(d, time(), tzinfo=tz)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def calendar_months(start: datetime, end: datetime, tz: tzinfo | str | None = None) -> list[datetime]:
    """Starts of the calendar months (in ``tz``) intersecting ``[start, end)``: the first is ``start``
    itself, the others local midnights of the 1st."""
    zone = _zone(tz, start)
    out = [start]
    m = _next_month(start.astimezone(zone).date())
    while (t := _midnight(m, zone)) < end:
        out.append(t)
        m = _next_month(m)
    return out


def _policy(payment: Any) -> tuple[str, int]:
    if payment is None:
        return "on_time", 0
    policy = getattr(payment, "policy", None)
    if policy not in POLICIES:
        raise ValueError(f"payment.policy: {policy!r} is not one of {', '.join(POLICIES)}")
    late = getattr(payment, "late_days", 0)
    late = 0 if late is None else late
    if isinstance(late, bool) or not isinstance(late, int) or late < 0:
        raise ValueError(f"payment.late_days: {late!r} is not a whole number of days >= 0")
    return policy, late if policy == "late" else 0


def invoice_timeline(
    month_starts: Sequence[datetime],
    end: datetime,
    payment: Any = None,
    tz: tzinfo | str | None = None,
    terms: Any = None,
) -> Timeline:
    """The billing timeline of the reporting months ``month_starts`` (aware datetimes, one per calendar
    month, increasing; see :func:`calendar_months`); ``end`` is the end of the simulated span.

    ``payment``: a policy object (``policy``, ``late_days``), ``None`` = on time. ``tz``: the period's time
    zone (a tzinfo or a name; default the first month start's zone). ``terms``: an object with
    ``invoice_within_days``, ``due_day`` and ``reminder_days_before`` (a plan's ``billing_terms``),
    default the seed's (5, 28, 3).
    """
    if not month_starts:
        raise ValueError("month_starts: no reporting month given")
    if any(t.tzinfo is None for t in (*month_starts, end)):
        raise ValueError("month_starts and end must be aware datetimes")
    zone = _zone(tz, month_starts[0])
    terms = terms or DEFAULT_TERMS
    within, due_day, before = (
        int(terms.invoice_within_days),
        int(terms.due_day),
        int(terms.reminder_days_before),
    )
    if not 1 <= due_day <= 28:
        raise ValueError(f"terms.due_day: {due_day} is not a day every month has (1-28)")
    if end <= month_starts[0]:
        raise ValueError(
            f"end {end.isoformat()} is not after the first month start {month_starts[0].isoformat()}"
        )
    policy, late_days = _policy(payment)

    # the reporting months and each invoice's calendar
    rows: list[dict[str, Any]] = []
    for t in month_starts:
        first = t.astimezone(zone).date().replace(day=1)
        if rows and first <= rows[-1]["first"]:
            raise ValueError(
                f"month_starts: {t.isoformat()} is not in a later calendar month than the one before"
            )
        nxt = _next_month(first)
        issued = _midnight(nxt - timedelta(days=1) + timedelta(days=within), zone)
        due = _midnight(nxt.replace(day=due_day), zone)
        if issued > due:
            raise ValueError(f"terms: the invoice for {first:%Y-%m} would be issued after it is due")
        rows.append({
            "first": first, "month": f"{first:%Y-%m}",
            "start": _midnight(first, zone), "end": _midnight(nxt, zone),
            "issued": issued, "due": due, "reminder": _midnight(due.date() - timedelta(days=before), zone),
            "downgrade_at": _midnight(_next_month(due.date()), zone), "paid": None,
        })  # fmt: skip

    # payments and downgrade checks in time order (a payment first at the same instant)
    queue: list[tuple[datetime, int, int]] = []
    for i, r in enumerate(rows):
        if policy != "never":
            queue.append((_midnight(r["due"].date() + timedelta(days=late_days), zone), 0, i))
        queue.append((r["downgrade_at"], 1, i))
    queue.sort(key=lambda q: (q[0].astimezone(UTC), q[1], q[2]))
    windows: list[Window] = []
    open_at: tuple[datetime, str] | None = None
    for t, what, i in queue:
        r = rows[i]
        if what == 0:  # the planned payment of invoice i
            if r["paid"] is not None:
                continue
            if open_at is None:
                r["paid"] = t
            else:  # "once you pay both invoices": every invoice issued so far, then restored at once
                for q in rows:
                    if q["paid"] is None and q["issued"] <= t:
                        q["paid"] = t
                windows.append(Window(open_at[0], t, open_at[1]))
                open_at = None
        elif r["paid"] is None and open_at is None:  # still unpaid on the 1st: downgraded
            open_at = (t, r["month"])
    if open_at is not None:
        windows.append(Window(open_at[0], None, open_at[1]))

    invoices = [
        Invoice(
            month=r["month"],
            start=r["start"],
            end=r["end"],
            issued=r["issued"],
            due=r["due"],
            reminder=r["reminder"],
            downgrade_at=r["downgrade_at"],
            paid=r["paid"],
            late=r["paid"] is None or r["paid"] > r["due"],
            reminder_sent=r["paid"] is None or r["paid"] > r["reminder"],
        )  # fmt: skip
        for r in rows
    ]
    return Timeline(start=month_starts[0], end=end, tz=zone, policy=policy, late_days=late_days,
                    invoices=invoices, windows=windows)  # fmt: skip
