"""Message metering shared by both engines: counts, bytes and the stored level of recipient copies.

Why shared: what a copy costs on the wire and how its outcome is counted is the platform's billing
unit, not a property of an engine. The ``fast`` engine hands whole days of copies and their routing
outcomes (:class:`~sim.world.copies.Routed`); the ``events`` engine hands the copies its server
decided. Either way the same calls put the same bytes (``sim/protocol/``) into the same
:class:`~sim.meters.MeterBook` and the same counts into the run's count dict, so a difference between
the engines can only come from what the clients did.

A copy is counted as *sent* in the pass where it is ``new``; its stored bytes are added at its send
time and removed at its delivery or expiry time, so ``stored_bytes`` is the store's level minute by
minute.
"""

from __future__ import annotations

import numpy as np

from sim.meters import ItemCounter, MeterBook, bincount_into, numbers, span_counts
from sim.scenario import Messaging
from sim.world.connections import MINUTE_MS, settle
from sim.world.copies import (
    DELIVERED_LATER,
    DELIVERED_NOW,
    DISCARDED,
    DROPPED,
    EXPIRED,
    LATENCY_KEYS,
    MSG,
    Copies,
    Routed,
    latency_histogram,
)

#: number of outcome codes of a routing pass (DELIVERED_NOW ... DISCARDED, :mod:`sim.world.copies`)
N_OUTCOMES = 6


class MessageMeter:
    """Meters message and receipt copies into a book; counts into a shared ``counts`` dict."""

    def __init__(self, book: MeterBook, protocol, cfg: Messaging, counts: dict[str, int],
                 day_starts_ms: np.ndarray | None = None) -> None:
        """``day_starts_ms``: world time of each calendar day's start in the billing period (as the connection
        meter's; None: the book holds the period alone, its calendar days from ``book.start`` in ``book.tz``)."""
        self.book = book
        self.protocol = protocol
        self.cfg = cfg
        self.counts = counts
        m = book.minutes
        self.stored_delta = np.zeros(m + 1)
        self.stored_level = 0.0
        self.msg_series = np.zeros(m)
        self.orig_series = np.zeros(m)
        self.deliv_series = np.zeros(m)
        self._one_cache: dict[tuple[int, str, str], dict[str, float]] = {}
        # application messages per minute and their sizes per period day, by direction
        self.wire_messages = {"in": np.zeros(m), "out": np.zeros(m)}
        self.sizes = {"in": ItemCounter(book.days), "out": ItemCounter(book.days)}
        self.day_of_minute = _day_of_minute(book, day_starts_ms)

    def _count(self, name: str, k: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(k)

    def stored_series(self) -> np.ndarray:
        """The stored-bytes level per minute so far."""
        return settle(np.cumsum(self.stored_delta)[:-1])

    def write(self) -> None:
        """Put the stored level and the per-minute message series into the book (end of run)."""
        book = self.book
        book.set_level("stored_bytes", self.stored_series())
        book.add_series_clock("messages", self.msg_series)
        book.add_series_clock("messages_originated", self.orig_series)
        book.add_series_clock("deliveries", self.deliv_series)

    def reject(self, reason: str, messages: int, copies: int) -> None:
        self._count("messages_rejected", messages)
        self._count("messages_sent", copies)
        self._count("rejected", copies)
        self._count(f"rejected_{reason}", copies)

    def refused_attempts(self, sizes: np.ndarray, t: np.ndarray) -> None:
        """A refused upload: its bytes in, and the platform's error reply out (an app-protocol message)."""
        minute = t // MINUTE_MS
        self.add_messages(sizes, minute, "in", receipt=False)
        reply = np.full(sizes.size, int(round(self.cfg.receipt_bytes)), dtype=np.int64)
        self.add_messages(reply, minute, "out", receipt=True, count=False)  # protocol: no message
        self._count("rejected_attempts", sizes.size)

    def stored_size(self, c: Copies, idx: np.ndarray) -> np.ndarray:
        return c.size[idx] + self.cfg.stored_overhead_bytes

    def _one(self, size: int, direction: str, kind: str = "message") -> dict[str, float]:
        """Wire bytes of one message of ``size`` (remembered: receipts all have one size)."""
        key = (size, direction, kind)
        one = self._one_cache.get(key)
        if one is None:
            sz = np.array([size], dtype=np.int64)
            one = self._one_cache[key] = {k: float(v[0]) for k, v in
                                          self.protocol.messages(sz, direction, kind).items()}
        return one

    def add_messages(self, sizes: np.ndarray, minute: np.ndarray, direction: str, receipt: bool,
                     count: bool = True) -> None:
        """The wire bytes of messages of payload ``sizes`` at ``minute`` (``receipt``: their payload is application
        protocol). ``count``: they are application messages (``messages_in``/``_out`` and their sizes); False for
        protocol replies (a refused attempt's error), whose bytes are the same either way."""
        if sizes.size == 0:
            return
        other = "in" if direction == "out" else "out"
        book = self.book
        if sizes[0] == sizes.min() == sizes.max():
            # all the same size (e.g. fixed-size text): price one message, count messages per minute
            one = self._one(int(sizes[0]), direction, "receipt" if receipt else "message")
            lo, per_min = span_counts(minute, book.minutes)  # messages per minute, from minute lo on
            per_min = per_min.astype(np.float64)
            if count and per_min.size:
                self.wire_messages[direction][lo : lo + per_min.size] += per_min
                days = self.day_of_minute[lo : lo + per_min.size]
                first = int(np.searchsorted(days, 0))  # the warm-up's minutes (day -1) come first
                if first < days.size:
                    nd = self.book.days
                    per_day = np.bincount(days[first:], weights=per_min[first:], minlength=nd)[:nd]
                    self.sizes[direction].add_counts(np.arange(nd), int(sizes[0]), per_day)
            for key, d, cat in (
                ("payload", direction, "app_protocol" if receipt else "payload"),
                ("app_protocol", direction, "app_protocol"), ("tls_record", direction, "tls_record"),
                ("tcpip", direction, "tcpip"), ("ack_tcpip", other, "tcpip"), ("ack_app", other, "app_protocol"),
                ("ack_tls_record", other, "tls_record"),
            ):
                if one[key]:
                    book.add_bytes_span(d, cat, lo, per_min * one[key])
            return
        m = self.protocol.messages(sizes, direction, "receipt" if receipt else "message")
        items = [
            (direction, "app_protocol" if receipt else "payload", m["payload"]),
            (direction, "app_protocol", m["app_protocol"]), (direction, "tls_record", m["tls_record"]),
            (direction, "tcpip", m["tcpip"]), (other, "tcpip", m["ack_tcpip"]),
        ]
        if m["ack_app"].any():
            items += [(other, "app_protocol", m["ack_app"]), (other, "tls_record", m["ack_tls_record"])]
        book.add_bytes_many(minute, items)  # one scatter, added in this order
        if count:
            self._count_messages(sizes, minute, direction)

    def _count_messages(self, sizes: np.ndarray, minute, direction: str) -> None:
        """Messages of payload ``sizes`` at ``minute`` into the per-minute counts and the sizes per period day."""
        minute = np.asarray(minute, dtype=np.int64)
        if minute.ndim == 0:
            minute = np.full(sizes.size, int(minute), dtype=np.int64)
        bincount_into(self.wire_messages[direction], minute)
        ok = minute < self.book.minutes
        day = self.day_of_minute[minute[ok]] if not ok.all() else self.day_of_minute[minute]
        self.sizes[direction].add(day, sizes[ok] if not ok.all() else sizes)

    def meters(self) -> dict:
        """``messages_in``, ``messages_out`` (per minute of the clock) and ``message_sizes_in`` / ``_out`` (per
        period day) as usage-file meters (module doc)."""
        out: dict = {}
        for d in ("in", "out"):
            out[f"messages_{d}"] = {"interval": "1min", "values": numbers(self.wire_messages[d])}
        for d in ("in", "out"):
            out[f"message_sizes_{d}"] = self.sizes[d].to_meter()
        return out

    def meter_uploads(self, msgs) -> None:
        """Each originated message (``msgs.t``, ``msgs.size``) is uploaded once by its sender (group fan-out
        happens server-side)."""
        minute = msgs.t // MINUTE_MS
        self.add_messages(msgs.size, minute, "in", receipt=False)
        self._count("messages_originated", len(msgs))
        bincount_into(self.orig_series, minute)

    def meter_uploads_receipts(self, rc: Copies) -> None:
        self.add_messages(rc.size, rc.t // MINUTE_MS, "in", receipt=True)

    def account(self, c: Copies, r: Routed) -> None:
        """Counts, delivery bytes and stored-bytes level for final outcomes of a routing pass."""
        out = r.outcome
        is_msg = c.kind == MSG
        # the counts from one histogram per copy of (receipt, outcome, new, offline, store)
        code = ((~is_msg).astype(np.int64) * N_OUTCOMES + out) * 8 + c.new * 4 + r.offline * 2 + c.store
        hist = np.bincount(code, minlength=2 * N_OUTCOMES * 8)
        if hist.size != 2 * N_OUTCOMES * 8:
            raise ValueError(f"unknown copy outcome in {np.unique(out)}")
        hist = hist.reshape(2, N_OUTCOMES, 2, 2, 2)  # [receipt, outcome, new, offline, store]
        per_group = hist.reshape(2, -1).sum(axis=1).tolist()
        stored_new_all = c.new & r.offline & (out != DROPPED) & (out != DISCARDED)
        gone_all = r.offline & ((out == DELIVERED_LATER) | (out == EXPIRED))
        dl_all = (out == DELIVERED_NOW) | (out == DELIVERED_LATER)
        for g, kind_is_msg in ((0, True), (1, False)):
            if not per_group[g]:
                continue
            # the copies of this kind (all of them when the batch has one kind only)
            sel = None if per_group[g] == len(c) else (is_msg if kind_is_msg else ~is_msg)
            hg = hist[g]
            by_outcome = hg.reshape(N_OUTCOMES, -1).sum(axis=1).tolist()
            p = "" if kind_is_msg else "receipts_"
            n_now, n_later = by_outcome[DELIVERED_NOW], by_outcome[DELIVERED_LATER]
            self._count(f"{p}messages_sent" if kind_is_msg else "receipts_sent", int(hg[:, 1].sum()))
            self._count(f"{p}delivered", n_now + n_later)
            self._count(f"{p}delivered_immediately", n_now)
            self._count(f"{p}delivered_from_store", n_later)
            self._count(f"{p}expired", by_outcome[EXPIRED])
            self._count(f"{p}dropped", by_outcome[DROPPED])
            if kind_is_msg:
                self._count("dropped_no_store", int(hg[DROPPED, :, :, 0].sum()))
            if by_outcome[DISCARDED]:
                self._count(f"{p}discarded", by_outcome[DISCARDED])
            kept = [o for o in range(N_OUTCOMES) if o not in (DROPPED, DISCARDED)]
            self._count(f"{p}stored_total", int(hg[kept, 1, 1].sum()))
            # stored-bytes level: + at store time, - at delivery/expiry
            idx = np.flatnonzero(_among(stored_new_all, sel))
            sz = self.stored_size(c, idx)
            bincount_into(self.stored_delta, c.t[idx] // MINUTE_MS, sz)
            self.stored_level += float(sz.sum())
            gone = np.flatnonzero(_among(gone_all, sel))
            gsz = self.stored_size(c, gone)
            bincount_into(self.stored_delta, r.when[gone] // MINUTE_MS, gsz, sign=-1)
            self.stored_level -= float(gsz.sum())
            dl = np.flatnonzero(_among(dl_all, sel))
            minute = r.when[dl] // MINUTE_MS
            self.add_messages(c.size[dl], minute, "out", receipt=not kind_is_msg)
            if kind_is_msg:
                self.latency(r.when[dl] - c.t[dl])
                bincount_into(self.msg_series, c.t[_among(c.new, sel)] // MINUTE_MS)
                bincount_into(self.deliv_series, minute)

    def latency(self, delay_ms: np.ndarray) -> None:
        """Delivery-latency histogram of message copies (``latency_*`` counts; read with
        :func:`sim.world.mobile.messaging.latency_quantiles`)."""
        for key, k in zip(LATENCY_KEYS, latency_histogram(delay_ms), strict=True):
            self._count(key, int(k))


def _day_of_minute(book: MeterBook, day_starts_ms: np.ndarray | None) -> np.ndarray:
    """The period day of each minute of the book's clock (-1: the warm-up; the last day after the period)."""
    if day_starts_ms is None:
        from datetime import timedelta

        from sim.pricing.period import Period

        p = Period.create(book.start, book.start + timedelta(minutes=book.minutes), book.tz)
        day_starts_ms = np.array([round((d - p.start).total_seconds() * 1000) for d in p.day_starts], dtype=np.int64)
    starts = np.asarray(day_starts_ms, dtype=np.int64)
    first_minute = (starts + MINUTE_MS - 1) // MINUTE_MS  # days start on whole minutes
    return (np.searchsorted(first_minute, np.arange(book.minutes), side="right") - 1).astype(np.int64)


def _among(mask: np.ndarray, sel: np.ndarray | None) -> np.ndarray:
    return mask if sel is None else mask & sel
