"""Connection metering: what opening, holding and closing connections costs, and who was online.

A connection is *opened* (counted, handshake bytes, MAU/DAU) when it first appears in a processed
day and *closed* (heartbeats over its life, teardown bytes, concurrency) once its end is final. The
per-connection byte figures come from the protocol model once; the world only counts events per
minute and multiplies at the end, so 10^7 connections cost a few ``bincount`` calls.

TLS resumption (PF §6): a reconnect within ``ticket_lifetime_s`` of the user's previous connection
resumes with probability ``tls_resumption_probability``; otherwise (or with session tickets off) the
handshake is full.

Meters for platforms that bill connection time and channels (both engines come through
:meth:`ConnectionMeter.record_open` / :meth:`~ConnectionMeter.record_close` / :meth:`~ConnectionMeter.day_end`):

* ``connection_seconds`` (1d distribution): each connection's part inside the period, in whole seconds
  rounded up (ceil of ms / 1000), attributed to the calendar day on which it ends (closes, or the period
  ends while it is open); a connection crossing a billing month's start is split there, each month's part
  an item of its own. A connection of 0 ms in the period is an item (of 0 s) only if it opened inside the
  period (one carried from the warm-up and closed at the period's first instant is none).
* ``connection_minutes`` (1d series): the sum over the same items of ceil(seconds / 60), each rounded up
  on its own (AWS IoT Core, Ably, EMQX); what a plan with ``each: {step: 1, step_unit: minutes}`` bills from
  ``connection_seconds``. ``connection_hours`` (1d series): the exact in-period time of the same items
  (ms precision) / 3,600,000, so at most one second per item below ``connection_seconds`` / 3600.
* ``peak_channels`` (1min series): pub/sub channels with at least one attached client. A connected client
  attaches its own channel (1:1 messages, receipts) and the channel of every group it is a member of
  (:class:`~sim.world.conversations.Social`; none without conversations). Per minute: the larger of the
  channels attached at the minute's start and the minute's ``peak_ccu`` (the personal channels at their
  peak), a lower bound of the minute's true maximum that is exact at minute starts; so
  ``peak_channels >= peak_ccu``, equal without groups. Group channels are found a day at a time: the
  connected minutes of each user as a bitmap, OR-ed over each group's members, counted per minute.
* ``channel_minutes`` (1min series): the channels attached at each minute's start, so each channel counts
  one minute for every minute start it is attached at (Ably's "channel minutes": time a channel is active,
  whatever the number of clients on it). A Riemann sum of channel time on the minute grid: a channel
  attached for 2 h counts 120 min, one attached for 20 s between two minute starts counts none.
"""

from __future__ import annotations

import numpy as np

from sim.meters import ItemCounter, MeterBook, bincount_into, distribution, numbers, split_at
from sim.scenario import Network
from sim.world.timeline import CAUSES, KEY, NEVER, Intervals

MINUTE_MS = 60_000
DAY_MS = 86_400_000
#: Resolution of a sampled run's fine concurrency level (:meth:`ConnectionMeter.fine_level`).
FINE_MS = 5_000
FINE_PER_MINUTE = MINUTE_MS // FINE_MS


def settle(x: np.ndarray) -> np.ndarray:
    """A cumulated difference array without float dust: tiny negatives/positives become 0."""
    return np.where(np.abs(x) < 1e-6, 0.0, np.maximum(x, 0.0))


def spread(acc: np.ndarray, start_ms: np.ndarray, end_ms: np.ndarray, amount: np.ndarray) -> None:
    """Add ``amount`` spread evenly over the minutes from ``start_ms`` to ``end_ms`` into a diff array.

    ``acc`` has one more slot than there are minutes; ``np.cumsum(acc)[:-1]`` is the per-minute series.
    """
    m = acc.size - 1
    a, b, rate = _spread_rates(start_ms, end_ms, amount, m)
    bincount_into(acc, a, rate)
    bincount_into(acc, b + 1, rate, sign=-1)


def _spread_rates(start_ms: np.ndarray, end_ms: np.ndarray, amount: np.ndarray, m: int):
    a = np.clip(start_ms // MINUTE_MS, 0, m - 1)
    b = np.clip((np.maximum(end_ms, start_ms + 1) - 1) // MINUTE_MS, 0, m - 1)
    return a, b, amount / (b - a + 1)


def spread_span(start_ms: np.ndarray, end_ms: np.ndarray, amount: np.ndarray, m: int) -> tuple[int, np.ndarray, float]:
    """``settle(np.cumsum(acc)[:-1])`` for a fresh diff array ``acc`` (``m + 1`` slots) after
    ``spread(acc, start_ms, end_ms, amount)``, computed over the touched minutes only.

    Returns ``(lo, values, tail)``: the series is 0.0 before minute ``lo``, ``values`` from ``lo`` on,
    and ``tail`` (the settled running sum after the last change, float dust cleared) for the minutes after
    those. Bit for bit the whole-clock result: the running sum is 0.0 up to ``lo`` and adds only zeros
    after the last slot touched.
    """
    if start_ms.size == 0:
        return 0, np.zeros(0), 0.0
    a, b, rate = _spread_rates(start_ms, end_ms, amount, m)
    lo, hi = int(a.min()), int(b.max()) + 1  # slots touched: [lo, hi], hi <= m
    size = hi - lo + 1
    acc = np.zeros(size)
    acc += np.bincount(a - lo, weights=rate, minlength=size)[:size]
    acc -= np.bincount(b + 1 - lo, weights=rate, minlength=size)[:size]
    run = settle(np.cumsum(acc))
    if hi >= m:  # the last slot is past the clock (dropped, as ``[:-1]`` drops it)
        return lo, run[: m - lo], 0.0
    return lo, run, float(run[-1])


def spread_span_many(start_ms: np.ndarray, end_ms: np.ndarray, amounts: list[np.ndarray],
                     m: int) -> tuple[int, np.ndarray, np.ndarray]:
    """:func:`spread_span` of several ``amounts`` over the same intervals at once.

    Returns ``(lo, values, tails)`` with one row of ``values`` (and one tail) per amount; each row is bit
    for bit what :func:`spread_span` gives for its amount (its bins are summed in the same order, and
    the running sum runs along the row).
    """
    k = len(amounts)
    if start_ms.size == 0 or k == 0:
        return 0, np.zeros((k, 0)), np.zeros(k)
    a = np.clip(start_ms // MINUTE_MS, 0, m - 1)
    b = np.clip((np.maximum(end_ms, start_ms + 1) - 1) // MINUTE_MS, 0, m - 1)
    n = b - a + 1
    rates = np.concatenate([amount / n for amount in amounts])
    lo, hi = int(a.min()), int(b.max()) + 1
    size = hi - lo + 1
    off = (np.arange(k, dtype=np.int64) * size)[:, None]
    acc = np.zeros((k, size))
    acc += np.bincount(((a - lo)[None, :] + off).ravel(), weights=rates, minlength=k * size).reshape(k, size)
    acc -= np.bincount(((b + 1 - lo)[None, :] + off).ravel(), weights=rates, minlength=k * size).reshape(k, size)
    run = settle(np.cumsum(acc, axis=1))
    if hi >= m:
        return lo, run[:, : m - lo], np.zeros(k)
    return lo, run, run[:, -1].copy()


class ConnectionMeter:
    """Per-minute connection events and per-user online state for one run."""

    def __init__(self, book: MeterBook, protocol, net: Network, n_users: int, day_starts_ms: np.ndarray,
                 tls_on: bool, tickets_on: bool, month_starts_ms: np.ndarray | None = None, social=None) -> None:
        """``day_starts_ms``: world time of each calendar day's start in the billing period (its first
        value is the period start; times before it belong to the warm-up and count in no day).
        ``month_starts_ms``: each billing month's start (a run of ``simulation.months``; default one month,
        the period): MAU counts each user once per billing month. ``social``: the run's
        :class:`~sim.world.conversations.Social` graph (its groups are channels, ``peak_channels``), or None."""
        self.book = book
        self.protocol = protocol
        self.net = net
        self.minutes = book.minutes
        self.end_ms = self.minutes * MINUTE_MS
        m = self.minutes
        self.full = np.zeros(m)
        self.resumed = np.zeros(m)
        self.graceful = np.zeros(m)
        self.keepalive_diff = np.zeros(m + 1)
        self.ccu_diff = np.zeros(m + 1)
        self.ccu_max = np.zeros(m)
        self.connects = np.zeros(m)
        self.mau_first = np.zeros(m)
        # the last billing month in which each user was counted in MAU (-1: the warm-up, -2: never)
        self.seen_month = np.full(n_users, -2, dtype=np.int64)
        self.month_starts = (np.asarray(day_starts_ms[:1], dtype=np.int64) if month_starts_ms is None
                             else np.asarray(month_starts_ms, dtype=np.int64))
        self.day_starts = np.asarray(day_starts_ms, dtype=np.int64)
        self.active_day = np.zeros((self.day_starts.size, n_users), dtype=bool)
        self.last_end = np.full(n_users, -NEVER, dtype=np.int64)
        self.tls_on = tls_on
        self.tickets_on = tickets_on
        self.group_diff: np.ndarray | None = None  # (groups, minutes + 1) when a sampled run asks for it
        # reported by every run, 0 when nothing connected (a fixed schema for sweeps and reports)
        self.counts: dict[str, int] = {"connections": 0, **{f"connections_{c}": 0 for c in CAUSES}}
        if tls_on:
            self.counts.update(full_handshakes=0, resumed_handshakes=0)
        # connection time (connection_seconds / _minutes / _hours), per calendar day of the period
        ndays = self.day_starts.size
        self.period_start = int(self.day_starts[0])
        self.items = ItemCounter(ndays)
        self.item_ms = np.zeros(ndays)
        # the period day of each minute of the clock (-1: the warm-up); days start on whole minutes
        self._day_of_minute = self.day_of(np.arange(m, dtype=np.int64) * MINUTE_MS)
        if book.month_starts is None:  # the billing months, for an IoT fleet on the same book
            ends = self.month_starts if month_starts_ms is not None else np.array([self.period_start, self.end_ms])
            book.month_starts = [int(t // MINUTE_MS) for t in ends]
        self.channels = _Channels(social, n_users, self.period_start // MINUTE_MS, m) if _has_groups(social) else None

    def track_groups(self, groups: int) -> None:
        """Also keep the concurrency of ``groups`` user groups (user id mod ``groups``), minute by minute.

        A sampled run (:mod:`sim.sampling`) resamples these groups to know how much its estimate of the
        whole population's peak would vary with the users sampled; the ids are drawn independently, so
        residues are random groups of equal size."""
        self.group_diff = np.zeros((int(groups), self.minutes + 1))
        self.fine_diff = np.zeros(self.minutes * FINE_PER_MINUTE + 1)

    def group_levels(self) -> np.ndarray | None:
        """Concurrent connections of each group at each minute's start, ``(groups, minutes)``."""
        return None if self.group_diff is None else np.cumsum(self.group_diff, axis=1)[:, :-1]

    def fine_level(self) -> np.ndarray | None:
        """Concurrent connections every :data:`FINE_MS` (a sampled run's peak is estimated from it: the
        maximum within a minute of a small sample is not a scaled-down maximum of the whole app)."""
        return None if self.group_diff is None else np.cumsum(self.fine_diff)[:-1]

    def _count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def day_of(self, t: np.ndarray) -> np.ndarray:
        """Calendar day of the period (in its time zone) of world times ``t``; -1 before the period."""
        return np.searchsorted(self.day_starts, t, side="right") - 1

    def start_period(self, carried_users: np.ndarray) -> None:
        """The warm-up is over: forget who was seen, and count users still online at the period start.

        Counts accumulated so far are the warm-up's (the world subtracts them); a connection that is up
        at the period start paid its handshake in the warm-up, but its user is active in the period.
        """
        self.start_month(carried_users, 0)

    def start_month(self, carried_users: np.ndarray, month: int) -> None:
        """Billing month ``month`` begins: users online at its start are its first MAU, at its first minute."""
        t0 = int(self.month_starts[month])
        users = np.unique(carried_users)
        users = users[self.seen_month[users] < month]
        self.seen_month[users] = month
        self.mau_first[t0 // MINUTE_MS] += users.size
        day = int(self.day_of(np.array([t0]))[0])
        if day >= 0:
            self.active_day[day, users] = True

    # -- opening -------------------------------------------------------------------------------------
    def open(self, tl: Intervals, idx: np.ndarray, rng: np.random.Generator) -> None:
        """Open the intervals ``tl[idx]`` (``tl`` sorted by user, start; ``idx`` ascending)."""
        if idx.size == 0:
            return
        user = tl.user[idx]
        start = tl.start[idx]
        prev = idx - 1
        pc = np.maximum(prev, 0)
        has_prev = (prev >= 0) & (tl.user[pc] == user)
        prev_end = np.where(has_prev, tl.end[pc], self.last_end[user])
        within = (start - prev_end) <= int(self.net.ticket_lifetime_s * 1000)
        resumed = within & self.tickets_on & (rng.random(idx.size) < self.net.tls_resumption_probability)
        self.record_open(user, start, tl.cause[idx], resumed)
        tl.opened[idx] = True

    def record_open(self, user: np.ndarray, start: np.ndarray, cause: np.ndarray, resumed: np.ndarray) -> None:
        """Meter connections opened at ``start`` (sorted by user, then start) with their handshakes decided.

        Both engines come here: the fast one after drawing the resumptions of a day's intervals, the
        events one with what its clients did.
        """
        if user.size == 0:
            return
        minute = start // MINUTE_MS
        bincount_into(self.full, minute[~resumed])
        bincount_into(self.resumed, minute[resumed])
        bincount_into(self.connects, minute)
        self._count("connections", user.size)
        if self.tls_on:
            self._count("full_handshakes", int((~resumed).sum()))
            self._count("resumed_handshakes", int(resumed.sum()))
        causes = np.bincount(cause, minlength=len(CAUSES))
        for name, c in zip(CAUSES, causes, strict=True):
            self._count(f"connections_{name}", int(c))
        day = self.day_of(start)
        d0 = int(day.min())
        if int(day.max()) == d0:  # the usual case: one row, a 1-D scatter
            if d0 >= 0:
                self.active_day[d0, user] = True
        else:
            ok = day >= 0
            self.active_day[day[ok], user[ok]] = True
        # MAU: the first connection of each user in each billing month (-1: the warm-up), at its minute
        ms = self.month_starts
        m_lo, m_hi = (int(np.searchsorted(ms, t, side="right")) - 1 for t in (start.min(), start.max()))
        first = np.ones(user.size, dtype=bool)
        if m_lo == m_hi:  # the usual case: a batch within one month
            first[1:] = user[1:] != user[:-1]
            new = first & (self.seen_month[user] < m_lo)
            self.seen_month[user[new]] = m_lo
        else:
            month = np.searchsorted(ms, start, side="right") - 1
            first[1:] = (user[1:] != user[:-1]) | (month[1:] != month[:-1])
            new = first & (self.seen_month[user] < month)
            np.maximum.at(self.seen_month, user[new], month[new])
        bincount_into(self.mau_first, minute[new])
        if self.channels is not None:
            self.channels.opened(user, start)

    # -- closing -------------------------------------------------------------------------------------
    def close(self, tl: Intervals, idx: np.ndarray, rng: np.random.Generator, at_period_end: bool = False) -> None:
        """Close the (opened) intervals ``tl[idx]`` whose end is final."""
        if idx.size == 0:
            return
        grace = None if at_period_end else rng.random(idx.size) < self.net.graceful_close_fraction
        self.record_close(tl.user[idx], tl.start[idx], tl.end[idx], grace)

    def record_close(self, user: np.ndarray, start: np.ndarray, end_ms: np.ndarray, graceful: np.ndarray | None,
                     keepalives: np.ndarray | None = None) -> None:
        """Meter connections ``[start, end)`` whose end is final; ``graceful`` None: still open at the
        period's end (no teardown). ``keepalives``: heartbeat exchanges per connection (default: one
        per ``heartbeat_s`` of its life, what the default client does)."""
        if user.size == 0:
            return
        end = np.minimum(end_ms, self.end_ms)
        hb = self.net.heartbeat_s
        if keepalives is not None:
            cycles = np.asarray(keepalives, dtype=np.int64)
        elif hb > 0:
            cycles = (end - start) // int(hb * 1000)
        else:
            cycles = None
        if cycles is not None:
            amount = cycles.astype(np.float64)
            spread(self.keepalive_diff, start, end, amount)
            # counted as metered: the share of a connection's keep-alives spread over minutes before the period
            # (a connection up since the warm-up) is in no minute of the period, so not in its count either
            m0 = int(self.day_starts[0] // MINUTE_MS)
            early = np.flatnonzero(start < m0 * MINUTE_MS)
            before = 0.0
            if early.size:
                a = np.clip(start[early] // MINUTE_MS, 0, self.minutes - 1)
                b = np.clip((np.maximum(end[early], start[early] + 1) - 1) // MINUTE_MS, 0, self.minutes - 1)
                before = float((amount[early] / (b - a + 1) * np.clip(m0 - a, 0, b - a + 1)).sum())
            self._count("keepalives", int(round(float(amount.sum()) - before)))
        a = np.minimum((start + MINUTE_MS - 1) // MINUTE_MS, self.minutes)
        b = np.minimum((end + MINUTE_MS - 1) // MINUTE_MS, self.minutes)
        bincount_into(self.ccu_diff, a)
        bincount_into(self.ccu_diff, b, sign=-1)
        if self.group_diff is not None:  # whole-number steps: np.add.at is exact in any order, and costs the batch
            G = self.group_diff.shape[0]
            g = user % G
            np.add.at(self.group_diff, (g, a), 1.0)
            np.add.at(self.group_diff, (g, b), -1.0)
            nf = self.fine_diff.size
            np.add.at(self.fine_diff, np.minimum((start + FINE_MS - 1) // FINE_MS, nf - 1), 1.0)
            np.add.at(self.fine_diff, np.minimum((end + FINE_MS - 1) // FINE_MS, nf - 1), -1.0)
        d0 = self.day_of(start)
        d1 = self.day_of(end - 1)
        multi = np.flatnonzero(d1 > d0)
        for i in multi:  # connections spanning midnight (few): mark the later days too
            self.active_day[max(d0[i] + 1, 0) : d1[i] + 1, user[i]] = True
        if graceful is not None:
            grace = np.asarray(graceful, dtype=bool)
            g_min = (end[grace] // MINUTE_MS).astype(np.int64)
            bincount_into(self.graceful, g_min)
            self._count("graceful_disconnects", int(grace.sum()))
            self._count("silent_disconnects", int((~grace).sum()))
            np.maximum.at(self.last_end, user, end_ms)
        self._connection_time(start, end)
        if self.channels is not None:
            self.channels.closed(user, start, end)

    def _connection_time(self, start: np.ndarray, end: np.ndarray) -> None:
        """``connection_seconds`` items of connections ``[start, end)`` (``end`` already within the clock)."""
        p0 = self.period_start
        if int(start.min()) >= p0:  # all opened inside the period: every one is an item
            s, e = start, end
        else:
            s = np.maximum(start, p0)
            item = (end > s) | ((start >= p0) & (start < self.end_ms))
            s, e = s[item], end[item]
            if s.size == 0:
                return
        inner = self.month_starts[1:]
        inner = inner[(inner > int(s.min())) & (inner < int(e.max()))]
        s, e = split_at(s, e, inner.tolist())  # a connection across a billing month's start: each part an item
        ms = e - s
        day = self._day_of_minute[(e - (ms > 0)) // MINUTE_MS]  # the day of its last ms (of its start if empty)
        self.items.add(day, (ms + 999) // 1000)
        d0 = int(day.min())
        if d0 == int(day.max()):
            self.item_ms[d0] += float(ms.sum())
        else:
            n = self.item_ms.size
            self.item_ms += np.bincount(day, weights=ms.astype(np.float64), minlength=n)[:n]

    def day_end(self, t_ms: int) -> None:
        """Every connection up to world time ``t_ms`` (a midnight) has been opened, and closed if it ended: the
        group channels of the minutes before it are final (both engines call this after each day's closes)."""
        if self.channels is not None:
            self.channels.finalize(min(int(t_ms), self.end_ms) // MINUTE_MS)

    # -- concurrency -------------------------------------------------------------------------------
    def sweep(self, tl: Intervals, lo: int, hi: int) -> None:
        """Per-minute maximum of concurrent connections over ``[lo, hi)`` (whole minutes).

        The level at every second boundary comes from a difference array (one ``bincount``). Within a
        second the level can only exceed its boundary value by the connections starting in that
        second, so only seconds whose bound ``level + starts`` exceeds the best maximum found so far
        can hold the day's peak; those are swept event by event (exact), most promising first. Each
        minute reports the largest level seen at its second boundaries or in its swept seconds, so
        the series' maximum, the peak CCU, is exact while the day's events are never sorted.
        """
        hi = min(hi, self.end_ms)
        if hi <= lo or len(tl) == 0:
            return
        sec = 1000
        s0, s1 = lo // sec, hi // sec
        nsec = s1 - s0
        a = np.clip((tl.start + sec - 1) // sec - s0, 0, nsec)
        b = np.clip((tl.end + sec - 1) // sec - s0, 0, nsec)
        level = np.cumsum(np.bincount(a, minlength=nsec + 1) - np.bincount(b, minlength=nsec + 1))[:nsec]
        inside = (tl.start >= lo) & (tl.start < hi) & (tl.start % sec != 0)
        s_all = tl.start[inside]
        s_sec = s_all // sec - s0
        bound = level + np.bincount(s_sec, minlength=nsec)[:nsec]
        mx = level.astype(np.float64)
        best = float(level.max())
        todo = np.flatnonzero(bound > best)
        if todo.size:
            e_ok = (tl.end > lo) & (tl.end < hi) & (tl.end % sec != 0)
            e_all = tl.end[e_ok]
            e_sec = e_all // sec - s0
        while todo.size:  # sweep the most promising seconds first; stop when none can beat the best
            batch = todo[np.argsort(-bound[todo], kind="stable")[:256]]
            pick = np.zeros(nsec, dtype=bool)
            pick[batch] = True
            ev = np.concatenate([e_all[pick[e_sec]] * 2, s_all[pick[s_sec]] * 2 + 1])  # ends first at ties
            ev.sort()
            delta = np.where(ev & 1, 1, -1)
            second = (ev >> 1) // sec - s0
            heads = np.flatnonzero(np.r_[True, second[1:] != second[:-1]])
            csum = np.cumsum(delta)
            offset = np.repeat(csum[heads] - delta[heads], np.diff(np.r_[heads, ev.size]))
            lv = level[second] + csum - offset
            secs = second[heads]
            mx[secs] = np.maximum(mx[secs], np.maximum.reduceat(lv, heads))
            best = max(best, float(mx[batch].max()))
            pick[:] = False
            pick[batch] = True
            todo = todo[~pick[todo] & (bound[todo] > best)]
        m0 = lo // MINUTE_MS
        per_min = mx.reshape(-1, MINUTE_MS // sec).max(axis=1)
        self.ccu_max[m0 : m0 + per_min.size] = per_min

    # -- output --------------------------------------------------------------------------------------
    def _costs(self, keep: np.ndarray):
        p = self.protocol
        return ((self.full, p.connect(False)), (self.resumed, p.connect(True)),
                (self.graceful, p.disconnect(True)), (keep, p.keepalive()))

    def provisional_outbound(self, since: int = 0) -> dict[str, np.ndarray]:
        """Outbound bytes per category if the run ended now: the book's plus connection costs so far.

        The same additions in the same order as :meth:`flush`, so a minute to which nothing more is
        added later has bit-identical values. ``since``: only minutes from it on are computed (the
        others are 0), for an enforcer that watches one billing month of a long run.
        """
        book = self.book.bytes
        out = {}
        for (d, c), a in book.items():
            if d == "out":
                out[c] = a.copy() if since == 0 else np.concatenate([np.zeros(since), a[since:]])
        keep = settle(np.cumsum(self.keepalive_diff)[:-1])
        for counts, cost in self._costs(keep):
            for cat, v in cost.out.items():
                if v:
                    out[cat][since:] += counts[since:] * v
        return out

    def flush(self) -> dict:
        """Write connection bytes and series into the book; return the world meters."""
        book = self.book
        keep = settle(np.cumsum(self.keepalive_diff)[:-1])
        for counts, cost in self._costs(keep):
            for d, side in (("out", cost.out), ("in", cost.inb)):
                for cat, v in side.items():
                    if v:
                        book.add_bytes_series(d, cat, counts * v)
        ccu = np.cumsum(self.ccu_diff)[:-1]
        book.set_level("ccu", ccu)
        book.set_level("ccu_max", np.maximum(self.ccu_max, ccu))
        book.add_series_clock("connects", self.connects)
        dau = self.active_day.sum(axis=1).astype(np.float64)
        book.set_daily("dau", dau)
        peak = np.maximum(self.ccu_max, ccu)
        attached = ccu  # channels attached at each minute's start: personal ones, and groups with a member on
        if self.channels is not None:
            self.channels.finalize(self.minutes)
            attached = ccu + self.channels.active
        return {
            "mau": {"interval": "1min", "values": _ints(self.mau_first)},
            "peak_ccu": {"interval": "1min", "values": _ints(peak)},
            **self.time_meters(),
            "peak_channels": {"interval": "1min", "values": _ints(np.maximum(peak, attached))},
            "channel_minutes": {"interval": "1min", "values": _ints(attached)},
        }

    def time_meters(self) -> dict:
        """``connection_seconds``, ``connection_minutes`` and ``connection_hours`` so far (module doc)."""
        at, sec, count = self.items.entries()
        n = self.item_ms.size
        minutes = np.bincount(at, weights=-(-sec // 60) * count, minlength=n)[:n]  # each item rounded up
        return {
            "connection_seconds": distribution(at, sec, count),
            "connection_minutes": {"interval": "1d", "values": numbers(minutes)},
            "connection_hours": {"interval": "1d", "values": numbers(self.item_ms / 3_600_000.0)},
        }

    @staticmethod
    def sorted_key(tl: Intervals) -> np.ndarray:
        return tl.user * KEY + tl.start


def _has_groups(social) -> bool:
    return social is not None and social.groups.items.size > 0


class _Channels:
    """Group channels with at least one member connected, at each minute's start (``peak_channels``).

    Fed the connections as both engines report them: :meth:`opened` (the start of each connection, so that
    the connections still open at a midnight are known) and :meth:`closed`; :meth:`finalize` then counts the
    minutes up to a midnight, when every connection that covers them is either closed or still open. A user
    is connected at a minute's start ``k`` when ``start <= k min < end`` (the ``ccu`` level's rule).

    How: the connected minutes of each user involved as a bitmap (64 minutes a word), OR-ed over each group's
    members (member by member: the groups sorted by size, the j-th members of all groups with more than j at
    once), and the groups' bits counted per minute. Memory: a day's closed connections, and bitmaps of users,
    memberships and groups for a window of minutes (the day cut into windows when they would pass
    :data:`_BITMAP_BYTES`)."""

    def __init__(self, social, n_users: int, first_minute: int, minutes: int) -> None:
        groups = social.groups
        size = np.diff(groups.off)
        order = np.argsort(-size, kind="stable")                 # groups, largest first
        ranked = size[order]
        ranked = ranked[ranked > 0]
        #: groups with more than j members (a prefix of the ranking), for j = 0, 1, ...
        self.with_j = np.searchsorted(-ranked, -np.arange(int(ranked[0]) if ranked.size else 0), side="left")
        rank = np.repeat(np.arange(ranked.size), ranked)
        j = np.arange(rank.size) - np.repeat(np.cumsum(ranked) - ranked, ranked)
        pos = np.lexsort((rank, j))                              # member j of every group in turn
        #: memberships, j-th members of the ranked groups for j = 0, 1, ...
        self.members = groups.items[groups.off[order[rank[pos]]] + j[pos]]
        self.offsets = np.r_[0, np.cumsum(self.with_j)]
        self.in_group = np.zeros(n_users, dtype=bool)
        self.in_group[groups.items] = True
        self.open_start = np.full(n_users, -1, dtype=np.int64)  # start of each user's open connection
        self.done = int(first_minute)                   # minutes before it are counted (the warm-up never is)
        self.minutes = int(minutes)
        self.active = np.zeros(minutes)
        self._closed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._mark = np.zeros(n_users, dtype=bool)
        self._row = np.full(n_users, -1, dtype=np.int64)

    def opened(self, user: np.ndarray, start: np.ndarray) -> None:
        """Connections opened at ``start`` (sorted by user, then start): a user's last one may stay open."""
        last = np.ones(user.size, dtype=bool)
        last[:-1] = user[1:] != user[:-1]
        self.open_start[user[last]] = start[last]

    def closed(self, user: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        shut = self.open_start[user] == start
        self.open_start[user[shut]] = -1
        a = np.maximum((start + MINUTE_MS - 1) // MINUTE_MS, self.done)
        b = np.minimum((end + MINUTE_MS - 1) // MINUTE_MS, self.minutes)
        keep = (b > a) & self.in_group[user]
        if keep.any():
            self._closed.append((user[keep], a[keep], b[keep]))

    def finalize(self, upto: int) -> None:
        """Count the group channels of the minutes ``[done, upto)``."""
        upto = min(int(upto), self.minutes)
        lo = self.done
        if upto <= lo:
            return
        op = np.flatnonzero((self.open_start >= 0) & self.in_group)
        parts = [*self._closed, (op, np.maximum((self.open_start[op] + MINUTE_MS - 1) // MINUTE_MS, lo),
                                 np.full(op.size, upto, dtype=np.int64))]
        user, a, b = (np.concatenate([p[i] for p in parts]) for i in range(3))
        later = b > upto  # (not expected: closes come at or before the midnight) kept for the next call
        self._closed = [(user[later], np.full(int(later.sum()), upto, dtype=np.int64), b[later])] if later.any() else []
        b = np.minimum(b, upto)
        ok = b > a
        user, a, b = user[ok], a[ok], b[ok]
        self.done = upto
        if user.size == 0 or self.members.size == 0:
            return
        mark = self._mark
        mark[user] = True
        involved = np.flatnonzero(mark)
        mark[involved] = False
        rows = involved.size
        self._row[involved] = np.arange(rows)
        row = self._row[user]
        member_row = self._row[self.members]
        self._row[involved] = -1
        member_row[member_row < 0] = rows                # not connected: an empty bitmap row
        # bytes per 64 minutes: a word per user and per membership, a byte per minute and group when counted
        per_word = 8 * max(rows + 1, member_row.size, 8 * int(self.with_j[0]))
        width = 64 * max(1, _BITMAP_BYTES // per_word)  # minutes per window
        for w0 in range(lo, upto, width):
            w1 = min(w0 + width, upto)
            inside = (a < w1) & (b > w0) if (w0 > lo or w1 < upto) else slice(None)
            self.active[w0:w1] += _window(row[inside], np.maximum(a[inside], w0) - w0, np.minimum(b[inside], w1) - w0,
                                          rows, member_row, self.with_j, self.offsets, w1 - w0)


#: bytes of one bitmap window of :class:`_Channels` (users or memberships x minutes / 8)
_BITMAP_BYTES = 32 << 20
#: 2**n - 1 as uint64, n = 0..64
_LOW_BITS = np.array([(1 << k) - 1 for k in range(65)], dtype=np.uint64)


def _window(row: np.ndarray, a: np.ndarray, b: np.ndarray, rows: int, member_row: np.ndarray, with_j: np.ndarray,
            offsets: np.ndarray, width: int) -> np.ndarray:
    """Groups with a member connected at each of ``width`` minute starts: user ``row`` is connected over minutes
    ``[a, b)`` of the window; ``member_row[offsets[j]:offsets[j] + with_j[j]]`` are the j-th members of the
    ``with_j[j]`` largest groups (``rows``: an empty row)."""
    nwords = -(-width // 64)
    bits = np.zeros((rows + 1, nwords), dtype=np.uint64)
    wa, wb = a // 64, (b - 1) // 64
    multi = np.flatnonzero(wb > wa)
    if multi.size:  # a connection over several words: one entry per word (its own bits in each)
        nw = wb[multi] - wa[multi] + 1
        rep = np.repeat(multi, nw)
        w = wa[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(nw) - nw, nw))
        lo, hi = np.maximum(a[rep], w * 64), np.minimum(b[rep], w * 64 + 64)
        np.bitwise_or.at(bits, (row[rep], w), _LOW_BITS[hi - lo] << (lo % 64).astype(np.uint64))
        b = b.copy()
        b[multi] = a[multi]  # done: no bits left for the single-word pass
    # within one word: bits a .. b - 1 of word a // 64
    np.bitwise_or.at(bits, (row, wa), _LOW_BITS[b - a] << (a % 64).astype(np.uint64))
    per_member = bits[member_row]
    group_bits = per_member[: with_j[0]].copy()
    for j in range(1, with_j.size):  # OR in the j-th members of the groups that have one
        group_bits[: with_j[j]] |= per_member[offsets[j] : offsets[j] + with_j[j]]
    per_bit = np.unpackbits(group_bits.astype("<u8").view(np.uint8), axis=1, bitorder="little")
    # count the groups per minute: rows of bytes added 255 at a time as uint64 lanes (no lane overflows)
    lanes = per_bit.view(np.uint64)
    count = np.zeros(per_bit.shape[1], dtype=np.int64)
    for i in range(0, lanes.shape[0], 255):
        count += np.add.reduce(lanes[i : i + 255], axis=0, dtype=np.uint64).view(np.uint8)
    return count[:width]


def _ints(values: np.ndarray) -> list[int]:
    """``[int(v) for v in values]`` for counts (finite, far below 2**63), vectorised."""
    return np.asarray(values).astype(np.int64).tolist()
