"""Population growth over a multi-month run: who is present when, drawn user by user.

What it models: ``population.users`` (U0) users are present at the start; the number present then follows a
target curve U(t) (t in months from the start, continuous within a month) while a share of them leaves
every month (``churn``) and new users join. The world simulates a **pool**: everyone who is ever present
in the run, each with a presence window ``[join, leave)`` outside which the user does nothing.

The curves (:func:`target`), with g = ln(1 + monthly_rate):

- ``rate``: U(t) = U0 (1 + r)^t = U0 e^{g t}.
- ``logistic``: U(t) = K / (1 + (K/U0 - 1) e^{-g t}), K = ``cap`` > U0. Choice: r' = g = ln(1 + r), so far
  below the cap (U << K) the app grows like ``rate`` with the same ``monthly_rate``; U(0) = U0, U -> K.
- ``list``: the users present at each month start, linear in between; ``users[0]`` must equal U0 (both are
  the users present at the start: :meth:`Growth.check_against` refuses a mismatch rather than silently
  preferring one). With ``months`` values the last month stays at the last value; with ``months + 1`` the
  last value is the end of the period.

Arrivals and departures (:func:`pool`). Lifetimes are exponential with hazard lambda = -ln(1 - churn) per
month (a share ``churn`` of the users present at a month start has left by its end, new arrivals aside).
For the expected number present P to follow U exactly (dP/dt = a - h P, P(0) = U0) the gross arrival rate
is a(t) = U'(t) + lambda U(t). When the curve falls faster than churn alone (a < 0: a decline, a ``list``
that drops) no one can arrive and the users present must leave faster: there a = 0 and the hazard is
h(t) = -U'/U > lambda, so P still follows U. The pool holds n = U0 + round(A(T)) users, where
A(T) = integral of a over [0, T], T = months; without decline A(T) = U(T) - U0 + lambda * integral of U
(closed forms per model, exact on the grid). A and the cumulative hazard H are tabulated on a grid of
``STEPS_PER_MONTH`` (1024) steps per month (~43 min), so month boundaries are grid points and the
piecewise-linear ``list`` curve is integrated exactly; within a step arrivals are uniform and the hazard
constant, which is what :func:`presence` draws and :func:`expected_present` computes exactly.

Why every user is drawn the same way (:func:`presence`): a sampled run simulates the first N users of the
pool and scales up, so the first N must be a random subsample. Each pool user is therefore i.i.d. given
the model: from its own uniform ``u_join`` it is an initial user (present before the start, ``join`` = -inf)
with probability U0 / n, else it joins at A^{-1}(v A(T)) (v the uniform rescaled to the rest of [0, 1):
one inverse CDF over the mixture); from ``u_leave`` it gets E = -ln(1 - u_leave) ~ Exp(1) and leaves when
the cumulative hazard since its join (since 0 for initial users: memoryless) reaches E, i.e. at
join + E / lambda under constant churn, never (+inf) when lambda = 0 and the curve does not fall. Draws
are element-wise (:func:`uniforms` uses two named streams of :class:`sim.rng.Streams`), so the first N
users' windows do not depend on how many are drawn.

Months are calendar months of different lengths in seconds: time in months maps to seconds piecewise
linearly over the month boundaries (:func:`months_to_seconds`, :func:`month_lengths_s`), so t = 1.5 in a
run starting on 1 November is 16 December 12:00. Beyond the last month given, the Gregorian mean month
(``AVERAGE_MONTH_S``) is used (leave times after the run), and users leave at the churn rate only.

Monthly active users (:func:`expected_active_in_month`): a user counts in month m when its window
intersects [m, m + 1): present at the month start, or joining during the month. So the expected count is
P(m) + arrivals in month m (times ``population.monthly_active_fraction`` for the MAU).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from sim.rng import Streams
from sim.strict import StrictModel

#: Grid steps per month for the arrival CDF and the cumulative hazard (a power of two: exact grid times).
STEPS_PER_MONTH = 1024
#: Mean Gregorian month (365.2425 / 12 days) in seconds, for times beyond the months given.
AVERAGE_MONTH_S = 365.2425 / 12 * 86_400
#: Cap on one grid step's hazard where the curve reaches 0 users (everyone present leaves: e^-60 ~ 1e-26).
MAX_STEP_HAZARD = 60.0
#: Largest pool accepted (everyone ever present in the run).
MAX_POOL_USERS = 1_000_000_000

_MODEL_FIELDS = {"rate": ("monthly_rate",), "logistic": ("monthly_rate", "cap"), "list": ("users",)}


class Growth(StrictModel):
    """How the number of users present changes over a multi-month run (sim/world/growth.py)."""

    model_config = ConfigDict(validate_default=True)

    model: Literal["rate", "logistic", "list"] = Field(
        description="Curve of the users present U(t), t in months from the start (continuous within a month), "
        "U(0) = population.users: 'rate' U0 (1 + monthly_rate)^t; 'logistic' an S-curve from U0 towards cap; "
        "'list' the users present at each month start, linear in between.",
    )
    monthly_rate: Annotated[float, Field(gt=-1.0)] | None = Field(
        None, description="rate: monthly growth of the users present (0.1 = +10 %/month; 500 to 50,000 in 12 "
        "months is 100^(1/12) - 1 = 0.4678; negative: a decline). logistic (> 0): the intrinsic rate, "
        "U(t) = cap / (1 + (cap/U0 - 1) (1 + monthly_rate)^-t), so far below the cap it grows as 'rate' does.",
    )
    cap: Annotated[int, Field(ge=1)] | None = Field(
        None, description="logistic: carrying capacity, the users present in the long run (more than population.users).",
    )
    users: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="list: users present at the start of each month, the first equal to population.users; "
        "simulation.months values (the last month stays at the last value) or months + 1 (the last is the end "
        "of the period); linear in between.",
    )
    churn: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Monthly share of the users present who leave (0 <= churn < 1): exponential lifetimes, "
        "hazard -ln(1 - churn) per month; arrivals replace them, so the users present still follow the curve "
        "(more users pass through the app: the pool is larger). Where the curve falls faster than churn, no "
        "one joins and users leave at the rate the curve falls (assumption: a 0.0 default, no churn data).",
    )
    activity: Annotated[float, Field(gt=-1.0)] | None = Field(
        None, description="Monthly growth of per-user activity: sessions and messages per user multiply by "
        "(1 + activity)^t (null: constant).",
    )

    @field_validator("users", mode="before")
    @classmethod
    def _no_bool_users(cls, v: Any) -> Any:
        if isinstance(v, list | tuple) and any(isinstance(x, bool) for x in v):
            raise ValueError("users must be whole numbers of users, got a boolean")
        return v

    @model_validator(mode="after")
    def _fields_for_model(self) -> Growth:
        need = _MODEL_FIELDS[self.model]
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"model {self.model!r} needs {name}")
        for name in ("monthly_rate", "cap", "users"):
            if name not in need and getattr(self, name) is not None:
                owners = " and ".join(repr(m) for m, fs in _MODEL_FIELDS.items() if name in fs)
                raise ValueError(f"{name} applies to model {owners} only, not to {self.model!r}")
        if self.model == "logistic" and self.monthly_rate <= 0:
            raise ValueError(f"a logistic monthly_rate must be positive, got {self.monthly_rate}")
        if self.model == "list" and not self.users:
            raise ValueError("users needs at least one value (the users present at the start)")
        return self

    def check_against(self, users0: int, months: int) -> None:
        """Raise ``ValueError`` (one line) unless this growth fits ``population.users`` = ``users0`` and
        ``simulation.months`` = ``months`` (what a field validator cannot see); also refuses a pool larger
        than ``MAX_POOL_USERS`` or not finite."""
        _check(self, users0, months)
        _build(self, users0, months)


@dataclass(frozen=True, eq=False)
class Pool:
    """Everyone ever present in a run of ``months`` months, and the tables their windows are drawn from."""

    growth: Growth | None
    users0: int  # users present at the start (population.users)
    months: int  # T, the span in months
    n: int  # pool size: users0 + round(arrivals)
    arrivals: float  # A(T), the expected number of arrivals (unrounded)
    churn_rate: float  # lambda = -ln(1 - churn), per month
    t: np.ndarray  # grid, months: k / STEPS_PER_MONTH, k = 0 .. months * STEPS_PER_MONTH
    cum_arrivals: np.ndarray  # A on the grid (A[0] = 0, A[-1] = arrivals)
    cum_hazard: np.ndarray  # H on the grid (H[0] = 0)
    constant_hazard: bool  # H = lambda t everywhere (the curve never falls faster than churn)

    @property
    def initial_fraction(self) -> float:
        """Probability that a pool user is present at the start (users0 / n)."""
        return self.users0 / self.n

    @cached_property
    def present_on_grid(self) -> np.ndarray:
        """Expected pool users present at each grid time (exact for what :func:`presence` draws)."""
        return _present_on_grid(self)


def _check(growth: Growth | None, users0: int, months: int) -> None:
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months < 1:
        raise ValueError(f"simulation.months must be a whole number of at least 1, got {months!r}")
    if isinstance(users0, bool) or not isinstance(users0, int | np.integer) or users0 < 1:
        raise ValueError(f"population.users must be a whole number of at least 1, got {users0!r}")
    if growth is None:
        return
    if growth.model == "logistic" and growth.cap <= users0:
        raise ValueError(f"growth.cap {growth.cap:,} must exceed population.users {users0:,} "
                         "(a logistic curve grows from the users at the start towards its cap)")
    if growth.model == "list":
        if len(growth.users) not in (months, months + 1):
            raise ValueError(f"growth.users has {len(growth.users)} values; simulation.months {months} needs "
                             f"{months} (one per month start) or {months + 1} (and the end of the period)")
        if growth.users[0] != users0:
            raise ValueError(f"growth.users[0] {growth.users[0]:,} must equal population.users {users0:,} "
                             "(both are the users present at the start)")


def _rate(growth: Growth) -> float:
    return math.log1p(growth.monthly_rate)


def target(growth: Growth | None, users0: int, t_months: np.ndarray | float) -> np.ndarray:
    """U(t): the users present at ``t_months`` (months from the start, continuous; t >= 0). No growth
    (``None``): ``users0`` throughout. ``list``: flat before 0 and after its last value."""
    t = np.asarray(t_months, dtype=np.float64)
    if growth is None:
        return np.full(t.shape, float(users0))
    with np.errstate(over="ignore"):
        if growth.model == "rate":
            return users0 * np.exp(_rate(growth) * t)
        if growth.model == "logistic":
            k = float(growth.cap)
            return k / (1.0 + (k / users0 - 1.0) * np.exp(-_rate(growth) * t))
    if growth.users[0] != users0:
        raise ValueError(f"growth.users[0] {growth.users[0]:,} must equal population.users {users0:,} "
                         "(both are the users present at the start)")
    y = np.asarray(growth.users, dtype=np.float64)
    return np.interp(t, np.arange(len(y), dtype=np.float64), y)


def _integral(growth: Growth | None, users0: int, t: np.ndarray) -> np.ndarray:
    """The integral of U over [0, t] (closed forms; t >= 0)."""
    if growth is None:
        return users0 * t
    with np.errstate(over="ignore"):
        if growth.model == "rate":
            g = _rate(growth)
            return users0 * t if g == 0 else users0 * np.expm1(g * t) / g
        if growth.model == "logistic":
            g, k = _rate(growth), float(growth.cap)
            c = k / users0 - 1.0
            return k * t + k / g * (np.log1p(c * np.exp(-g * t)) - math.log1p(c))
    y = np.asarray(growth.users, dtype=np.float64)
    slope = np.append(np.diff(y), 0.0)  # flat after the last value
    at_knots = np.concatenate([[0.0], np.cumsum(y + 0.5 * slope)])
    seg = np.clip(np.floor(t).astype(np.int64), 0, len(y) - 1)
    dt = t - seg
    return at_knots[seg] + y[seg] * dt + 0.5 * slope[seg] * dt * dt


def _build(growth: Growth | None, users0: int, months: int) -> Pool:
    steps = int(months) * STEPS_PER_MONTH
    t = np.arange(steps + 1, dtype=np.float64) / STEPS_PER_MONTH
    lam = 0.0 if growth is None else -math.log1p(-growth.churn)
    u = target(growth, users0, t)
    integral = _integral(growth, users0, t)
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(integral))):
        raise ValueError(f"growth overflows over {months} months (more than {MAX_POOL_USERS:,} users): "
                         "lower growth.monthly_rate")
    d_arr = np.diff(u) + lam * np.diff(integral)
    step = 1.0 / STEPS_PER_MONTH
    d_haz = np.full(steps, lam * step)
    falls = d_arr < 0  # the curve falls faster than churn: no arrivals, users leave as fast as it falls
    if falls.any():
        d_arr[falls] = 0.0
        with np.errstate(divide="ignore"):
            ratio = np.log(u[:-1][falls] / u[1:][falls])
        d_haz[falls] = np.clip(ratio, lam * step, MAX_STEP_HAZARD)
    cum_a = np.concatenate([[0.0], np.cumsum(d_arr)])
    cum_h = np.concatenate([[0.0], np.cumsum(d_haz)])
    arrivals = float(cum_a[-1])
    if not arrivals <= MAX_POOL_USERS:
        raise ValueError(f"growth brings {arrivals:,.0f} users into the pool over {months} months (more than "
                         f"{MAX_POOL_USERS:,}): lower growth.monthly_rate or churn")
    return Pool(growth, int(users0), int(months), int(users0) + round(arrivals), arrivals, lam, t, cum_a, cum_h,
                not falls.any())


def pool(growth: Growth | None, users0: int, months: int) -> Pool:
    """The pool of a run of ``months`` months starting with ``users0`` present (``ValueError`` when they do
    not fit: :meth:`Growth.check_against`). ``growth`` None: the ``users0`` users, present throughout."""
    _check(growth, users0, months)
    return _build(growth, users0, months)


def uniforms(streams: Streams, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-user uniforms (``u_join``, ``u_leave``) of the first ``n`` pool users, from their own named
    streams (element-wise: a larger ``n`` starts with the same values)."""
    return (streams.generator("population", "growth_join").random(n),
            streams.generator("population", "growth_leave").random(n))


def presence(pool: Pool, u_join: np.ndarray, u_leave: np.ndarray,
             month_lengths_s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Presence windows ``[join_s, leave_s)`` in seconds from the start, one per pool user (index order),
    from per-user uniforms in [0, 1) (:func:`uniforms`); any number of users (the first N of the pool).

    ``join_s`` is -inf for a user present before the start, ``leave_s`` +inf for one who never leaves;
    ``leave_s > join_s`` always (a zero lifetime, probability 2^-53, is made one ulp). ``month_lengths_s``:
    the length of each month of the run in seconds (:func:`month_lengths_s`), at least ``pool.months``."""
    uj = np.asarray(u_join, dtype=np.float64)
    ul = np.asarray(u_leave, dtype=np.float64)
    if uj.shape != ul.shape or uj.ndim != 1:
        raise ValueError(f"u_join and u_leave must be 1-d arrays of one length, got shapes {uj.shape} and {ul.shape}")
    if uj.size and not (uj.min() >= 0 and uj.max() < 1 and ul.min() >= 0 and ul.max() < 1):
        raise ValueError("uniforms must lie in [0, 1)")
    if len(month_lengths_s) < pool.months:
        raise ValueError(f"month_lengths_s has {len(month_lengths_s)} months; the pool spans {pool.months}")
    p0 = pool.initial_fraction
    join = np.full(uj.shape, -np.inf)
    arriving = uj >= p0
    if arriving.any():
        a = (uj[arriving] - p0) / (1.0 - p0) * pool.arrivals  # in [0, A(T))
        ca = pool.cum_arrivals
        k = np.clip(np.searchsorted(ca, a, side="right") - 1, 0, len(ca) - 2)
        frac = np.clip((a - ca[k]) / (ca[k + 1] - ca[k]), 0.0, 1.0)
        join[arriving] = np.minimum((k + frac) / STEPS_PER_MONTH, np.nextafter(float(pool.months), 0.0))
    e = -np.log1p(-ul)  # Exp(1)
    lam = pool.churn_rate
    start = np.maximum(join, 0.0)  # initial users: their lifetime runs from 0 (memoryless)
    if pool.constant_hazard:
        with np.errstate(divide="ignore"):
            leave = start + e / lam if lam > 0 else np.full(uj.shape, np.inf)
    else:
        ch, t = pool.cum_hazard, pool.t
        h_goal = np.interp(start, t, ch) + e
        leave = np.empty(uj.shape)
        inside = h_goal <= ch[-1]
        k = np.searchsorted(ch, h_goal[inside], side="left")  # first H[k] >= goal
        km = np.maximum(k - 1, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(k > 0, (h_goal[inside] - ch[km]) / (ch[np.maximum(k, 1)] - ch[km]), 0.0)
        leave[inside] = np.where(k > 0, (km + np.clip(frac, 0.0, 1.0)) / STEPS_PER_MONTH, t[0])
        beyond = ~inside
        with np.errstate(divide="ignore"):
            leave[beyond] = pool.months + (h_goal[beyond] - ch[-1]) / lam if lam > 0 else np.inf
        leave = np.maximum(leave, start)
    join_s = months_to_seconds(join, month_lengths_s)
    leave_s = np.maximum(months_to_seconds(leave, month_lengths_s), np.nextafter(join_s, np.inf))
    return join_s, leave_s


def _present_on_grid(pool: Pool) -> np.ndarray:
    d_a = np.diff(pool.cum_arrivals) * (round(pool.arrivals) / pool.arrivals if pool.arrivals > 0 else 0.0)
    d_h = np.diff(pool.cum_hazard)
    keep = np.exp(-d_h)
    # arrivals uniform within a step with constant hazard: the share still present at its end
    survive = np.where(d_h > 1e-12, -np.expm1(-d_h) / np.where(d_h > 1e-12, d_h, 1.0), 1.0 - 0.5 * d_h)
    gain = d_a * survive
    late = np.empty(len(pool.t))
    r = 0.0
    late[0] = 0.0
    for i, (kp, g) in enumerate(zip(keep.tolist(), gain.tolist(), strict=True), start=1):
        r = r * kp + g
        late[i] = r
    return pool.users0 * np.exp(-pool.cum_hazard) + late


def expected_present(pool: Pool, t_months: np.ndarray | float) -> np.ndarray:
    """Expected number of pool users present at ``t_months`` (join <= t < leave): U(t) up to the rounding
    of the pool size (< 0.5 user) and the grid. Before the start: ``users0``; after the pool's span: decays
    at the churn rate (no one arrives)."""
    t = np.asarray(t_months, dtype=np.float64)
    out = np.interp(np.clip(t, 0.0, pool.months), pool.t, pool.present_on_grid)
    after = t > pool.months
    out = np.where(after, out * np.exp(-pool.churn_rate * np.where(after, t - pool.months, 0.0)), out)
    return np.where(t < 0, float(pool.users0), out)


def expected_active_in_month(pool: Pool, m: np.ndarray | int | None = None) -> np.ndarray:
    """Expected number of pool users whose window intersects month ``m`` ([m, m + 1), default every month
    0 .. months - 1): present at its start plus those joining during it, P(m) + A(m + 1) - A(m) (scaled to
    the rounded pool). MAU of month m = this times ``population.monthly_active_fraction``."""
    ms = np.arange(pool.months) if m is None else np.asarray(m, dtype=np.int64)
    if ms.size and (ms.min() < 0 or ms.max() >= pool.months):
        raise ValueError(f"months must lie in 0 .. {pool.months - 1}")
    scale = round(pool.arrivals) / pool.arrivals if pool.arrivals > 0 else 0.0
    ca = pool.cum_arrivals
    joined = (ca[(ms + 1) * STEPS_PER_MONTH] - ca[ms * STEPS_PER_MONTH]) * scale
    return pool.present_on_grid[ms * STEPS_PER_MONTH] + joined


def activity_multiplier(growth: Growth | None, t_months: np.ndarray | float) -> np.ndarray:
    """Per-user activity multiplier at ``t_months``: (1 + activity)^t; ones without growth or activity."""
    t = np.asarray(t_months, dtype=np.float64)
    if growth is None or growth.activity is None:
        return np.ones(t.shape)
    return np.exp(math.log1p(growth.activity) * t)


# -- calendar months ------------------------------------------------------------------------------------------


def _add_months(d: datetime, k: int) -> datetime:
    y, m = divmod(d.month - 1 + k, 12)
    year, month = d.year + y, m + 1
    return d.replace(year=year, month=month, day=min(d.day, calendar.monthrange(year, month)[1]))


def month_lengths_s(start: datetime, months: int) -> list[float]:
    """Lengths in seconds of the ``months`` calendar months from ``start`` (month i runs from start + i
    months to start + i + 1 months, the day clamped to the month's last: 31 Jan, 28 Feb, 31 Mar); wall
    clock in ``start``'s zone (naive: UTC), lengths measured in UTC, so a DST change shows."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    edges = [_add_months(start, i).astimezone(UTC) for i in range(months + 1)]
    return [(b - a).total_seconds() for a, b in zip(edges, edges[1:], strict=False)]


def months_to_seconds(t_months: np.ndarray | float, month_lengths_s: Sequence[float]) -> np.ndarray:
    """Months from the start -> seconds, linear within each month; the mean month beyond the months given
    (and the first month's length before the start); +-inf stay +-inf."""
    lengths = np.asarray(month_lengths_s, dtype=np.float64)
    if lengths.size == 0 or lengths.min() <= 0:
        raise ValueError("month_lengths_s needs at least one positive month length")
    edges = np.concatenate([[0.0], np.cumsum(lengths)])
    t = np.asarray(t_months, dtype=np.float64)
    n = len(lengths)
    finite = np.where(np.isfinite(t), t, 0.0)
    i = np.clip(np.floor(finite).astype(np.int64), 0, n - 1)
    inside = edges[i] + (finite - i) * lengths[i]
    out = np.where(finite > n, edges[-1] + (finite - n) * AVERAGE_MONTH_S, inside)
    out = np.where(finite < 0, finite * lengths[0], out)
    return np.where(np.isfinite(t), out, t)


def seconds_to_months(t_s: np.ndarray | float, month_lengths_s: Sequence[float]) -> np.ndarray:
    """The inverse of :func:`months_to_seconds`."""
    lengths = np.asarray(month_lengths_s, dtype=np.float64)
    if lengths.size == 0 or lengths.min() <= 0:
        raise ValueError("month_lengths_s needs at least one positive month length")
    edges = np.concatenate([[0.0], np.cumsum(lengths)])
    s = np.asarray(t_s, dtype=np.float64)
    n = len(lengths)
    finite = np.where(np.isfinite(s), s, 0.0)
    i = np.clip(np.searchsorted(edges, finite, side="right") - 1, 0, n - 1)
    inside = i + (finite - edges[i]) / lengths[i]
    out = np.where(finite > edges[-1], n + (finite - edges[-1]) / AVERAGE_MONTH_S, inside)
    out = np.where(finite < 0, finite / lengths[0], out)
    return np.where(np.isfinite(s), out, s)
