"""Who talks to whom: contacts and groups fixed for the run, and per-session conversation threads.

Why: drawing every recipient independently spread a user's incoming copies over the whole day, so
every copy needed its own push wake-up. Real chat comes in bursts between the same people: a session
is mostly one chat (a partner or a group), replies go back to whoever wrote last, and live
conversations happen between contacts who are both online. A push then wakes a recipient once per
burst (:mod:`push`).

The graph is drawn once per run from its own stream (``conversations``), so it neither changes nor
reshuffles any other per-user attribute:

* contacts: an undirected configuration-model graph among active users with log-normal degrees
  (mean ``contacts_mean``); each user's contact list has a fixed random order, and messages favour the
  first ones (Zipf, exponent ``partner_skew``: frequent partners);
* groups: every active user is in ``1 + Poisson(groups_per_user_mean - 1)`` groups of log-normal size
  (members dealt at random), scaled so that the size-biased mean (what a posting member sees) is
  ``group_recipients_mean + 1``; members post into their groups with weights ``size ** beta``, ``beta``
  solved on the drawn graph so that the mean fan-out over group messages is exactly
  ``group_recipients_mean`` in expectation (PF §6's 2.0 received/sent stays calibrated).

A member who muted a group gets its copies without a visible notification; FCM then deprioritises the
push to normal priority, deferred in Doze (PF §4.1), and iOS shows nothing: the copy waits for the
member's next connection instead of waking the phone.

Everything is numpy over messages or sessions: no Python loop per message, user or group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.world.distributions import lognormal_mean_one
from sim.world.timeline import KEY


@dataclass
class Csr:
    """Per-row lists in one array: row r holds ``items[off[r]:off[r + 1]]``."""

    off: np.ndarray  # int64, size rows + 1
    items: np.ndarray  # int64

    @classmethod
    def of(cls, row: np.ndarray, item: np.ndarray, rows: int) -> Csr:
        """From (row, item) pairs already sorted by row."""
        off = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=rows), out=off[1:])
        return cls(off, item.astype(np.int64))

    def size(self, r: np.ndarray) -> np.ndarray:
        return self.off[r + 1] - self.off[r]


@dataclass
class Social:
    contacts: Csr  # user -> contacts, favourites first
    groups: Csr  # group -> members (random order)
    member_of: Csr  # user -> groups
    member_cum: np.ndarray  # float64: running sum of posting weights over member_of.items
    muted: np.ndarray  # bool per groups.items row: this member muted this group (no push wake)
    beta: float  # posting weight exponent solved for the group fan-out
    skew: float
    cap: int  # group_recipients_max

    @property
    def group_size(self) -> np.ndarray:
        return np.diff(self.groups.off)

    # -- draws -----------------------------------------------------------------------------------------
    def partner(self, rng: np.random.Generator, user: np.ndarray) -> np.ndarray:
        """A contact of each ``user`` (-1 if none), favourites first (Zipf over the contact list)."""
        k = self.contacts.size(user)
        pos = zipf_position(rng, k, self.skew)
        ok = k > 0
        out = np.full(user.size, -1, dtype=np.int64)
        out[ok] = self.contacts.items[self.contacts.off[user[ok]] + pos[ok]]
        return out

    def group(self, rng: np.random.Generator, user: np.ndarray) -> np.ndarray:
        """A group of each ``user`` (-1 if none), picked with the posting weights."""
        mo = self.member_of
        lo_i, hi_i = mo.off[user], mo.off[user + 1]
        has = hi_i > lo_i
        cum = self.member_cum
        lo = np.where(lo_i > 0, cum[np.maximum(lo_i - 1, 0)], 0.0)
        hi = cum[np.maximum(hi_i - 1, 0)]
        target = lo + rng.random(user.size) * (hi - lo)
        j = np.searchsorted(cum, target, side="right")
        j = np.clip(j, lo_i, np.maximum(hi_i - 1, lo_i))
        out = np.full(user.size, -1, dtype=np.int64)
        out[has] = mo.items[j[has]]
        return out

    def fanout(self, group: np.ndarray) -> np.ndarray:
        """Copies of a message to ``group``: its other members, capped."""
        return np.minimum(self.group_size[group] - 1, self.cap)

    def group_recipients(self, sender: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(message index, recipient, muted) rows: the first ``fanout`` other members of each message's group."""
        size = self.group_size[group]
        take = np.minimum(size, self.cap + 1)
        rep = np.repeat(np.arange(group.size), take)
        j = np.arange(rep.size) - np.repeat(np.cumsum(take) - take, take)
        row = self.groups.off[group[rep]] + j
        member = self.groups.items[row]
        is_sender = member == sender[rep]
        # messages whose sender is not among the members taken (capped groups) drop their last row
        has_sender = np.bincount(rep[is_sender], minlength=group.size) > 0
        last = np.zeros(rep.size, dtype=bool)
        ends = np.cumsum(take) - 1
        last[ends[~has_sender & (take > 0)]] = True
        keep = ~is_sender & ~last
        return rep[keep], member[keep], self.muted[row[keep]]


def zipf_position(rng: np.random.Generator, k: np.ndarray, a: float) -> np.ndarray:
    """Index in ``[0, k)`` with weight ~ ``(i + 1) ** -a`` (continuous inverse CDF, one draw each)."""
    u = rng.random(k.size)
    kk = k.astype(np.float64) + 1.0
    if a == 0:
        x = 1.0 + u * (kk - 1.0)
    elif abs(a - 1.0) < 1e-12:
        x = kk ** u
    else:
        e = 1.0 - a
        x = (1.0 + u * (kk ** e - 1.0)) ** (1.0 / e)
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, np.maximum(k - 1, 0))


def build(cfg, group_mean: float, cap: int, active_ids: np.ndarray, n: int, weight: np.ndarray,
          rng: np.random.Generator) -> Social:
    """Draw the run's contacts and groups. ``weight``: each user's expected message rate (mean ~1)."""
    contacts = _contacts(rng, active_ids, n, cfg.contacts_mean, cfg.contacts_sigma)
    # members see groups size-biased (a bigger group has more members posting): a log-normal of mean
    # m has size-biased mean m exp(sigma^2), so m = (fan-out + 1) exp(-sigma^2) leaves beta near 0
    mean_size = (group_mean + 1.0) * np.exp(-cfg.group_size_sigma ** 2)
    groups, member_of = _groups(rng, active_ids, n, cfg.groups_per_user_mean, mean_size, cfg.group_size_sigma)
    size = np.diff(groups.off)
    user_of_row = np.repeat(np.arange(n), np.diff(member_of.off))
    g = member_of.items
    beta = _solve_beta(size[g], user_of_row, weight[user_of_row], n, np.minimum(size[g] - 1, cap), group_mean)
    w = size[g].astype(np.float64) ** beta
    muted = rng.random(groups.items.size) < cfg.muted_group_fraction
    return Social(contacts, groups, member_of, np.cumsum(w), muted, beta, cfg.partner_skew, cap)


def _contacts(rng, ids: np.ndarray, n: int, mean: float, sigma: float) -> Csr:
    """Configuration model: log-normal degrees, stubs paired at random; self-loops and repeats dropped."""
    if ids.size < 2:
        return Csr(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    k = np.maximum(1, np.round(mean * lognormal_mean_one(rng, sigma, ids.size))).astype(np.int64)
    k = np.minimum(k, ids.size - 1)
    stubs = rng.permutation(np.repeat(ids, k))
    stubs = stubs[: stubs.size - stubs.size % 2]
    a, b = stubs[0::2], stubs[1::2]
    # nobody is left without a contact: the isolated get one random other active user
    deg = np.bincount(np.concatenate([a[a != b], b[a != b]]), minlength=n)
    lone = ids[deg[ids] == 0]
    other = ids[(np.searchsorted(ids, lone) + rng.integers(1, ids.size, lone.size)) % ids.size]
    a, b = np.concatenate([a, lone]), np.concatenate([b, other])
    ok = a != b
    u, v = np.concatenate([a[ok], b[ok]]), np.concatenate([b[ok], a[ok]])
    key = _unique(u * KEY + v)
    u = key // KEY
    v = key - u * KEY
    order = _shuffle_within(rng, u)  # a fixed random favourites order per user
    return Csr.of(u[order], v[order], n)


def _groups(rng, ids: np.ndarray, n: int, per_user: float, mean_size: float, sigma: float) -> tuple[Csr, Csr]:
    """Groups of log-normal size (>= 2) filled with membership slots dealt at random."""
    z = np.zeros(0, dtype=np.int64)
    if ids.size < 2:
        return Csr(np.zeros(1, dtype=np.int64), z), Csr(np.zeros(n + 1, dtype=np.int64), z)
    m = 1 + rng.poisson(per_user - 1.0, ids.size)
    slots = rng.permutation(np.repeat(ids, m))
    est = int(slots.size / max(mean_size, 2.0) * 1.5) + 16
    size = np.maximum(2, np.round(mean_size * lognormal_mean_one(rng, sigma, est))).astype(np.int64)
    size = np.minimum(size, ids.size)
    while size.sum() < slots.size:  # rarely: draw more groups
        more = np.maximum(2, np.round(mean_size * lognormal_mean_one(rng, sigma, est))).astype(np.int64)
        size = np.concatenate([size, np.minimum(more, ids.size)])
    cum = np.cumsum(size)
    ng = int(np.searchsorted(cum, slots.size)) + 1
    size = size[:ng].copy()
    size[-1] -= cum[ng - 1] - slots.size
    gid = np.repeat(np.arange(ng), size)
    key = _unique(gid * KEY + slots)  # a user dealt twice into one group is in it once
    gid = key // KEY
    member = key - gid * KEY
    real = np.bincount(gid, minlength=ng) >= 2  # groups of one are dropped
    keep = real[gid]
    gid, member = gid[keep], member[keep]
    renum = np.cumsum(real) - 1
    gid = renum[gid]
    ng = int(real.sum())
    order = _shuffle_within(rng, gid)  # random member order (who is cut by the cap)
    groups = Csr.of(gid[order], member[order], ng)
    by_user = np.argsort(member * KEY + gid)
    member_of = Csr.of(member[by_user], gid[by_user], n)
    return groups, member_of


def _unique(key: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique hashes int64 keys, several times slower than a sort)."""
    key = np.sort(key)
    keep = np.ones(key.size, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=keep[1:])
    return key[keep]


def _shuffle_within(rng: np.random.Generator, row: np.ndarray) -> np.ndarray:
    """Order that keeps ``row`` (sorted) grouped but shuffles the items inside each row."""
    return np.argsort(row * KEY + rng.integers(0, KEY, row.size))


def _solve_beta(size: np.ndarray, user: np.ndarray, w_user: np.ndarray, n: int, fan: np.ndarray,
                target: float) -> float:
    """Exponent beta of posting weights ``size ** beta`` giving mean fan-out ``target`` (bisection).

    A member splits their group messages over their groups in proportion to the weights; the mean is
    weighted by the members' expected message rates.
    """
    if size.size == 0:
        return 0.0
    ls = np.log(size.astype(np.float64))

    def mean_fan(beta: float) -> float:
        w = np.exp(beta * (ls - ls.max()))
        tot = np.bincount(user, weights=w, minlength=n)[user]
        p = w_user * w / tot
        return float((p * fan).sum() / p.sum())

    lo, hi = -6.0, 3.0
    if mean_fan(lo) >= target:
        return lo
    if mean_fan(hi) <= target:
        return hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if mean_fan(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# -- per-day routing of messages to people ---------------------------------------------------------------
def threads(rng: np.random.Generator, session: np.ndarray, user: np.ndarray, draw, focus: float) -> np.ndarray:
    """Per message: its session's thread (one ``draw(rng, users)`` per session) with probability
    ``focus``, else a fresh ``draw`` (another chat in the same session)."""
    if session.size == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inv = _first_per(session)
    primary = draw(rng, user[uniq])[inv]
    other = draw(rng, user)
    return np.where(rng.random(session.size) < focus, primary, other)


def _first_per(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct value of ``key``: the index of its first occurrence in sort order; and per
    element the number of its value (0, 1, ...)."""
    order = np.argsort(key, kind="stable")
    ks = key[order]
    head = np.ones(ks.size, dtype=bool)
    np.not_equal(ks[1:], ks[:-1], out=head[1:])
    inv = np.empty(ks.size, dtype=np.int64)
    inv[order] = np.cumsum(head) - 1
    return order[head], inv


def one_to_one(rng: np.random.Generator, social: Social, sender: np.ndarray, t: np.ndarray, sessions,
               cv, live_fraction: float, timeline, session: np.ndarray | None = None) -> np.ndarray:
    """Recipients of 1:1 messages: each sender session has a thread partner, chosen as

    1. with ``reply_probability``, the last contact who wrote to the user within ``reply_window_s``
       before the session's first message (an answer);
    2. else, with ``live_fraction``, the first of the user's ``live_contacts`` favourites who is online
       (``timeline``) at that first message (a live conversation);
    3. else a contact drawn with the favourites' Zipf weights.

    A message goes to its session's partner with ``session_focus``, else to another drawn contact.
    Replies are found among today's threads as first drawn (one round: answers to answers, and answers to
    live threads, whose partner is online anyway, are not chased): one sort of the day's threads.
    """
    from sim.world.timeline import connected_at  # here: timeline imports nothing of ours, but keep it local

    m = sender.size
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    if session is None:  # find each message's session
        skey = sessions.user * KEY + sessions.start
        si = np.searchsorted(skey, sender * KEY + t, side="right") - 1
        stray = (si < 0) | (sessions.user[np.maximum(si, 0)] != sender)
        si = np.where(stray, sessions.user.size + np.arange(m), si)  # a message outside any session: its own thread
    else:
        si = session
    # threads in (session, time) order: the first message of each gives the thread's time (messages come so
    # ordered from draw_messages; a retry an enforcer granted may move one later)
    key = si * KEY + t
    ordered = bool(np.all(key[1:] >= key[:-1]))
    order = None if ordered else np.argsort(key)
    s_sorted = si if ordered else si[order]
    head = np.ones(m, dtype=bool)
    np.not_equal(s_sorted[1:], s_sorted[:-1], out=head[1:])
    if ordered:
        inv = np.cumsum(head) - 1
        first = np.flatnonzero(head)
    else:
        inv = np.empty(m, dtype=np.int64)
        inv[order] = np.cumsum(head) - 1
        first = order[head]
    tu, tf = sender[first], t[first]
    partner = social.partner(rng, tu)
    replied = _replies(rng, tu, tf, partner, cv)
    L = cv.live_contacts
    if live_fraction > 0 and timeline is not None and L > 0:
        look = np.flatnonzero((rng.random(tu.size) < live_fraction) & ~replied)
        k = np.minimum(social.contacts.size(tu[look]), L)
        rows = np.repeat(look, k)
        j = np.arange(rows.size) - np.repeat(np.cumsum(k) - k, k)
        cand = social.contacts.items[social.contacts.off[tu[rows]] + j]
        hit = np.flatnonzero(connected_at(timeline, cand, tf[rows], social.contacts.off.size - 1))
        if hit.size:
            th = rows[hit]  # non-decreasing: the first hit of a thread is its first online favourite
            firsts = hit[np.concatenate([[True], th[1:] != th[:-1]])]
            partner[rows[firsts]] = cand[firsts]
    focus = rng.random(m) < cv.session_focus
    rcpt = partner[inv]
    stray_msgs = np.flatnonzero(~focus)
    rcpt[stray_msgs] = social.partner(rng, sender[stray_msgs])
    return rcpt


def _replies(rng: np.random.Generator, tu: np.ndarray, tf: np.ndarray, partner: np.ndarray, cv) -> np.ndarray:
    """Threads that answer: with ``reply_probability``, a thread whose user was written to by another thread
    within ``reply_window_s`` before it starts takes that thread's user as its partner (``partner`` is changed
    in place); returns which threads answer. Found on threads (a thread's time is its first message), which
    is within a session's length of the messages themselves and far below the window."""
    replied = np.zeros(tu.size, dtype=bool)
    if cv.reply_probability <= 0 or tu.size == 0:
        return replied
    ok_p = np.flatnonzero(partner >= 0)
    ck = partner[ok_p] * KEY + tf[ok_p]
    by = np.argsort(ck)
    ks = ck[by]
    i = np.searchsorted(ks, tu * KEY + tf, side="left") - 1  # the last thread towards tu that began before tf
    ic = np.maximum(i, 0)
    prev_r = ks[ic] // KEY
    prev_t = ks[ic] - prev_r * KEY
    window = int(cv.reply_window_s * 1000)
    replied = (i >= 0) & (prev_r == tu) & (prev_t >= tf - window) & (rng.random(tu.size) < cv.reply_probability)
    partner[replied] = tu[ok_p[by[ic[replied]]]]
    return replied


def recipients(rng: np.random.Generator, social: Social, msgs, sessions, cfg, live_fraction: float,
               timeline) -> tuple[np.ndarray, np.ndarray]:
    """(message index, recipient) per copy: 1:1 messages to contacts, group messages to their group."""
    cv = cfg.conversations
    n = len(msgs)
    group = msgs.group if msgs.group is not None else np.full(n, -1, dtype=np.int64)
    # a group message whose group was lost on the way (an enforcer rebuilt the batch) goes to contacts
    lost = (group < 0) & (msgs.fanout > 1)
    single = np.flatnonzero((group < 0) & ~lost)
    si = None if msgs.session is None else msgs.session[single]
    r1 = one_to_one(rng, social, msgs.sender[single], msgs.t[single], sessions, cv, live_fraction, timeline, si)
    gi = np.flatnonzero(group >= 0)
    gr, rg, mg = social.group_recipients(msgs.sender[gi], group[gi])
    li = np.flatnonzero(lost)
    rep_l = np.repeat(li, msgs.fanout[li])
    rl = social.partner(rng, msgs.sender[rep_l])
    quiet = np.concatenate([np.zeros(single.size, bool), mg, np.zeros(rep_l.size, bool)])
    return np.concatenate([single, gi[gr], rep_l]), np.concatenate([r1, rg, rl]), quiet
