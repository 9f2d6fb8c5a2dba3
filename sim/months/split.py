"""One usage per billing month, cut from a run whose world never stopped at the month boundaries.

Why cut rather than run month by month: the world's state (users, copies waiting in the store, open
connections, phones in Doze) carries across a month boundary exactly as across any midnight, so one
continuous run and a cut are the only way the boundary cannot show. What is cut is metered, not state:

* per-minute and per-interval series are sliced at the boundary: a byte is billed in the month in which
  it crossed the wire, a stored byte in every month it sat in the store (time-weighted);
* MAU is a per-minute series of *first connections within the billing month* (the connection meter
  starts each month afresh, and counts a user online at its first minute), so a month's slice sums to
  the month's unique users;
* daily series (element counts, DAU) by calendar day; a distribution (``items``: messages by size,
  connections by seconds) by the calendar day ``at`` of its entries, re-indexed from the month's first day
  (the world attributes each item to one day, and splits a connection at a month's start, so a month's
  items are its own);
* counts are the world's per-month counts (:func:`sim.meters.month_counts`): each month conserves
  messages on its own (``stored_at_start`` + originated = delivered + ... + ``stored``), and a copy
  stored on the 30th and delivered on the 1st is counted once, in the month each event happened.

The run's whole usage stays the run's record; each month's usage is an ordinary one-month usage document
that ``sim price`` would accept.
"""

from __future__ import annotations

from datetime import datetime

from sim.pricing.period import Interval, Period


def month_usages(usage: dict, bounds: list[datetime], book, counts: list[dict] | None = None) -> list[dict]:
    """The usage document of each billing month ``[bounds[i], bounds[i+1])`` of the run ``usage``.

    ``book``: the run's :class:`sim.meters.MeterBook` (the period's minutes), for the bytes breakdown;
    ``counts``: the world's per-month counts (else each month gets none)."""
    p = usage["period"]
    period = Period.create(p["start"], p["end"], p.get("tz"))
    out = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        lo_s, hi_s = (round((t - period.start).total_seconds()) for t in (a, b))
        meters = {name: _slice(v, lo_s, hi_s, period) for name, v in usage["meters"].items()}
        activity = {name: _slice(v, lo_s, hi_s, period) for name, v in usage.get("activity", {}).items()}
        doc = {"period": {"start": a.isoformat(), "end": b.isoformat(), **({"tz": p["tz"]} if "tz" in p else {})},
               "meters": meters, "activity": activity,
               "breakdown": {} if book is None else _breakdown(book, lo_s // 60, hi_s // 60),
               "counts": dict(counts[i]) if counts else {},
               "run": {**usage.get("run", {}), "month": i + 1, "months": len(bounds) - 1}}
        out.append(doc)
    return out


def cut(value, lo_s: int, hi_s: int, period: Period):
    """``value`` within ``[lo_s, hi_s)`` seconds of ``period`` when it is a series or distribution (as
    :func:`month_usages` cuts it); anything else (a scalar, ids) as it is."""
    if isinstance(value, dict) and "interval" in value and ("values" in value or "items" in value):
        return _slice(value, lo_s, hi_s, period)
    return value


def _slice(value, lo_s: int, hi_s: int, period: Period):
    """A series' values within ``[lo_s, hi_s)`` seconds of the period (calendar days for ``1d``)."""
    if not isinstance(value, dict) or "interval" not in value:
        raise ValueError(f"a meter of a multi-month run must be a series, got {type(value).__name__}")
    iv = Interval.parse(value["interval"])
    if iv.daily:
        starts = [round((d - period.start).total_seconds()) for d in period.day_starts]
        lo = sum(1 for s in starts if s < lo_s)
        hi = sum(1 for s in starts if s < hi_s)
    else:
        if lo_s % iv.seconds or hi_s % iv.seconds:
            raise ValueError(f"a {iv.text} series cannot be cut at a month boundary")
        lo, hi = lo_s // iv.seconds, hi_s // iv.seconds
    if "items" in value:
        import numpy as np

        items = value["items"]
        at = np.asarray(items["at"], dtype=np.int64)
        keep = np.flatnonzero((at >= lo) & (at < hi))
        if keep.size and keep[-1] - keep[0] + 1 == keep.size:  # entries sorted by day (the simulator's): a slice
            a, b = int(keep[0]), int(keep[-1]) + 1
            pick = lambda xs: xs[a:b]  # noqa: E731
        else:
            pick = lambda xs: [xs[i] for i in keep.tolist()]  # noqa: E731
        return {**value, "items": {"at": (at[keep] - lo).tolist(), "value": pick(list(items["value"])),
                                   "count": pick(list(items["count"]))}}
    return {**value, "values": value["values"][lo:hi]}


def _breakdown(book, lo: int, hi: int) -> dict[str, dict[str, int]]:
    from sim.meters import CATEGORIES, DIRECTIONS

    return {("outbound" if d == "out" else "inbound"): {c: int(round(float(book.bytes[(d, c)][lo:hi].sum())))
                                                       for c in CATEGORIES} for d in DIRECTIONS}

