"""Connection outages of tracker links: cellular drops, channel suspensions, reconnect back-off.

Why a table, not a SimPy process per device: a tracker loses its link a few times a day, so a month
of a 10,000-device fleet has a few 10^5 outages. Each outage is one row; its reconnect time follows in
closed form from the back-off schedule, the coverage gap and the channel's suspension windows, so
a new suspension (a plan limit acting during the run) is applied by recomputing rows, not by
replaying events.

An outage row: the link dies at ``t_down`` (silently for a cellular drop, by the server for a
suspension), the device notices at ``t_detect``, radio coverage is back at ``t_cover``, and the device
tries to reconnect at ``t_detect + 1, +2, +4, ...`` seconds (back-off doubling to a cap, AWS IoT SDK,
protocol-facts §3.1). An attempt before ``t_cover`` fails without reaching the platform; an attempt
during a suspension of the device's channel reaches it, pays a handshake and is rejected; the first
other attempt is the reconnection ``t_up``. The server keeps the dead connection until the MQTT
server timeout (1.5 x keep-alive, MQTT 3.1.1 [MQTT-3.1.2-24]) or until the device reconnects with
the same client id ([MQTT-3.1.4-2]), whichever is first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

I64 = np.int64
_BIG = I64(1) << 40  # > any time in seconds we handle; separates devices/channels in combined keys
_NEVER = I64(1) << 39


@dataclass
class Outages:
    """Outage rows, kept sorted by (device, t_down, kind); kind 0 = suspension close, 1 = cellular drop."""

    dev: np.ndarray
    chan: np.ndarray
    kind: np.ndarray
    t_down: np.ndarray
    t_detect: np.ndarray
    t_cover: np.ndarray
    u_resume: np.ndarray
    requeued: np.ndarray  # QoS 1 messages the platform rejected at the close, re-sent after reconnecting
    # derived by :meth:`settle`
    t_up: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    prev_up: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    rej_row: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    rej_t: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    fmax: np.ndarray | None = None  # per device: last reconnection among frozen rows (see :meth:`freeze`)

    def __len__(self) -> int:
        return len(self.dev)

    def extend(self, **cols: np.ndarray) -> np.ndarray:
        """Append rows and restore the sort order; returns the new positions of the appended rows."""
        names = ("dev", "chan", "kind", "t_down", "t_detect", "t_cover", "u_resume", "requeued")
        n_old = len(self)
        for n in names:
            old = getattr(self, n)
            setattr(self, n, np.concatenate((old, np.asarray(cols[n]).astype(old.dtype))))
        order = np.lexsort((self.kind, self.t_down, self.dev))
        for n in names:
            setattr(self, n, getattr(self, n)[order])
        pos = np.empty(len(order), I64)
        pos[order] = np.arange(len(order))
        if len(self.t_up) == n_old:  # already settled once: carry derived columns over
            t_up = np.full(len(order), _NEVER, I64)
            t_up[pos[:n_old]] = self.t_up
            self.t_up = t_up
            active = np.ones(len(order), bool)
            active[pos[:n_old]] = self.active
            self.active = active
            self.rej_row = pos[self.rej_row]
        return pos[n_old:]

    def settle(
        self,
        windows: Windows,
        backoff0: int,
        backoff_max: int,
        horizon: int,
        since: int | None = None,
        new_rows: np.ndarray | None = None,
    ) -> None:
        """Recompute reconnect times, rejected attempts and which rows are real.

        ``since``: only rows still down at ``since`` (or ``new_rows``) can change, because a new
        suspension window starts at ``since``. A row is void when its device was already down (an
        earlier active row's ``t_up`` is later than its ``t_down``); voiding is a fixed point because
        ``t_up`` of a row does not depend on other rows.
        """
        t_from = None
        if since is None or len(self.t_up) != len(self):
            redo = np.arange(len(self), dtype=I64)
            self.rej_row, self.rej_t = np.zeros(0, I64), np.zeros(0, I64)
            self.t_up = np.full(len(self), _NEVER, I64)
        else:
            # Rows that are void and started before ``since`` stay void (their cover only gets longer);
            # recomputing them in a storm would walk their back-off through every later window.
            mask = (self.t_up >= since) & (self.active | (self.t_down >= since))
            if new_rows is not None:
                mask[new_rows] = True
            redo = np.flatnonzero(mask)
            # attempts before ``since`` are unchanged: keep their rejections, resume the back-off there
            keep = ~mask[self.rej_row] | (self.rej_t < since)
            self.rej_row, self.rej_t = self.rej_row[keep], self.rej_t[keep]
            t_from = np.full(len(redo), I64(since))
        t_up, rr, rt = reconnect(
            self.t_detect[redo], self.t_cover[redo], self.chan[redo], windows, backoff0, backoff_max, horizon,
            t_from,
        )  # fmt: skip
        self.t_up[redo] = t_up
        self.rej_row = np.concatenate((self.rej_row, redo[rr]))
        self.rej_t = np.concatenate((self.rej_t, rt))
        active = np.ones(len(self), bool)
        fmax = self.fmax[self.dev] if self.fmax is not None else np.full(len(self), -_NEVER, I64)
        for _ in range(1000):
            prev = np.maximum(_prev_max_per_dev(self.dev, np.where(active, self.t_up, -1)), fmax)
            new = self.t_down >= prev
            if np.array_equal(new, active):
                break
            active = new
        self.active = active
        self.prev_up = np.maximum(_prev_max_per_dev(self.dev, np.where(active, self.t_up, -_NEVER)), fmax)

    _COLS = (
        *("dev", "chan", "kind", "t_down", "t_detect", "t_cover", "u_resume", "requeued"),
        *("t_up", "active", "prev_up"),
    )

    def freeze(self, t: int, n_dev: int) -> None:
        """Move each device's leading rows that are over before ``t`` to an archive.

        Rows over before the committed time can no longer change; keeping them out of the working
        table keeps a reconnect storm (one row per device per suspension) linear in time. A working
        row's activity then also depends on ``fmax``, the last frozen reconnection of its device.
        """
        if self.fmax is None:
            self.fmax = np.full(n_dev, -_NEVER, I64)
            self.arch = {n: [] for n in self._COLS}
            self.arch_rej_row, self.arch_rej_t, self.n_arch = [], [], 0
        if len(self) == 0 or len(self.t_up) != len(self):
            return
        bad = ~((self.t_up < t) & (self.t_down < t))
        first = np.ones(len(self), bool)
        first[1:] = self.dev[1:] != self.dev[:-1]
        start = np.maximum.accumulate(np.where(first, np.arange(len(self)), 0))
        cb = np.cumsum(bad)
        fz = (cb - (cb[start] - bad[start])) == 0
        if not fz.any():
            return
        fa = fz & self.active
        np.maximum.at(self.fmax, self.dev[fa], self.t_up[fa])
        for n in self._COLS:
            self.arch[n].append(getattr(self, n)[fz])
        new_idx = np.cumsum(fz) - 1 + self.n_arch
        rz = fz[self.rej_row]
        self.arch_rej_row.append(new_idx[self.rej_row[rz]])
        self.arch_rej_t.append(self.rej_t[rz])
        self.n_arch += int(fz.sum())
        keep = ~fz
        work_idx = np.cumsum(keep) - 1
        self.rej_row, self.rej_t = work_idx[self.rej_row[~rz]], self.rej_t[~rz]
        for n in self._COLS:
            setattr(self, n, getattr(self, n)[keep])

    def full(self) -> Outages:
        """All rows (archive + working) as one settled table, for the results."""
        if self.fmax is None or self.n_arch == 0:
            return self
        cols = {n: np.concatenate((*self.arch[n], getattr(self, n))) for n in self._COLS}
        o = Outages(**{n: cols[n] for n in self._COLS[:8]})
        o.t_up, o.active, o.prev_up = cols["t_up"], cols["active"], cols["prev_up"]
        o.rej_row = np.concatenate((*self.arch_rej_row, self.rej_row + self.n_arch))
        o.rej_t = np.concatenate((*self.arch_rej_t, self.rej_t))
        return o

    def rejected(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, time) of rejected reconnection attempts of active rows."""
        keep = self.active[self.rej_row] if len(self.rej_row) else np.zeros(0, bool)
        return self.rej_row[keep], self.rej_t[keep]

    def down_at(self, dev: np.ndarray, t: int) -> np.ndarray:
        """Whether each device in ``dev`` is inside an active outage at time ``t``."""
        return self.row_at(dev, t) >= 0

    def row_at(self, dev: np.ndarray, t: int) -> np.ndarray:
        """The active outage row each device in ``dev`` is inside at time ``t`` (-1 if up)."""
        act = np.flatnonzero(self.active)
        if len(act) == 0:
            return np.full(len(dev), -1, I64)
        key = self.dev[act] * _BIG + self.t_down[act]
        i = np.searchsorted(key, dev * _BIG + t, side="right") - 1
        ok = i >= 0
        row = act[np.maximum(i, 0)]
        return np.where(ok & (self.dev[row] == dev) & (self.t_up[row] > t), row, -1)


@dataclass
class Windows:
    """Channel suspension windows ``[start, end)``, sorted by (channel, start)."""

    chan: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))
    end: np.ndarray = field(default_factory=lambda: np.zeros(0, I64))

    def add(self, chan: int, start: int, end: int) -> None:
        self.chan = np.append(self.chan, I64(chan))
        self.start = np.append(self.start, I64(start))
        self.end = np.append(self.end, I64(end))
        order = np.lexsort((self.start, self.chan))
        self.chan, self.start, self.end = self.chan[order], self.start[order], self.end[order]

    def covers(self, chan: np.ndarray, t: np.ndarray) -> np.ndarray:
        if len(self.chan) == 0:
            return np.zeros(np.shape(t), bool)
        ks = self.chan * _BIG + self.start
        q = chan * _BIG + t
        i = np.searchsorted(ks, q, side="right") - 1
        j = np.maximum(i, 0)
        return (i >= 0) & (q < self.chan[j] * _BIG + self.end[j])


def _prev_max_per_dev(dev: np.ndarray, val: np.ndarray) -> np.ndarray:
    """For rows sorted by device: max of ``val`` over the *earlier* rows of the same device (else -inf)."""
    if len(dev) == 0:
        return np.zeros(0, I64)
    key = dev * (2 * _BIG) + (val + _BIG)
    run = np.maximum.accumulate(key)
    prev = np.empty_like(run)
    prev[0] = -1
    prev[1:] = run[:-1]
    same = np.zeros(len(dev), bool)
    same[1:] = dev[1:] == dev[:-1]
    return np.where(same, prev - dev * (2 * _BIG) - _BIG, -_NEVER)


def reconnect(
    t_detect: np.ndarray,
    t_cover: np.ndarray,
    chan: np.ndarray,
    windows: Windows,
    backoff0: int,
    backoff_max: int,
    horizon: int,
    t_from: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t_up, rejected_row, rejected_time)`` for the back-off schedule of each row.

    Attempts at ``t_detect + c_k`` with ``c_k = sum_{j<=k} min(b0 * 2^j, b_max)``. Attempts at or after
    ``horizon`` stop the search (the device is still down at the end of the period). ``t_from``: only
    attempts at or after it are made (a row resumed after a new suspension window; earlier attempts
    are unchanged).
    """
    n = len(t_detect)
    t_up = np.full(n, _NEVER, I64)
    rows = np.arange(n, dtype=I64)
    b0, bmax = I64(backoff0), I64(max(backoff_max, backoff0))
    steps = [b0]
    while steps[-1] < bmax:
        steps.append(min(steps[-1] * 2, bmax))
    offs = np.cumsum(np.array(steps, I64))  # c_0 .. c_K; then + bmax per attempt
    t_detect = t_detect.astype(I64)
    if t_from is None:
        k = np.zeros(n, I64)
    else:
        d = np.asarray(t_from, I64) - t_detect
        k = np.searchsorted(offs, d, side="left").astype(I64)
        lin = k >= len(offs)
        k[lin] = len(offs) - 1 + ceil_div(d[lin] - offs[-1], bmax)
        k = np.maximum(k, 0)
    rej_r: list[np.ndarray] = []
    rej_t: list[np.ndarray] = []
    while len(rows):
        kk = np.minimum(k, len(offs) - 1)
        when = t_detect[rows] + offs[kk] + (k - kk) * bmax
        late = when >= horizon
        t_up[rows[late]] = when[late]
        keep = ~late
        rows, when, k = rows[keep], when[keep], k[keep]
        reach = when >= t_cover[rows]
        blocked = reach & windows.covers(chan[rows], when)
        rej_r.append(rows[blocked])
        rej_t.append(when[blocked])
        ok = reach & ~blocked
        t_up[rows[ok]] = when[ok]
        rows, k = rows[~ok], k[~ok] + 1
    r = np.concatenate(rej_r) if rej_r else np.zeros(0, I64)
    t = np.concatenate(rej_t) if rej_t else np.zeros(0, I64)
    return t_up, r, t


def ceil_div(a: np.ndarray, b) -> np.ndarray:
    return -((-a) // b)


def cellular_drops(
    rng: np.random.Generator,
    n_dev: int,
    chan_of: np.ndarray,
    seconds: int,
    per_day: float,
    gap_mean_s: float,
    detect_s: int,
) -> dict[str, np.ndarray]:
    """Silent link deaths: Poisson per device, uniform in time, with an exponential coverage gap."""
    n = rng.poisson(per_day * seconds / 86400.0, size=n_dev)
    dev = np.repeat(np.arange(n_dev, dtype=I64), n)
    t_down = rng.integers(0, seconds, size=len(dev), dtype=I64)
    gap = (
        np.ceil(rng.exponential(gap_mean_s, size=len(dev))).astype(I64)
        if gap_mean_s > 0
        else np.zeros(len(dev), I64)
    )
    return {
        "dev": dev,
        "chan": chan_of[dev],
        "kind": np.ones(len(dev), I64),
        "t_down": t_down,
        "t_detect": t_down + I64(detect_s),
        "t_cover": t_down + gap,
        "u_resume": rng.random(len(dev)),
        "requeued": np.zeros(len(dev), I64),
    }


def empty_outages() -> Outages:
    z = np.zeros(0, I64)
    return Outages(z, z, z, z, z, z, np.zeros(0), z)
