"""Study files: which scenario, which plans, which design, how many replications, which seed.

A study is a YAML mapping validated like a scenario (unknown keys and bad values are one
:class:`~sim.errors.InputError` naming the file, the field and the problem), read with the project's one
YAML reader (:mod:`sim.yamlio`)::

    scenario: ../scenarios/quick.yaml        # relative to this file, or a shipped name ("quick")
    set: {population.users: 500, simulation.days: 1}
    plans: [mesibo-cloud, mesibo-onprem]     # default: the scenario's own plans
    vary: {population.users: [500, 1000], protocol.tls: ["1.2", "1.3"]}     # full factorial
    # or: sample: {method: lhs | sobol | morris, n: 8, ranges: {push.disabled_fraction: [0, 0.5]}}
    replications: 5                          # or {target: {metric: total, relative_half_width: 0.02}, min: 5, max: 100}
    seed: 1

Why everything is checked here, before a single run: a sweep of hours must not die at point 317 because
``protocol.tls`` was given ``1.4``. :func:`load_study` validates the schema, every varied key against the
scenario schema, every range, and every design point's scenario (:mod:`sim.experiments.design`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim import yamlio
from sim.errors import InputError
from sim.scenario import resolve_scenario_path

#: Metrics summarised for every run (besides each bill line's amount, ``line_<item>``).
METRICS = ("total", "mau", "peak_ccu", "outbound_gb", "stored_gb", "turn_gb", "overhead_share", "connections",
           "full_handshakes", "delivered", "stored", "rejected")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Target(_Strict):
    """Add replications until the CI of ``metric`` is at most ``relative_half_width`` x |mean| (every plan)."""

    metric: str = "total"
    relative_half_width: Annotated[float, Field(gt=0.0, lt=1.0)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in METRICS and not v.startswith("line_"):
            raise ValueError(f"unknown metric {v!r}; one of {', '.join(METRICS)} or line_<item>")
        return v


class Sequential(_Strict):
    target: Target
    min: Annotated[int, Field(ge=2, le=10_000)] = 5
    max: Annotated[int, Field(ge=2, le=10_000)] = 100

    @model_validator(mode="after")
    def _order(self) -> Sequential:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class Sample(_Strict):
    """A sampled design over ``ranges`` (scipy.stats.qmc for lhs; SALib for sobol and morris)."""

    method: Literal["lhs", "sobol", "morris"]
    n: Annotated[int, Field(ge=1, le=100_000)]
    ranges: dict[str, tuple[float, float]]
    levels: Annotated[int, Field(ge=2, le=32)] = 4     # morris grid levels

    @field_validator("ranges")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        if not v:
            raise ValueError("at least one range is needed")
        for key, (lo, hi) in v.items():
            if lo > hi:
                raise ValueError(f"{key}: lo ({lo:g}) > hi ({hi:g})")
            if lo == hi:
                raise ValueError(f"{key}: lo = hi = {lo:g}; a fixed value belongs in set:")
        return v


class Study(_Strict):
    """A resolved study. ``scenario_path`` is absolute; ``source`` is the study file (for messages)."""

    name: str = "study"
    description: str = ""
    scenario: str
    set: dict[str, Any] = Field(default_factory=dict)
    plans: list[str] | None = None
    vary: dict[str, list[Any]] | None = None
    sample: Sample | None = None
    replications: Annotated[int, Field(ge=1, le=100_000)] | Sequential = 1
    seed: Annotated[int, Field(ge=0)] | None = None
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    metrics: list[str] = Field(default_factory=lambda: ["total", "outbound_gb", "peak_ccu"])
    keep_series: bool = False
    # filled by load_study, not written by users
    source: str = Field("<study>", exclude=True)
    scenario_path: str = Field("", exclude=True)

    @field_validator("vary")
    @classmethod
    def _vary(cls, v: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if v is not None:
            if not v:
                raise ValueError("at least one key to vary is needed")
            for key, values in v.items():
                if not values:
                    raise ValueError(f"{key}: no values")
                if len({repr(x) for x in values}) != len(values):
                    raise ValueError(f"{key}: a value is listed twice")
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for m in v:
            Target._known(m)
        return v

    @model_validator(mode="after")
    def _one_design(self) -> Study:
        if self.vary is not None and self.sample is not None:
            raise ValueError("give vary: or sample:, not both")
        return self

    @property
    def design_keys(self) -> list[str]:
        if self.vary is not None:
            return list(self.vary)
        if self.sample is not None:
            return list(self.sample.ranges)
        return []

    def document(self) -> dict:
        """The study as written (after --set), JSON-ready, plus the resolved scenario path."""
        return self.model_dump(mode="json") | {"scenario_path": self.scenario_path, "source": self.source}


#: Study keys whose sub-keys are dotted scenario keys (``set.population.users`` is one key of ``set``).
_SCENARIO_KEYED = (("set",), ("vary",), ("sample", "ranges"))


def apply_study_sets(raw: dict, sets: list[str]) -> dict:
    """``--set key=value`` on a study: ``replications=3``, ``seed=7``, ``set.population.users=300``,
    ``vary.protocol.tls=[1.2, 1.3]``, ``sample.ranges.push.disabled_fraction=[0, 0.3]``. Unknown keys are
    left for the schema to name."""
    out = copy.deepcopy(raw)
    for item in sets:
        path, parts, text = yamlio.split_set(item)
        value = yamlio.load(text) if text.strip() else None
        node = out
        for prefix in _SCENARIO_KEYED:
            if tuple(parts[: len(prefix)]) == prefix and len(parts) > len(prefix):
                for part in prefix:
                    if not isinstance(node.get(part), dict):
                        node[part] = {}
                    node = node[part]
                node[".".join(parts[len(prefix):])] = value
                break
        else:
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[parts[-1]] = value
    return out


def load_study(path: str | Path, sets: list[str] | None = None) -> Study:
    """Read, override (``sets``) and validate a study file, its scenario, plans and every design point."""
    from sim.experiments.design import check_design

    p = Path(path)
    source = str(p)
    raw = yamlio.read_mapping(p, "study file", "a study must be a YAML mapping")
    raw = apply_study_sets(raw, sets or [])
    study = validate_study(raw, source)
    study.scenario_path = str(_scenario_path(study.scenario, p.parent, source))
    check_design(study)
    return study


def validate_study(raw: dict, source: str = "<study>") -> Study:
    for key in ("source", "scenario_path"):
        if key in raw:
            raise InputError(source, key, "unknown key")
    yamlio.check_numbers(Study, raw, source)
    try:
        study = Study.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("int", "Sequential", "constrained")))
        msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(err["type"], err["msg"])
        raise InputError(source, loc or None, msg) from None
    study.source = source
    return study


def _scenario_path(name: str, base: Path, source: str) -> Path:
    """Relative to the study file first, then a shipped scenario name (``quick``)."""
    cand = base / name
    if cand.is_file():
        return cand.resolve()
    try:
        return resolve_scenario_path(name).resolve()
    except InputError:
        raise InputError(source, "scenario", f"{name!r}: no such scenario file (relative to {base} or shipped)") from None
