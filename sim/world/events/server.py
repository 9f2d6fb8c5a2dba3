"""The messaging server of the events engine: routes every copy as it is sent, stores it, wakes, enforces.

A copy whose recipient is connected is delivered at once; otherwise it is dropped (store flag off) or
stored, and the recipient's phone is pushed (messages only, not receipts; not for muted groups or users
who turned notifications off). Stored copies are delivered when the recipient next connects, unless
their TTL ran out first (expired at ``t + ttl``). Delivery sends a delivery receipt back to the sender,
and the reader sends a read receipt when the app is on screen (:mod:`sim.world.events.mobile`).

A plan's runtime limits act here, one event at a time, through the world's
:class:`~sim.world.enforcer.Enforcer`: a per-second message cap (``message_cap``) counted as attempts
arrive, refused clients retrying with back-off (``retry_policy``), suspensions that close every
connection and refuse connects until they end, storage caps that discard new copies.

Outcomes are appended to the world's day logs as plain tuples; the world meters them at midnight
through :class:`~sim.world.message_meter.MessageMeter`, as the fast engine does.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from sim.world.copies import (
    DELIVERED_LATER,
    DELIVERED_NOW,
    DELIVERY_RECEIPT,
    DISCARDED,
    DROPPED,
    EXPIRED,
    MSG,
    READ_RECEIPT,
)
from sim.world.enforcer import REJECT_REASONS, Admission
from sim.world.events.client import later

if TYPE_CHECKING:
    from sim.world.events.world import EventsWorld

DAY_MS = 86_400_000


class Copy:
    """One recipient copy in flight or in the store."""

    __slots__ = ("recipient", "sender", "t", "size", "kind", "store", "new", "done", "loud")

    def __init__(self, recipient: int, sender: int, t: int, size: int, kind: int, store: bool,
                 loud: bool = False) -> None:
        self.recipient = recipient
        self.sender = sender
        self.t = t
        self.size = size
        self.kind = kind
        self.store = store
        self.new = True    # not yet counted as sent (a midnight may count it while it waits)
        self.done = False  # outcome final
        self.loud = loud   # a message the recipient's phone is notified of (not a muted group's, not a receipt)


class Server:
    def __init__(self, world: EventsWorld) -> None:
        self.w = world
        sc = world.sc
        self.store: dict[int, list[Copy]] = {}
        self.expiry: list[tuple[int, int, Copy]] = []   # (t + ttl, seq, copy) of stored copies
        self._seq = 0
        self.ttl = None if sc.messaging.ttl_s is None else int(sc.messaging.ttl_s * 1000)
        self.receipt_bytes = int(round(sc.messaging.receipt_bytes))
        self.delivery_receipts = sc.messaging.delivery_receipts
        self.read_receipts = sc.messaging.read_receipts
        self.push_on = sc.push.enabled
        self.suspended_until = -1
        self._seen_windows: set[tuple[int, int]] = set()
        self.rate = MessageRateLimit(self) if world.hooks else None
        self.clients = world.clients
        self._final = world.finals.append          # the day logs are cleared in place, never replaced
        self._receipt_up = world.receipt_uploads.append

    # -- admission ----------------------------------------------------------------------------------
    def refuse_connect(self, now: int) -> bool:
        if now < self.suspended_until:
            self.w.count("suspension_rejected_connects")
            return True
        return False

    def originate(self, client, t: int, size: int, store: bool, rcpts: list[int], quiet: list[bool] | None,
                  attempt: int = 0) -> None:
        """``client`` sends a message now to ``rcpts`` (one copy each; ``quiet``: muted, no push)."""
        w = self.w
        if w.hooks and t >= w.offset:
            if t < self.suspended_until and not client.connected:
                w.reject("suspended", len(rcpts))
                return
            if self.rate is not None and not self.rate.admit(client, t, size, store, rcpts, quiet, attempt):
                return
            if w.batch_admit and not self._admit_one(client, t, size, len(rcpts)):
                return
            if w.minute_counts is not None:
                w.minute_counts[0][(t // 60_000) % 1440] += 1
        w.uploads.append((t, size))
        u = client.user
        route = self.route
        if quiet is None:
            for r in rcpts:
                route(r, u, t, size, MSG, store, True)
        else:
            for r, q in zip(rcpts, quiet, strict=True):
                route(r, u, t, size, MSG, store, not q)

    def _admit_one(self, client, t: int, size: int, copies: int) -> bool:
        """An enforcer written for the fast engine's day batches (``admit_messages`` only) sees one message."""
        w = self.w
        res = w.enforcer.admit_messages(np.array([t]), np.array([client.user]), np.array([copies]),
                                        sizes=np.array([size]))
        if res is None:
            return True
        if isinstance(res, Admission):
            keep = bool(np.asarray(res.keep)[0])
            code = int(np.asarray(res.reason)[0])
            reason = REJECT_REASONS[code - 1] if code > 0 else "enforcer"
        else:
            keep, reason = bool(np.asarray(res)[0]), "enforcer"
        if keep:
            return True
        w.refused.append((t, size))
        w.reject(reason, copies, notify=False)
        return False

    def send_custom(self, client, size: int, to: int | None, store: bool) -> None:
        """A custom client's 1:1 message (to a contact of the conversation graph if ``to`` is None)."""
        if to is None:
            to = self.w.pick_contact(client)
        if to is None or to < 0:
            return
        self.originate(client, self.w.env.now, size, store, [int(to)], None)

    # -- routing ------------------------------------------------------------------------------------
    def route(self, r: int, frm: int, t: int, size: int, kind: int, store: bool, push_ok: bool = False) -> None:
        """Decide a copy from ``frm`` to ``r`` sent at ``t`` (the hot path: no object unless it is stored)."""
        w = self.w
        rc = self.clients[r]
        if rc is not None and rc.connected:
            self._final((r, frm, t, size, kind, store, True, DELIVERED_NOW, t, False))
            if kind == MSG:
                if self.delivery_receipts:
                    self._receipt_up((t, self.receipt_bytes))
                    self.route(frm, r, t, self.receipt_bytes, DELIVERY_RECEIPT, True)
                rc.on_delivered(frm, t, t, push_ok)
            return
        if not store:
            w.finals.append((r, frm, t, size, kind, store, True, DROPPED, t, True))
            return
        c = Copy(r, frm, t, size, kind, store, push_ok)
        if w.hooks and t >= w.offset and w.storage_refused(c):
            w.final(c, DISCARDED, t, True)
            w.count("discarded_storage")
            return
        lst = self.store.get(r)
        if lst is None:
            self.store[r] = [c]
        else:
            lst.append(c)
        w.fresh.append(c)
        if self.ttl is not None:
            self._seq += 1
            heapq.heappush(self.expiry, (t + self.ttl, self._seq, c))
        if push_ok and kind == MSG and self.push_on and rc is not None and not w.push_off[r]:
            w.count("push_notifications")
            rc.push(t)

    def on_connect(self, client, now: int) -> None:
        """A client connected: deliver what waits for it (expired copies go)."""
        waiting = self.store.pop(client.user, None)
        if not waiting:
            return
        ttl = self.ttl
        fin = self._final
        for c in waiting:
            if c.done:
                continue
            c.done = True
            if ttl is not None and c.t + ttl < now:
                fin((c.recipient, c.sender, c.t, c.size, c.kind, c.store, c.new, EXPIRED, c.t + ttl, True))
                continue
            fin((c.recipient, c.sender, c.t, c.size, c.kind, c.store, c.new, DELIVERED_LATER, now, True))
            if c.kind == MSG:
                self._delivered(c.recipient, c.sender, client, now, c.t, c.loud)

    def _delivered(self, r: int, frm: int, rc, t: int, sent: int, loud: bool) -> None:
        """A message copy from ``frm``, sent at ``sent``, reached ``r`` at ``t``: delivery receipt back, and
        the client reads it."""
        if self.delivery_receipts:
            self.receipt(r, frm, t, DELIVERY_RECEIPT)
        rc.on_delivered(frm, sent, t, loud)

    def receipt(self, frm: int, to: int, t: int, kind: int = READ_RECEIPT) -> None:
        """A receipt from ``frm`` to ``to``: uploaded, then routed like a copy (never pushed)."""
        self._receipt_up((t, self.receipt_bytes))
        self.route(to, frm, t, self.receipt_bytes, kind, True)

    def expire_until(self, t_end: int) -> None:
        """Copies whose TTL ran out before ``t_end`` and that are still waiting expire (at their TTL)."""
        heap = self.expiry
        w = self.w
        while heap and heap[0][0] < t_end:
            at, _, c = heapq.heappop(heap)
            if not c.done:
                w.final(c, EXPIRED, at, True)

    def waiting(self) -> list[Copy]:
        return [c for lst in self.store.values() for c in lst if not c.done]

    # -- suspensions ---------------------------------------------------------------------------------
    def suspend(self, a: int, b: int) -> None:
        """Close every connection now (``a``) and refuse connects until ``b``."""
        self.suspended_until = max(self.suspended_until, b)
        w = self.w
        closed = 0
        for c in w.clients:
            if c is not None and c.connected:
                c.cut()
                closed += 1
        w.count("suspensions")
        w.count("suspension_closed_connections", closed)

    def suspension_windows(self, windows: list[tuple[int, int]]) -> None:
        """Windows an enforcer asked for: each starts now (if it began already) or at its start."""
        env = self.w.env
        for a, b in windows:
            if (a, b) in self._seen_windows or b <= env.now:
                continue
            self._seen_windows.add((a, b))
            later(env, max(0, a - env.now), lambda a=a, b=b: self.suspend(a, b), 0)


class MessageRateLimit:
    """A plan's per-second message cap as the clients meet it on the SimPy clock.

    At most ``enforcer.message_cap(t)`` originated messages are accepted in each wall-clock second,
    first come, first served; a refused client waits ``backoff x 2^k`` (a SimPy timer) and tries
    again, ``retries`` times, unless that falls after midnight; then the message is rejected. Every
    refused attempt costs its upload and the platform's error reply. This is the rule
    :func:`sim.world.rate_limit.admit_per_second` decides for a whole day in bulk. An attempt the cap
    lets through then meets the plan's daily quota (``enforcer.quota_admit``: units per UTC day, the
    rule :class:`~sim.world.plan_enforcer.PlanEnforcer` applies to a day's accepted messages in time
    order): past it the message is refused once, charged as a refused attempt, and rejected without
    retry. In a dry run (``dry_run`` enforcers: the unrestricted probe of ``sim run``) everything is
    admitted and each message is reported to the enforcer (``observe_message``, ``quota_admit``).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.w = server.w
        self.enf = self.w.enforcer
        self.retries, self.backoff = self.enf.retry_policy()
        self.second = -1
        self.used = 0

    def admit(self, client, t: int, size: int, store: bool, rcpts: list[int], quiet, attempt: int) -> bool:
        w, enf = self.w, self.enf
        if w.dry_run:
            enf.observe_message(t, len(rcpts))
            enf.quota_admit(t, size, len(rcpts))
            return True
        cap = enf.message_cap(t)
        if cap is None:
            return self.quota(t, size, len(rcpts))
        sec = t // 1000
        if sec != self.second:
            self.second, self.used = sec, 0
        if self.used < cap:
            self.used += 1
            return self.quota(t, size, len(rcpts))
        nt = t + (self.backoff << attempt)
        final = not (attempt < self.retries and nt < (t // DAY_MS + 1) * DAY_MS)
        reason = enf.note_refusal(t, final, len(rcpts))
        w.refused.append((t, size))
        if final:
            w.reject(reason, len(rcpts), notify=False)
        else:
            w.count("message_retries")
            server = self.server
            later(w.env, nt - t, lambda: server.originate(client, w.env.now, size, store, rcpts, quiet, attempt + 1))
        return False

    def quota(self, t: int, size: int, copies: int) -> bool:
        """The daily quota, for an attempt the per-second cap let through: refused once and rejected (the enforcer
        has recorded it), or admitted."""
        reason = self.enf.quota_admit(t, size, copies)
        if reason is None:
            return True
        w = self.w
        w.refused.append((t, size))
        w.reject(reason, copies, notify=False)
        return False
