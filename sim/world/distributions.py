"""Random draws the world's parts share.

Why a module of its own: the population, the social graph, sessions, messages, calls and pushes all draw
multipliers and durations from the same families; defined once here, they cannot drift apart (and the
graph need not import the population, which imports the graph).
"""

from __future__ import annotations

import numpy as np


def lognormal_mean_one(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """Log-normal multipliers with mean exactly 1 in expectation (mu = -sigma^2 / 2); sigma 0: all ones."""
    if sigma == 0:
        return np.ones(size)
    return rng.lognormal(-0.5 * sigma * sigma, sigma, size)


def session_lengths(rng: np.random.Generator, act, n: int) -> np.ndarray:
    """``n`` foreground session lengths (int ms, at least 1): exponential or log-normal with mean
    ``act.session_mean_s`` (a scenario's ``activity``)."""
    mean_ms = act.session_mean_s * 1000.0
    if act.session_distribution == "exponential":
        dur = rng.exponential(mean_ms, n)
    else:
        dur = mean_ms * lognormal_mean_one(rng, act.session_sigma, n)
    return np.maximum(1, np.round(dur)).astype(np.int64)


def launches(rng: np.random.Generator, act, mult: np.ndarray, prompted: np.ndarray,
             must: np.ndarray | bool = False) -> np.ndarray:
    """Spontaneous app launches of day-active users with session multipliers ``mult``: ``1 + Poisson``
    (``min_one_session``) or ``Poisson`` with mean ``sessions_per_dau_per_day x mult``, fewer by the launches
    notifications prompt on average (``prompted``): they are part of the measured launch rate. ``must``: users
    who surely open the app today (their sure day of the period: MAU is exactly the active users)."""
    m = act.sessions_per_dau_per_day
    if act.min_one_session:
        # at least one launch a day: a spontaneous one, unless notifications prompt one or more on average
        # (and it is not the user's sure day)
        sure = (prompted < 1.0) | must
        return sure + rng.poisson(np.maximum(np.where(sure, (m - 1.0) * mult, m * mult) - prompted, 0.0))
    return rng.poisson(np.maximum(m * mult - prompted, 0.0))


def message_sizes(rng: np.random.Generator, cfg, n: int) -> np.ndarray:
    """``n`` payload sizes (int bytes) of originated messages (a scenario's ``messaging``): fixed or log-normal
    text, and a share ``media_fraction`` of media messages of ``media_message_bytes``."""
    if cfg.size.distribution == "fixed":
        size = np.full(n, int(round(cfg.size.mean_bytes)), dtype=np.int64)
    else:
        size = np.maximum(1, np.round(cfg.size.mean_bytes * lognormal_mean_one(rng, cfg.size.sigma, n))).astype(np.int64)
    if cfg.media_fraction > 0:
        size[rng.random(n) < cfg.media_fraction] = int(round(cfg.media_message_bytes))
    return size

