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
