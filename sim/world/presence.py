"""Who is in the app when: presence windows of a growing population (``growth``, sim/world/growth.py).

A growing app is simulated as a pool of everyone who is ever present, each user present in ``[join, leave)``
(world ms). Outside the window a user does nothing, which three rules make true in both engines:

* a user uses the app only on days that its window touches; on a day it joins or leaves, its sessions of
  that day are moved into the part of the day inside the window (kept in order, squeezed in proportion), so
  the sure day of each month it is present still opens the app and counts it in MAU;
* a message or call is never addressed to someone not yet joined or gone. Partners come from a social graph
  drawn over the whole pool, so a copy for an absent recipient is **redirected** to a user present all day,
  drawn uniformly: everyone keeps the messaging rate of the scenario whatever the app's size (a network
  effect, fewer messages while the app is small, would be a different model);
* nothing is carried for users who left: their copies already stored wait like any other.

Without ``growth`` every user is present always and nothing here changes a run (the world skips it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.world.clock import DAY_MS

#: Sentinels for "present before the clock starts" and "never leaves", far from overflow.
EARLIEST = -(2 ** 62)
LATEST = 2 ** 62


@dataclass(frozen=True)
class Presence:
    join: np.ndarray   # int64 world ms (EARLIEST: present from before the start)
    leave: np.ndarray  # int64 world ms (LATEST: never leaves)

    @classmethod
    def of(cls, sc, n: int, streams, offset_ms: int) -> Presence | None:
        """The first ``n`` pool users' windows for scenario ``sc`` (None without growth)."""
        if sc.growth is None:
            return None
        from sim.world import growth

        pool = growth.pool(sc.growth, sc.population.users, sc.simulation.months)
        u_join, u_leave = growth.uniforms(streams, n)
        lengths = growth.month_lengths_s(sc.simulation.start, sc.simulation.months)
        join_s, leave_s = growth.presence(pool, u_join, u_leave, lengths)
        return cls(_ms(join_s, offset_ms), _ms(leave_s, offset_ms))

    def on_day(self, users: np.ndarray, cs: int, ce: int) -> np.ndarray:
        """Mask of ``users`` whose window touches the day ``[cs, ce)``."""
        return (self.join[users] < ce) & (self.leave[users] > cs)

    def all_day(self, users: np.ndarray, cs: int, ce: int) -> np.ndarray:
        """Mask of ``users`` present the whole day."""
        return (self.join[users] <= cs) & (self.leave[users] >= ce)

    def at(self, users: np.ndarray, t: np.ndarray) -> np.ndarray:
        return (self.join[users] <= t) & (self.leave[users] > t)

    def squeeze(self, user: np.ndarray, start: np.ndarray, cs: int, ce: int) -> np.ndarray:
        """Session starts of day ``[cs, ce)`` moved into each user's window that day, in proportion."""
        lo = np.maximum(self.join[user], cs)
        hi = np.minimum(self.leave[user], ce)
        part = (lo > cs) | (hi < ce)
        if not part.any():
            return start
        out = start.copy()
        frac = (start[part] - cs) / float(ce - cs)
        out[part] = lo[part] + np.floor(frac * np.maximum(hi[part] - lo[part] - 1, 0)).astype(np.int64)
        return out

    def redirect(self, rng: np.random.Generator, recipient: np.ndarray, sender: np.ndarray | None, t: np.ndarray,
                 candidates: np.ndarray) -> np.ndarray:
        """``recipient`` with every one absent at ``t`` replaced by a uniform draw from ``candidates`` (users
        present all day), never the sender when another is possible."""
        absent = ~self.at(recipient, t)
        if not absent.any() or candidates.size == 0:
            return recipient
        out = recipient.copy()
        idx = np.flatnonzero(absent)
        pos = rng.integers(0, candidates.size, idx.size)
        pick = candidates[pos]
        if sender is not None and candidates.size > 1:
            same = pick == sender[idx]
            pick[same] = candidates[(pos[same] + 1) % candidates.size]
        out[idx] = pick
        return out


def _ms(seconds: np.ndarray, offset_ms: int) -> np.ndarray:
    s = np.asarray(seconds, dtype=np.float64)
    ms = np.where(np.isfinite(s), np.round(s * 1000.0) + offset_ms, np.where(s < 0, EARLIEST, LATEST))
    return np.clip(ms, EARLIEST, LATEST).astype(np.int64)


__all__ = ["DAY_MS", "EARLIEST", "LATEST", "Presence"]
