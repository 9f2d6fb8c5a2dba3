"""Message metering shared by both engines: counts, bytes and the stored level of recipient copies.

Why shared: what a copy costs on the wire and how its outcome is counted is the platform's billing
unit, not a property of an engine. The ``fast`` engine hands whole days of copies and their routing
outcomes (:class:`~sim.world.copies.Routed`); the ``events`` engine hands the copies its server
decided. Either way the same calls put the same bytes (``sim/protocol.py``) into the same
:class:`~sim.meters.MeterBook` and the same counts into the run's count dict, so a difference between
the engines can only come from what the clients did.

A copy is counted as *sent* in the pass where it is ``new``; its stored bytes are added at its send
time and removed at its delivery or expiry time, so ``stored_bytes`` is the store's level minute by
minute.
"""

from __future__ import annotations

import numpy as np

from sim.meters import MeterBook
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


class MessageMeter:
    """Meters message and receipt copies into a book; counts into a shared ``counts`` dict."""

    def __init__(self, book: MeterBook, protocol, cfg: Messaging, counts: dict[str, int]) -> None:
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

    def _count(self, name: str, k: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(k)

    def stored_series(self) -> np.ndarray:
        """The stored-bytes level per minute so far."""
        return settle(np.cumsum(self.stored_delta)[:-1])

    def write(self) -> None:
        """Put the stored level and the per-minute message series into the book (end of run)."""
        book = self.book
        book.set_level("stored_bytes", self.stored_series())
        minutes = np.arange(book.minutes)
        book.add_series("messages", minutes, self.msg_series)
        book.add_series("messages_originated", minutes, self.orig_series)
        book.add_series("deliveries", minutes, self.deliv_series)

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
        self.add_messages(reply, minute, "out", receipt=True)
        self._count("rejected_attempts", sizes.size)

    def stored_size(self, c: Copies, idx: np.ndarray) -> np.ndarray:
        return c.size[idx] + self.cfg.stored_overhead_bytes

    def add_messages(self, sizes: np.ndarray, minute: np.ndarray, direction: str, receipt: bool) -> None:
        if sizes.size == 0:
            return
        other = "in" if direction == "out" else "out"
        book = self.book
        if sizes[0] == sizes.min() == sizes.max():
            # all the same size (e.g. fixed-size text): price one message, count messages per minute
            one = {k: float(v[0]) for k, v in self.protocol.messages(sizes[:1], direction).items()}
            per_min = np.bincount(minute, minlength=book.minutes)[: book.minutes].astype(np.float64)
            allm = np.arange(book.minutes)
            for key, d, cat in (
                ("payload", direction, "app_protocol" if receipt else "payload"),
                ("app_protocol", direction, "app_protocol"), ("tls_record", direction, "tls_record"),
                ("tcpip", direction, "tcpip"), ("ack_tcpip", other, "tcpip"), ("ack_app", other, "app_protocol"),
                ("ack_tls_record", other, "tls_record"),
            ):
                if one[key]:
                    book.add_bytes(d, cat, allm, per_min * one[key])
            return
        m = self.protocol.messages(sizes, direction)
        book.add_bytes(direction, "app_protocol" if receipt else "payload", minute, m["payload"])
        book.add_bytes(direction, "app_protocol", minute, m["app_protocol"])
        book.add_bytes(direction, "tls_record", minute, m["tls_record"])
        book.add_bytes(direction, "tcpip", minute, m["tcpip"])
        book.add_bytes(other, "tcpip", minute, m["ack_tcpip"])
        if m["ack_app"].any():
            book.add_bytes(other, "app_protocol", minute, m["ack_app"])
            book.add_bytes(other, "tls_record", minute, m["ack_tls_record"])

    def meter_uploads(self, msgs) -> None:
        """Each originated message (``msgs.t``, ``msgs.size``) is uploaded once by its sender (group fan-out
        happens server-side)."""
        minute = msgs.t // MINUTE_MS
        self.add_messages(msgs.size, minute, "in", receipt=False)
        self._count("messages_originated", len(msgs))
        self.orig_series += np.bincount(minute, minlength=self.book.minutes)[: self.book.minutes]

    def meter_uploads_receipts(self, rc: Copies) -> None:
        self.add_messages(rc.size, rc.t // MINUTE_MS, "in", receipt=True)

    def account(self, c: Copies, r: Routed) -> None:
        """Counts, delivery bytes and stored-bytes level for final outcomes of a routing pass."""
        m = self.book.minutes
        for kind_is_msg in (True, False):
            sel = (c.kind == MSG) if kind_is_msg else (c.kind != MSG)
            if not sel.any():
                continue
            p = "" if kind_is_msg else "receipts_"
            new = sel & c.new
            self._count(f"{p}messages_sent" if kind_is_msg else "receipts_sent", int(new.sum()))
            out = r.outcome
            now = sel & (out == DELIVERED_NOW)
            later = sel & (out == DELIVERED_LATER)
            self._count(f"{p}delivered", int(now.sum() + later.sum()))
            self._count(f"{p}delivered_immediately", int(now.sum()))
            self._count(f"{p}delivered_from_store", int(later.sum()))
            self._count(f"{p}expired", int((sel & (out == EXPIRED)).sum()))
            drop = sel & (out == DROPPED)
            self._count(f"{p}dropped", int(drop.sum()))
            if kind_is_msg:
                self._count("dropped_no_store", int((drop & ~c.store).sum()))
            disc = sel & (out == DISCARDED)
            if disc.any():
                self._count(f"{p}discarded", int(disc.sum()))
            stored_new = new & r.offline & (out != DROPPED) & (out != DISCARDED)
            self._count(f"{p}stored_total", int(stored_new.sum()))
            # stored-bytes level: + at store time, - at delivery/expiry
            idx = np.flatnonzero(stored_new)
            sz = self.stored_size(c, idx)
            self.stored_delta += np.bincount(c.t[idx] // MINUTE_MS, weights=sz, minlength=m + 1)[: m + 1]
            self.stored_level += float(sz.sum())
            gone = np.flatnonzero(sel & r.offline & ((out == DELIVERED_LATER) | (out == EXPIRED)))
            gsz = self.stored_size(c, gone)
            self.stored_delta -= np.bincount(r.when[gone] // MINUTE_MS, weights=gsz, minlength=m + 1)[: m + 1]
            self.stored_level -= float(gsz.sum())
            dl = np.flatnonzero(now | later)
            minute = r.when[dl] // MINUTE_MS
            self.add_messages(c.size[dl], minute, "out", receipt=not kind_is_msg)
            if kind_is_msg:
                self.latency(r.when[dl] - c.t[dl])
                self.msg_series += np.bincount(c.t[new] // MINUTE_MS, minlength=m)[:m]
                self.deliv_series += np.bincount(minute, minlength=m)[:m]

    def latency(self, delay_ms: np.ndarray) -> None:
        """Delivery-latency histogram of message copies (``latency_*`` counts; read with
        :func:`sim.world.mobile.messaging.latency_quantiles`)."""
        for key, k in zip(LATENCY_KEYS, latency_histogram(delay_ms), strict=True):
            self._count(key, int(k))
