"""The per-app distributions of a fleet file: what ``params:`` draws a scenario key from (``dist:`` picks one).

Each distribution is an inverse CDF applied to one uniform number (:meth:`_Numeric.draw`, :meth:`Choice.index`,
``value(u)``), never a generator of its own: the fleet hands app ``i``'s parameter ``k`` the uniform
:func:`sim.fleets.fleet_file.param_uniform` draws from ``(seed, i, k)``, so app ``i``'s value of key ``k``
depends on ``(seed, i, k)`` only, whatever else the fleet holds (the streams are described in
:mod:`sim.fleets.fleet_file`). ``mean()`` is the closed-form expectation the fleet's expected totals use.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim import yamlio


class _Dist(BaseModel):
    """Base of the distributions: strict like every input model, but ``dist`` must stay a plain field (it is the
    union's discriminator, which pydantic refuses to combine with :class:`sim.strict.StrictModel`'s
    field validator), so booleans for numbers are refused here, before validation."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_number(cls, v: Any) -> Any:
        if isinstance(v, dict):
            by_alias = {(f.alias or k): f for k, f in cls.model_fields.items()}
            for key, value in v.items():
                f = by_alias.get(key) or cls.model_fields.get(key)
                if isinstance(value, bool) and f is not None and yamlio.wants_number(f.annotation):
                    raise ValueError(f"{key}: expected a number, got {str(value).lower()}")
        return v


class _Numeric(_Dist):
    """Clip to [min, max] (optional), then round to an integer (optional): bounds keep draws in the scenario's
    range (users >= 1), rounding makes counts whole."""

    min: float | None = None
    max: float | None = None
    round: bool = False

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) > max ({self.max:g})")
        return self

    def ppf(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def cdf(self, x: float) -> float:  # pragma: no cover
        raise NotImplementedError

    def draw(self, u: np.ndarray | float) -> np.ndarray:
        """Values for uniforms ``u`` in [0, 1): inverse CDF, clipped, rounded."""
        x = np.asarray(self.ppf(np.asarray(u, dtype=float)), dtype=float)
        if self.min is not None or self.max is not None:
            x = np.clip(x, -np.inf if self.min is None else self.min, np.inf if self.max is None else self.max)
        return np.rint(x) if self.round else x

    def value(self, u: float) -> int | float:
        v = float(self.draw(u))
        return int(v) if self.round else v

    def mean(self) -> float:
        """E[clip(X, min, max)] in closed form (before rounding): what the fleet's expected totals use."""
        lo = -math.inf if self.min is None else self.min
        hi = math.inf if self.max is None else self.max
        below = lo * self.cdf(lo) if lo > -math.inf else 0.0
        above = hi * (1.0 - self.cdf(hi)) if hi < math.inf else 0.0
        return below + self._partial(lo, hi) + above

    def _partial(self, lo: float, hi: float) -> float:  # pragma: no cover
        """E[X; lo < X < hi]."""
        raise NotImplementedError


class Lognormal(_Numeric):
    """ln X ~ Normal(mu, sigma); give the median (e^mu) or the mean (e^(mu + sigma^2/2))."""

    dist: Literal["lognormal"]
    median: Annotated[float, Field(gt=0)] | None = None
    mean_: Annotated[float, Field(gt=0)] | None = Field(None, alias="mean")
    sigma: Annotated[float, Field(gt=0, le=10)]

    @model_validator(mode="after")
    def _one_centre(self):
        if (self.median is None) == (self.mean_ is None):
            raise ValueError("give exactly one of median or mean")
        return self

    @property
    def mu(self) -> float:
        return math.log(self.median) if self.median is not None else math.log(self.mean_) - self.sigma ** 2 / 2

    def ppf(self, u):
        from scipy.special import ndtri

        return np.exp(self.mu + self.sigma * ndtri(u))

    def cdf(self, x):
        from scipy.special import ndtr

        return 0.0 if x <= 0 else float(ndtr((math.log(x) - self.mu) / self.sigma))

    def _partial(self, lo, hi):
        from scipy.special import ndtr

        s, mu = self.sigma, self.mu

        def z(x):
            if x <= 0:
                return -math.inf
            return math.inf if x == math.inf else (math.log(x) - mu - s * s) / s

        return math.exp(mu + s * s / 2) * float(ndtr(z(hi)) - ndtr(z(lo)))


class Pareto(_Numeric):
    """Pareto (type I): P(X > x) = (scale / x)^alpha for x >= scale; ``scale`` is x_m, the smallest value."""

    dist: Literal["pareto"]
    alpha: Annotated[float, Field(gt=0, le=100)]
    scale: Annotated[float, Field(gt=0)]

    def ppf(self, u):
        return self.scale * (1.0 - u) ** (-1.0 / self.alpha)

    def cdf(self, x):
        return 0.0 if x <= self.scale else 1.0 - (self.scale / x) ** self.alpha

    def _partial(self, lo, hi):
        a, xm = self.alpha, self.scale
        lo = max(lo, xm)
        if hi <= lo:
            return 0.0
        if hi == math.inf:
            return math.inf if a <= 1 else a * xm ** a * lo ** (1 - a) / (a - 1)
        if a == 1:
            return xm * math.log(hi / lo)
        return a * xm ** a * (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)


class Uniform(_Numeric):
    """Uniform on [low, high)."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g}); a fixed value: dist: fixed")
        return self

    def ppf(self, u):
        return self.low + u * (self.high - self.low)

    def cdf(self, x):
        return min(1.0, max(0.0, (x - self.low) / (self.high - self.low)))

    def _partial(self, lo, hi):
        a, b = max(lo, self.low), min(hi, self.high)
        return 0.0 if b <= a else (b * b - a * a) / (2 * (self.high - self.low))


class Choice(_Dist):
    """One of ``values`` with probabilities ``weights`` (default: equal); values may be any YAML value."""

    dist: Literal["choice"]
    values: list[Any] = Field(min_length=1)
    weights: list[Annotated[float, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _weights(self):
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"{len(self.weights)} weights for {len(self.values)} values")
            if abs(sum(self.weights) - 1.0) > 1e-9:
                raise ValueError(f"weights must sum to 1, got {sum(self.weights):g}")
        return self

    @property
    def probabilities(self) -> np.ndarray:
        n = len(self.values)
        return np.full(n, 1.0 / n) if self.weights is None else np.asarray(self.weights, dtype=float)

    def index(self, u: np.ndarray | float) -> np.ndarray:
        """The chosen value's position for uniforms ``u`` (cumulative weights, searched)."""
        cum = np.cumsum(self.probabilities)
        return np.minimum(np.searchsorted(cum, np.asarray(u, dtype=float), side="right"), len(self.values) - 1)

    def value(self, u: float) -> Any:
        return copy.deepcopy(self.values[int(self.index(u))])

    def mean(self) -> float | None:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.values):
            return float(np.dot(self.probabilities, np.asarray(self.values, dtype=float)))
        return None


class Fixed(_Dist):
    """Always ``value`` (a per-archetype constant written beside the draws)."""

    dist: Literal["fixed"]
    value_: Any = Field(alias="value")

    def value(self, u: float) -> Any:
        return copy.deepcopy(self.value_)

    def mean(self) -> float | None:
        v = self.value_
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


Distribution = Annotated[Lognormal | Pareto | Uniform | Choice | Fixed, Field(discriminator="dist")]
DIST_NAMES = ("lognormal", "pareto", "uniform", "choice", "fixed")
