"""The diurnal curve: how app use spreads over the local day (both engines draw session starts from it)."""

from __future__ import annotations

import numpy as np

from sim.scenario import Diurnal


def diurnal_weights(d: Diurnal) -> np.ndarray:
    """Relative activity per local minute of the day (mean 1)."""
    h = (np.arange(1440) + 0.5) / 60.0
    if d.shape == "flat":
        w = np.ones(1440)
    else:
        w = 1.0 + (d.peak_to_mean - 1.0) * np.cos(2 * np.pi * (h - d.peak_hour) / 24.0)
    w = np.maximum(w, 0.0)
    return w / w.mean()


def diurnal_cdf(d: Diurnal) -> np.ndarray:
    w = diurnal_weights(d)
    cdf = np.cumsum(w)
    return cdf / cdf[-1]


def local_times(rng, cdf: np.ndarray, n: int) -> np.ndarray:
    """``n`` local times of day (int ms) on the diurnal curve ``cdf``: a minute from the curve, uniform within it."""
    minute = np.searchsorted(cdf, rng.random(n), side="right")
    return minute * 60_000 + (rng.random(n) * 60_000).astype(np.int64)

