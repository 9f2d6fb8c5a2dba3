"""Sampled runs: simulate ``n`` users of an app of ``N`` and scale the usage to all ``N``.

Why this is sound: every user's behaviour in the model depends on per-user parameters (rates, OS,
time zone, contacts drawn with a per-user degree), never on the app's size, and users' static
attributes are drawn independently (:mod:`sim.world.population`). A world of the first ``n`` users
is therefore a random sample of the app, a smaller copy of it, and with ``r = N / n``:

* **additive meters** -- bytes by category, counts, per-minute series of messages and bytes, the
  stored level -- are sums over users: ``r x`` the sample's sum is an unbiased estimate of the whole;
* **MAU** is ``r x`` the sample's MAU, with a Wilson score interval for the share of users active
  (finite-population corrected: the effective sample is ``n / (1 - n/N)``);
* **peak CCU** is the maximum of a per-minute sum, and scaling the sample's per-minute concurrency
  ``S_t`` by ``r`` would scale its minute-to-minute noise by ``r`` too, where the whole app's noise
  grows only as ``sqrt(N)``: the maximum of ``r S_t`` overstates the peak (by some 2-5 % for
  ``r = 10`` in a chat app). The estimate instead keeps the expected level and the noise apart:
  ``m`` is the sample's mean day (the mean of ``S`` over the period's days at the same minute of the
  day), and the whole app's concurrency is estimated as ``Y_t = r m + sqrt(r) (S_t - m)``: the mean
  level scaled by ``r``, the sample's own fluctuations (with their real autocorrelation) scaled by
  ``sqrt(r)``, the factor by which a sum's standard deviation grows from ``n`` to ``N`` independent
  users. The peak is ``max_t Y_t``. Periods shorter than two days have no mean day: ``Y = r S``
  (an overstatement, said in the usage's ``sampling`` section as ``peak_method: scaled``).
  The interval: the sample's users are split into :data:`GROUPS` groups (user id mod groups) whose
  concurrency the connection meter keeps; the groups are resampled with replacement
  (:data:`BOOTSTRAP` times), ``Y`` and its peak recomputed, and the interval is the estimate
  ``± t x sqrt(2) x`` the bootstrap standard deviation. ``sqrt(2)``: the interval must cover a full
  run's peak, which has its own fluctuation of about the size of the estimate's (a prediction
  interval, not a confidence interval for an expected peak). tests/test_sampling.py checks its
  coverage against full runs.

With a sample of at least the population nothing is sampled: the run is the unsampled run, bit for
bit. The per-minute frame is scaled the same way (``ccu`` and ``ccu_max`` by ``Y``), so fleets can
add apps' loads on a common clock. Runtime limits see the scaled usage (:class:`Scaled`): free limits,
notifications and throttling act when the whole app's would. A per-second message-rate limit is not enforced
on a sampled run (the enforcement report lists it as ``unsupported``): the whole app's per-second count
hardly fluctuates around its mean, the sample's does, so the sample against ``limit / r`` would reject what
the app never would -- the peak's problem again (sim/comparison.py ``mobile_enforcer``).

The meters other platforms bill scale the same way (sums over users): ``messages_in`` / ``messages_out``
and ``channel_minutes`` by the ratio as whole numbers per minute (:func:`scaled_counts`; for group channels,
which a sample of users attaches less often than r x the whole, an approximation), the distributions (``message_sizes_in`` /
``_out``, ``connection_seconds``) by multiplying every count by the ratio (so a count is an estimate, not
always whole), ``connection_minutes`` and ``connection_hours`` by the ratio. ``peak_channels`` is a level
like the concurrency: the mean-day estimate ``Y`` of its per-minute values (:func:`level_estimate`, from the
per-minute series rather than the fine level), never below the estimated ``peak_ccu`` of the same minute.

The IoT fleet (``iot.sample``) is scaled the same way by its own ratio, its element counts (devices,
MQTT sessions) being the full fleet's; ``mqtt_session_hours`` is the full fleet's persistent sessions for
the whole day plus ``r x`` the sample's other device sessions' connected hours. The fleet's runtime
restrictions act on the sample as they are (per-channel rates and element counts are not rescaled): a
sampled fleet's limits bind later than the full fleet's would. Sample a fleet only when its limits are not
the question.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.world.enforcer import Shifted

#: User groups whose concurrency a sampled run keeps (for the peak's interval).
GROUPS = 20
#: Bootstrap resamples of the groups.
BOOTSTRAP = 100
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Sample:
    """``sample`` of ``population`` users (or devices) simulated; ``ratio`` scales them up."""

    population: int
    sample: int
    confidence: float = 0.95

    @property
    def ratio(self) -> float:
        return self.population / self.sample


def mobile_sample(sc) -> Sample | None:
    """The scenario's user sample, None when every user is simulated."""
    from sim.world.population import pool_users

    p = sc.population
    users = pool_users(sc)  # a growing app: its pool of everyone ever present (sim/world/growth.py)
    if p.sample is None or p.sample >= users:
        return None
    return Sample(users, p.sample, p.sample_confidence)


def iot_sample(sc) -> Sample | None:
    """The scenario's IoT device sample, None when every device is simulated (or there is no fleet)."""
    iot = sc.iot
    if iot is None or iot.sample is None or iot.sample >= iot.devices:
        return None
    return Sample(iot.devices, iot.sample, sc.population.sample_confidence)


def world_scenario(sc):
    """The scenario the world simulates: the samples' sizes in place of the populations'."""
    ms, is_ = mobile_sample(sc), iot_sample(sc)
    if ms is None and is_ is None:
        return sc
    update = {}
    if ms is not None and sc.growth is None:  # a growing app's world draws the pool's first users itself
        update["population"] = sc.population.model_copy(update={"users": ms.sample, "sample": None})
    if is_ is not None:
        update["iot"] = sc.iot.model_copy(update={"devices": is_.sample, "sample": None})
    return sc.model_copy(update=update)


class Scaled(Shifted):
    """An enforcer watching a sampled world: the usage it is shown each day is scaled to the whole app,
    so its free limits and notifications fire when the whole app's would."""

    def __init__(self, inner, ratio: float) -> None:
        super().__init__(inner, 0, 0)
        self.ratio = float(ratio)

    def day_end(self, day_end_ms: int, usage_so_far) -> None:
        r = self.ratio
        upto = int(day_end_ms // 60_000)

        def scaled(since: int = 0) -> dict:
            raw = usage_so_far(since)
            out = {k: np.asarray(v, dtype=float) * r for k, v in raw.items()}
            if "peak_ccu" in out:  # a level: the mean-day estimate on the days so far, not r x a small sample's peak
                v = np.asarray(raw["peak_ccu"], dtype=float)
                lo = 0
                if self.block_days and since:  # blocks are estimated apart: from a whole block before `since` on
                    size = self.block_days * MINUTES_PER_DAY
                    lo = max(0, (since // size - 1) * size)
                w = None if self.day_weight is None else self.day_weight[lo // MINUTES_PER_DAY:]
                out["peak_ccu"][lo:upto] = provisional_level(v[lo:upto], r, self.block_days, w)
            return out
        self.inner.day_end(day_end_ms, scaled)

    block_days: int | None = None  # a growing app's blocks (GROWTH_BLOCK_DAYS), set by the run
    day_weight: np.ndarray | None = None  # and its sampled users present each day


# -- estimates ----------------------------------------------------------------------------------------------


#: A growing app (``growth``) is not the same app all run long: its mean day is taken over blocks of this many
#: days (at 47 % a month, a week's users differ by about 9 %), each block estimated on its own.
GROWTH_BLOCK_DAYS = 7


def level_estimate(values: np.ndarray, ratio: float, per_day: int = MINUTES_PER_DAY,
                   block_days: int | None = None, day_weight: np.ndarray | None = None) -> np.ndarray:
    """The whole app's concurrency from the sample's: ``r m + sqrt(r) (S - m)`` (module doc); ``per_day``
    values a day. A growing app: ``block_days``, estimate each block of that many days on its own (a last block
    shorter than two days joins the one before); ``day_weight``, the sampled users present each day, so that the
    mean day is a mean *per user present* scaled back to each day's users (the app grows within a block too)."""
    s = np.asarray(values, dtype=np.float64)
    if block_days:
        size = block_days * per_day
        cuts = list(range(0, s.size, size))
        if len(cuts) > 1 and s.size - cuts[-1] < 2 * per_day:
            cuts.pop()
        bounds = cuts + [s.size]
        return np.concatenate([
            level_estimate(s[a:b], ratio, per_day, None,
                           None if day_weight is None else day_weight[a // per_day: -(-b // per_day)])
            for a, b in zip(bounds, bounds[1:], strict=False)])
    days = s.size // per_day
    if days < 2:
        return s * ratio
    if day_weight is None:
        mean_day = smooth_day(s[: days * per_day].reshape(days, per_day).mean(axis=0), per_day)
        m = mean_day[np.arange(s.size) % per_day]
    else:
        w = np.asarray(day_weight, dtype=np.float64)
        per_user = s[: days * per_day].reshape(days, per_day) / np.maximum(w[:days], 1e-9)[:, None]
        mean_day = smooth_day(per_user.mean(axis=0), per_day)
        m = w[np.minimum(np.arange(s.size) // per_day, w.size - 1)] * mean_day[np.arange(s.size) % per_day]
    # Each day's fluctuation is measured against a mean day it is part of, so a sum of k of the D days' has
    # variance k (1 - k/D) sigma^2 around the raw mean day; but the mean day is smoothed (its fast part, of
    # variance ~ sigma^2 / D, stays in every day's fluctuation and adds k^2/D sigma^2 to the sum): k sigma^2.
    copies = shifted_copies(ratio, days)
    resid = s - m
    if copies > 1:  # the sum of the fluctuations of `copies` days, day-shifted (module doc)
        whole = days * per_day
        total = np.zeros_like(resid)
        for k in range(copies):
            shift = (k * (days // copies)) * per_day
            total[:whole] += np.roll(resid[:whole], -shift)
        total[whole:] = resid[whole:] * math.sqrt(copies)  # a trailing part-day has no copies of its own
        resid = total / math.sqrt(copies)
    # a sum of other days' fluctuations can dip below the whole app's empty level at night: no fewer than none
    return np.maximum(ratio * m + math.sqrt(ratio) * resid, 0.0)


def provisional_level(values: np.ndarray, ratio: float, block_days: int | None = None,
                      day_weight: np.ndarray | None = None) -> np.ndarray:
    """:func:`level_estimate` on the whole days known so far (at a day's end during a run), down to one day (its
    mean day is that day, smoothed): what an enforcer watching a sampled app is shown as its concurrency, so that
    a small sample's peak times r (20-40 % too high: module doc) does not trip a limit the app never reaches."""
    s = np.asarray(values, dtype=np.float64)
    days = s.size // MINUTES_PER_DAY
    if days == 0:
        return s * ratio
    if days >= 2:
        return level_estimate(s, ratio, block_days=block_days, day_weight=day_weight)
    m = smooth_day(s[:MINUTES_PER_DAY], MINUTES_PER_DAY)
    m = np.concatenate([m, np.full(s.size - MINUTES_PER_DAY, m[-1])])
    return np.maximum(ratio * m + math.sqrt(ratio) * (s - m), 0.0)


def shifted_copies(ratio: float, days: int) -> int:
    """How many day-shifted copies of the sample's fluctuations make the whole app's: about ``ratio`` of
    them (a sum of independent samples), at most half the period's days (so the copies stay apart from
    the mean day they are measured against)."""
    return max(1, min(int(round(ratio)), days // 2))


#: Minutes over which the mean day is averaged (a centred moving average, round the clock): the sample's
#: mean day still carries its own noise, which ``r x`` would make a false peak.
SMOOTH_MINUTES = 31


def smooth_day(day: np.ndarray, per_day: int) -> np.ndarray:
    """A centred circular moving average of one day's values over :data:`SMOOTH_MINUTES`."""
    w = max(1, int(round(SMOOTH_MINUTES * per_day / MINUTES_PER_DAY)))
    if w <= 1:
        return day
    half = w // 2
    padded = np.concatenate([day[-half:], day, day[:half]])
    c = np.concatenate([[0.0], np.cumsum(padded)])
    return (c[w:] - c[:-w])[: day.size] / w


def minute_peaks(fine: np.ndarray, ratio: float, minutes: int, block_days: int | None = None,
                 day_weight: np.ndarray | None = None) -> np.ndarray:
    """The whole app's per-minute maximum concurrency, from the sample's fine level (``FINE_PER_MINUTE``
    values a minute): the maximum within each minute of the estimated level."""
    from sim.world.connections import FINE_PER_MINUTE

    est = level_estimate(fine, ratio, MINUTES_PER_DAY * FINE_PER_MINUTE, block_days, day_weight)
    return est[: minutes * FINE_PER_MINUTE].reshape(minutes, FINE_PER_MINUTE).max(axis=1)


def _level_peaks(levels: np.ndarray, ratio: float) -> np.ndarray:
    """:func:`level_estimate`'s peak for each row of ``levels`` (resamples, ``(B, minutes)``), vectorised over
    the rows and without the day-shifted copies: the bootstrap's proxy, which measures how the mean day
    and the sample's fluctuations vary with the users sampled at a fraction of the cost (fleets run it for
    every sampled app)."""
    days = levels.shape[1] // MINUTES_PER_DAY
    if days < 2:
        return levels.max(axis=1) * ratio
    whole = levels[:, : days * MINUTES_PER_DAY].reshape(levels.shape[0], days, MINUTES_PER_DAY)
    mean_days = np.stack([smooth_day(d, MINUTES_PER_DAY) for d in whole.mean(axis=1)])
    m = mean_days[:, np.arange(levels.shape[1]) % MINUTES_PER_DAY]
    return (ratio * m + math.sqrt(ratio) * (levels - m)).max(axis=1)


def peak_interval(level: np.ndarray, groups: np.ndarray | None, s: Sample,
                  rng: np.random.Generator, value: float | None = None) -> dict:
    """Estimated peak of the whole app's concurrency with its interval (module doc).

    ``level``: the sample's per-minute maximum concurrency; ``value``: the estimate (default: the peak of
    :func:`level_estimate` of ``level``); ``groups``: ``(GROUPS, minutes)`` minute-start concurrency of the
    user groups (None: the interval is the fluctuation of the sample's own peak scaled, from the
    day-to-day spread at the peak minute)."""
    from scipy import stats

    if level.size == 0:
        return {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    bootstrap = groups is not None and groups.shape[0] >= 2 and groups.any()
    est = level_estimate(level, s.ratio) if value is None or not bootstrap else None
    value = float(est.max()) if value is None else float(value)
    if bootstrap:
        G = groups.shape[0]
        base = float(_level_peaks(groups.sum(axis=0, keepdims=True), s.ratio)[0])
        peaks = []
        for chunk in np.array_split(np.arange(BOOTSTRAP), max(1, BOOTSTRAP // 25)):
            w = rng.multinomial(G, np.full(G, 1.0 / G), size=chunk.size).astype(np.float64)
            peaks.append(_level_peaks(w @ groups, s.ratio))
        sd = float(np.std(np.concatenate(peaks) - base, ddof=1))
        q = float(stats.t.ppf(0.5 + s.confidence / 2, G - 1))
    else:
        days = level.size // MINUTES_PER_DAY
        at = int(np.argmax(est)) % MINUTES_PER_DAY
        spread = level[at: days * MINUTES_PER_DAY: MINUTES_PER_DAY] if days >= 2 else np.array([level.max()])
        v = float(np.var(spread, ddof=1)) if spread.size >= 2 else float(level.max())  # Poisson-like fallback
        sd = math.sqrt(s.ratio * s.ratio * v / max(days, 1) + s.ratio * v)
        q = float(stats.norm.ppf(0.5 + s.confidence / 2))
    half = q * math.sqrt(2.0) * sd
    return {"value": value, "ci_low": max(0.0, value - half), "ci_high": value + half}


def mau_interval(mau_sample: float, s: Sample) -> dict:
    """MAU ``r x`` the sample's, with a finite-population Wilson interval for the active share."""
    from scipy import stats

    n, N = s.sample, s.population
    p = mau_sample / n
    n_eff = n / (1.0 - n / N)
    z = float(stats.norm.ppf(0.5 + s.confidence / 2))
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff)) / (1 + z * z / n_eff)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return {"value": mau_sample * s.ratio, "ci_low": lo * N, "ci_high": hi * N}


# -- scaling a run --------------------------------------------------------------------------------------------


def scaled_counts(values: np.ndarray, ratio: float) -> np.ndarray:
    """Per-minute counts scaled to whole numbers whose running total is the rounded scaled total."""
    total = np.round(np.cumsum(np.asarray(values, dtype=np.float64)) * ratio)
    return np.diff(total, prepend=0.0)


#: Book series that are concurrency levels (scaled by :func:`level_estimate`, not by the ratio).
LEVELS = ("ccu", "ccu_max", "iot_connections")


def scale_book(book, ratio: float, block_days: int | None = None, day_weight: np.ndarray | None = None) -> None:
    """Scale a meter book in place: bytes and summed series by ``ratio``, concurrency levels by
    :func:`level_estimate`, counts and per-day activity by ``ratio`` (rounded)."""
    for key, v in book.bytes.items():
        book.bytes[key] = v * ratio
    for name, v in book.series.items():
        book.series[name] = (level_estimate(v, ratio, block_days=block_days, day_weight=day_weight)
                             if name in LEVELS else v * ratio)
    for name, v in book.daily.items():
        book.daily[name] = np.round(np.asarray(v, dtype=np.float64) * ratio)
    book.counts = {k: int(round(v * ratio)) for k, v in book.counts.items()}


def scale_mobile_meters(meters: dict, s: Sample, groups: np.ndarray | None, rng: np.random.Generator,
                        fine: np.ndarray | None = None, months: list[int] | None = None,
                        block_days: int | None = None, day_weight: np.ndarray | None = None) -> dict:
    """Scale the world's usage meters (per-minute series) in place; return the ``sampling`` section.

    ``months``: minute bounds of the billing months of a multi-month run: MAU and the peak are estimated per
    month, and ``mau`` / ``peak_ccu`` in the section are lists with one interval per month."""
    r = s.ratio
    doc: dict = {"population": s.population, "sample": s.sample, "ratio": r, "confidence": s.confidence}
    cuts = [(0, None)] if months is None else list(zip(months, months[1:], strict=False))
    mau = meters.get("mau")
    if isinstance(mau, dict) and "values" in mau:
        v = np.asarray(mau["values"], dtype=np.float64)
        scaled = np.concatenate([scaled_counts(v[a:b], r) for a, b in cuts])
        mau["values"] = [int(x) for x in scaled]
        parts = []
        for a, b in cuts:
            iv = mau_interval(float(v[a:b].sum()), s)
            iv["value"] = float(scaled[a:b].sum())
            parts.append(iv)
        doc["mau"] = parts[0] if months is None else parts
    peak = meters.get("peak_ccu")
    if isinstance(peak, dict) and "values" in peak:
        v = np.asarray(peak["values"], dtype=np.float64)
        est = np.round(level_estimate(v, r, block_days=block_days, day_weight=day_weight) if fine is None
                       else minute_peaks(fine, r, v.size, block_days, day_weight))
        parts = [peak_interval(v[a:b], None if groups is None else groups[:, a:b], s, rng,
                               float(est[a:b].max()) if est[a:b].size else 0.0) for a, b in cuts]
        doc["peak_ccu"] = parts[0] if months is None else parts
        peak["values"] = [int(x) for x in est]
        doc["peak_method"] = "mean day" if v.size >= 2 * MINUTES_PER_DAY else "scaled"
        if block_days:
            doc["peak_method"] = f"mean day per {block_days} days (a growing app)"
    channels = meters.get("peak_channels")
    if isinstance(channels, dict) and "values" in channels:
        v = np.asarray(channels["values"], dtype=np.float64)
        est = np.round(level_estimate(v, r, block_days=block_days, day_weight=day_weight))
        if isinstance(peak, dict) and len(peak.get("values", ())) == v.size:
            est = np.maximum(est, np.asarray(peak["values"], dtype=np.float64))
        channels["values"] = [int(x) for x in est]
    scale_platform_meters(meters, r)
    return doc  # bytes and the stored level come from the book, scaled by scale_book


#: Distribution meters whose counts a sampled run multiplies by the ratio.
DISTRIBUTIONS = ("message_sizes_in", "message_sizes_out", "connection_seconds")


def scale_platform_meters(meters: dict, ratio: float) -> None:
    """Scale the message and connection-time meters in place (module doc): per-minute message counts as whole
    numbers, distribution counts, connection minutes and hours by ``ratio``."""
    from sim.meters import numbers, scale_distribution

    for name in ("messages_in", "messages_out", "channel_minutes"):
        m = meters.get(name)
        if isinstance(m, dict) and "values" in m:
            m["values"] = [int(x) for x in scaled_counts(np.asarray(m["values"], dtype=np.float64), ratio)]
    for name in DISTRIBUTIONS:
        m = meters.get(name)
        if isinstance(m, dict) and "items" in m:
            meters[name] = scale_distribution(m, ratio)
    for name in ("connection_minutes", "connection_hours"):
        m = meters.get(name)
        if isinstance(m, dict) and "values" in m:
            m["values"] = numbers(np.asarray(m["values"], dtype=np.float64) * ratio)


def scale_iot_meters(meters: dict, s: Sample, cfg, level: np.ndarray | None, rng: np.random.Generator) -> dict:
    """Scale the IoT fleet's meters in place (element counts become the full fleet's, ``cfg``: the scenario's
    ``iot`` section); return its ``sampling`` section."""
    r = s.ratio
    doc: dict = {"population": s.population, "sample": s.sample, "ratio": r, "confidence": s.confidence}
    full = {"devices": cfg.devices,
            "mqtt_sessions": (cfg.devices if cfg.persistent_sessions else 0) + cfg.extra_mqtt_sessions}
    for name, value in full.items():
        m = meters.get(name)
        if isinstance(m, dict) and "values" in m:
            m["values"] = [value] * len(m["values"])
    if isinstance(meters.get("stored_bytes"), dict):
        m = meters["stored_bytes"]
        m["values"] = [_num(x) for x in np.asarray(m["values"], dtype=np.float64) * r]
    if level is not None and np.asarray(level).size:
        doc["peak_ccu"] = peak_interval(np.asarray(level, dtype=np.float64), None, s, rng)
        meters["peak_ccu"] = int(round(doc["peak_ccu"]["value"]))
    scale_platform_meters(meters, r)
    hours = meters.get("mqtt_session_hours")
    if isinstance(hours, dict) and "values" in hours:
        day_hours, device = getattr(meters, "day_hours", None), getattr(meters, "device_session_hours", None)
        if day_hours is not None and device is not None:  # the full fleet's sessions all day, the sample's others x r
            v = full["mqtt_sessions"] * np.asarray(day_hours) + r * np.asarray(device)
        else:
            v = np.asarray(hours["values"], dtype=np.float64) * r
        hours["values"] = [_num(x) for x in v]
    return doc


def _num(x: float) -> int | float:
    f = float(x)
    return int(f) if f.is_integer() else f


def add_book(into, other) -> None:
    """Add ``other``'s bytes, series and counts into ``into`` (two books of one clock)."""
    for key, v in other.bytes.items():
        into.bytes[key] = into.bytes[key] + v
    for name, v in other.series.items():
        into.series[name] = into.series[name] + v if name in into.series else v
    for name, v in other.daily.items():
        into.daily[name] = into.daily[name] + v if name in into.daily else v
    for name, v in other.counts.items():
        into.counts[name] = into.counts.get(name, 0) + int(v)
