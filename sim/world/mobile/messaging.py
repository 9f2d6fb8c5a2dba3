"""Messages: generation in numpy batches, and routing of every recipient copy against timelines.

Generation: a day-active user originates ``Poisson(rate x multiplier)`` messages (log-normal
multiplier with mean 1: a heavy tail of chatty users), each inside one of that user's foreground
sessions. A message goes to one recipient or, with ``group_fraction``, to a group; each recipient gets
a *copy* (the unit of delivery, storage and conservation). Who the recipients are (contacts, groups,
per-session threads) is :mod:`sim.world.conversations`; with conversations off, a group message goes to
``1 + Poisson(mean - 1)`` users and every recipient is drawn independently.

Routing decides each copy against the recipient's connection timeline (:func:`route`): delivered at
once if connected at the send time; otherwise dropped (store flag off) or stored and delivered at the
start of the recipient's next connection, expired at its TTL, or still pending when the day ends. The
pending pool is re-routed on later days, so outcomes only become final when their time has been
simulated; conservation ``sent = delivered + pending + expired + dropped`` holds exactly (with a plan's
limits acting, ``+ rejected + discarded``: see :mod:`sim.world.mobile.world`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sim.scenario import Messaging
from sim.world import conversations
from sim.world.copies import (  # noqa: F401 - re-exported: the fast engine's modules import them from here
    DELIVERED_LATER,
    DELIVERED_NOW,
    DELIVERY_RECEIPT,
    DISCARDED,
    DROPPED,
    EXPIRED,
    LATENCY_EDGES_S,
    LATENCY_KEYS,
    LATENCY_NAMES,
    MSG,
    PENDING,
    READ_RECEIPT,
    Copies,
    Routed,
    latency_histogram,
    latency_quantiles,
)
from sim.world.distributions import message_sizes
from sim.world.mobile.sessions import Sessions
from sim.world.population import Population
from sim.world.timeline import KEY, NEVER, Intervals, locate


@dataclass
class Originated:
    sender: np.ndarray
    t: np.ndarray
    size: np.ndarray
    fanout: np.ndarray  # copies per message
    store: np.ndarray
    group: np.ndarray | None = None  # int64 group of a group message, -1 for 1:1 (None: not drawn)
    session: np.ndarray | None = None  # int64 index of the sender's session in the day's Sessions (None: unknown)

    def __len__(self) -> int:
        return int(self.t.size)

    def take(self, idx) -> Originated:
        return Originated(*(None if v is None else v[idx] for v in (getattr(self, f.name) for f in fields(self))))


def draw_messages(rng: np.random.Generator, pop: Population, sessions: Sessions, users: np.ndarray,
                  cfg: Messaging, day_end: int) -> Originated:
    """Messages originated by the day-active ``users`` inside their foreground sessions, sorted by
    (session, time), each with its session's index.

    A user's messages are proportional to the time they spend in the app: the day's
    ``messages_per_dau_per_day x len(users)`` messages (in expectation) are shared out by foreground time,
    weighted by the user's heavy-tailed rate multiplier. Drawing counts independently of screen time put a
    chatty user's hundreds of messages into a few seconds of foreground: bursts of 10x the mean message rate
    in a minute, which made any per-second rate limit bind on an ordinary app.
    """
    first, nsess = sessions.first_index(pop.n)
    # Only the part of a session before midnight belongs to this day (sessions start inside the day).
    dur = np.clip(day_end - sessions.start, 1, sessions.dur)
    fg = np.bincount(sessions.user, weights=dur, minlength=pop.n)[users]
    mean_fg = fg.mean() if users.size else 0.0
    share = fg / mean_fg if mean_fg > 0 else np.zeros(users.size)
    lam = cfg.messages_per_dau_per_day * pop.msg_mult[users] * share
    counts = rng.poisson(lam)
    sender = np.repeat(users, counts)
    m = sender.size
    has = nsess[sender] > 0  # without min_one_session a day-active user may open no session: no messages
    sender = sender[has]
    m = sender.size
    # Each message falls uniformly in its sender's foreground *time*: a session is picked with probability
    # proportional to its length. (Picking sessions uniformly put a heavy sender's dozens of messages into a
    # 5-second session: bursts of hundreds of messages a minute that no typist produces.)
    cum = np.cumsum(dur)
    before = cum - dur                                # foreground ms of the user's earlier sessions, globally
    lo = before[first[sender]]
    span = cum[first[sender] + nsess[sender] - 1] - lo  # the sender's foreground ms today
    target = lo + (rng.random(m) * span).astype(np.int64)
    # each user's targets lie in the user's own block of foreground time, and the blocks are in user order like
    # ``sender``: sorting them keeps every target with its sender and orders messages by (session, time)
    target.sort()
    pick = np.searchsorted(cum, target, side="right")
    t = sessions.start[pick] + (target - before[pick])
    size = message_sizes(rng, cfg, m)
    fanout = np.ones(m, dtype=np.int64)
    group = None if pop.social is None else np.full(m, -1, dtype=np.int64)
    if cfg.group_fraction > 0:
        grp = np.flatnonzero(rng.random(m) < cfg.group_fraction)
        if pop.social is None:
            k = 1 + rng.poisson(cfg.group_recipients_mean - 1.0, grp.size)
            fanout[grp] = np.minimum(k, cfg.group_recipients_max)
        else:
            g = conversations.threads(rng, pick[grp], sender[grp], pop.social.group, cfg.conversations.session_focus)
            ok = g >= 0  # a user in no group (none left by the graph) writes 1:1 instead
            group[grp[ok]] = g[ok]
            fanout[grp[ok]] = pop.social.fanout(g[ok])
    store = np.ones(m, dtype=bool)
    if cfg.no_store_fraction > 0:
        store = rng.random(m) >= cfg.no_store_fraction
    return Originated(sender, t, size, fanout, store, group, pick)


LIVE_POOL = 8  # a live partner is one of the users whose sessions started most recently
LIVE_BUCKET_MS = 10_000


def fan_out(rng: np.random.Generator, pop: Population, msgs: Originated, sessions: Sessions | None = None,
            live_fraction: float = 0.0, need_sender: bool = True, timeline=None, cfg: Messaging | None = None,
            quiet_out: list | None = None) -> Copies:
    """One copy per recipient, sorted by (recipient, time); never to the sender.

    With a social graph (``pop.social``) recipients come from the sender's contacts and groups in
    per-session threads (:func:`sim.world.conversations.one_to_one`; ``timeline`` answers who is
    online), and ``quiet_out`` receives, per copy, whether it is for a muted group (no push wake).
    Without one, recipients are uniform among active users; with ``live_fraction`` a 1:1 message goes to a *live* partner instead: the user of one of the
    ``LIVE_POOL`` sessions that started last before the send time (most likely still on screen), which
    models replies inside live conversations without tracking conversations.
    """
    if pop.social is not None and cfg is not None:
        rep, rcpt, quiet = conversations.recipients(rng, pop.social, msgs, sessions, cfg, live_fraction, timeline)
        return _copies(msgs, rep, rcpt, need_sender, quiet if quiet.any() else None, quiet_out)
    one_each = bool(np.all(msgs.fanout == 1))
    rep = None if one_each else np.repeat(np.arange(len(msgs)), msgs.fanout)
    sender = msgs.sender if one_each else msgs.sender[rep]
    m = sender.size
    ids = pop.active_ids
    pos = rng.integers(0, ids.size, m)
    rcpt = ids[pos]
    if live_fraction > 0 and sessions is not None and len(sessions.start):
        single = np.ones(m, dtype=bool) if one_each else msgs.fanout[rep] == 1
        live = np.flatnonzero(single & (rng.random(m) < live_fraction))
        t_live = msgs.t[live] if one_each else msgs.t[rep[live]]
        # sessions by start time, and per 10-s bucket how many started before it: a table lookup
        # instead of a binary search per message
        order = np.argsort(sessions.start)
        t0 = int(sessions.start.min())
        bucket = (sessions.start - t0) // LIVE_BUCKET_MS
        before = np.concatenate([[0], np.cumsum(np.bincount(bucket))])
        qb = np.clip((t_live - t0) // LIVE_BUCKET_MS, 0, before.size - 1)
        i = before[qb] - 1 - rng.integers(0, LIVE_POOL, live.size)
        ok = i >= 0
        partner = sessions.user[order[np.maximum(i, 0)]]
        ok &= partner != sender[live]
        rcpt[live[ok]] = partner[ok]
    self_ = rcpt == sender
    if ids.size > 1:
        rcpt[self_] = ids[(pos[self_] + 1) % ids.size]
    del sender, pos, self_
    return _copies(msgs, rep, rcpt, need_sender)


def _copies(msgs: Originated, rep: np.ndarray | None, rcpt: np.ndarray, need_sender: bool,
            quiet: np.ndarray | None = None, quiet_out: list | None = None) -> Copies:
    """Copies of ``msgs`` (row i: message ``rep[i]``, or i if ``rep`` is None) to ``rcpt``, sorted.

    ``quiet`` (per row: no push for this copy) is appended to ``quiet_out`` in the copies' order.
    """
    # sort copies by (recipient, time): one argsort; recipient and time come back out of the key
    key = rcpt * KEY + (msgs.t[rep] if rep is not None else msgs.t)
    n = key.size
    same_size = n == 0 or msgs.size.min() == msgs.size.max()
    all_store = bool(msgs.store.all())
    if need_sender or not same_size or not all_store or quiet is not None:
        order = np.argsort(key)
        key = key[order]
        src = rep[order] if rep is not None else order
        if quiet is not None and quiet_out is not None:
            quiet_out.append(quiet[order])
    else:  # nothing to carry along: sorting the packed keys is enough (and twice as fast)
        key = np.sort(key)
        src = None
    recipient = key // KEY
    return Copies(
        recipient=recipient,
        sender=msgs.sender[src] if need_sender else np.full(n, -1, dtype=np.int64),
        t=key - recipient * KEY,
        size=np.full(n, msgs.size[0] if n else 0, dtype=np.int64) if same_size else msgs.size[src],
        kind=np.zeros(n, dtype=np.int8),
        store=np.ones(n, dtype=bool) if all_store else msgs.store[src],
        new=np.ones(n, dtype=bool),
    )


def route(tl: Intervals, c: Copies, day_end: int, ttl_ms: int | None, connected: np.ndarray | None = None) -> Routed:
    """Decide each copy against the recipient's timeline; only outcomes before ``day_end`` are final.

    ``connected``: copies already known to find their recipient connected (on a sub-timeline of
    ``tl``; adding intervals never disconnects anyone), so only the others are looked up.
    """
    n = len(c)
    outcome = np.full(n, PENDING, dtype=np.int8)
    when = np.full(n, NEVER, dtype=np.int64)
    nxt = np.full(n, NEVER, dtype=np.int64)
    if connected is None:
        lk = locate(tl, c.recipient, c.t)
        now = lk.connected
        nxt = lk.next_start
    else:
        rest = np.flatnonzero(~connected)
        lk = locate(tl, c.recipient[rest], c.t[rest])
        now = connected.copy()
        now[rest] = lk.connected
        nxt[rest] = lk.next_start
    del lk
    outcome[now] = DELIVERED_NOW
    when[now] = c.t[now]
    off = ~now
    drop = off & ~c.store
    outcome[drop] = DROPPED
    when[drop] = c.t[drop]
    st = off & c.store
    expiry = c.t + ttl_ms if ttl_ms is not None else np.full(len(c), NEVER, dtype=np.int64)
    expires = st & (expiry < nxt) & (expiry < day_end)
    outcome[expires] = EXPIRED
    when[expires] = expiry[expires]
    later = st & ~expires & (nxt < day_end) & (nxt <= expiry)
    outcome[later] = DELIVERED_LATER
    when[later] = nxt[later]
    return Routed(outcome, when, off)


