"""Design points: a full factorial over listed values (``vary:``) or a sample over ranges (``sample:``).

A design point is a set of scenario-key values on top of the study's fixed ``set:`` overrides. Points are
labelled ``p000``, ``p001`` ... in design order; the label is only a name: what a run *is* (and the key it
is stored under for resume) is its resolved scenario, plans, seed and replication (:mod:`.store`).

Samples: ``lhs`` uses :class:`scipy.stats.qmc.LatinHypercube` seeded with the study seed (the same study
gives the same points); ``sobol`` uses SALib's Saltelli/Sobol' sampler (``n`` base samples, ``n x (d + 2)``
points, no second-order indices) and ``morris`` SALib's trajectories (``n`` trajectories, ``n x (d + 1)``
points), because :mod:`.sensitivity` must analyse exactly the matrix SALib sampled. A key whose scenario
field is an integer (``population.users``) is rounded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim import yamlio
from sim.errors import InputError
from sim.scenario import Scenario, apply_sets, scenario_dict, validate_scenario


@dataclass
class Point:
    id: str
    values: dict[str, Any]
    scenario: Scenario = field(repr=False)


def base_raw(study) -> dict:
    """The study's scenario file with the fixed ``set:`` overrides applied (not yet validated)."""
    from pathlib import Path

    p = Path(study.scenario_path)
    raw = yamlio.read_mapping(p, "scenario file", "a scenario must be a YAML mapping")
    try:
        return apply_sets(raw, [_set_item(k, v) for k, v in study.set.items()], str(p))
    except InputError as exc:
        raise InputError(study.source, f"set.{exc.field}", exc.problem) from None


def _set_item(key: str, value: Any) -> str:
    import json

    return f"{key}={json.dumps(value)}"  # JSON scalars and lists are YAML flow values


def problem(study) -> dict:
    """The SALib problem of a sampled design."""
    keys = list(study.sample.ranges)
    return {"num_vars": len(keys), "names": keys, "bounds": [list(study.sample.ranges[k]) for k in keys]}


def design_matrix(study) -> list[dict[str, Any]]:
    """The value assignments of every point, in design order (``[{}]``: a single point, no design)."""
    if study.vary is not None:
        keys = list(study.vary)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*study.vary.values())]
    if study.sample is None:
        return [{}]
    s = study.sample
    keys = list(s.ranges)
    seed = 0 if study.seed is None else study.seed
    if s.method == "lhs":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(keys), seed=seed).random(s.n)
        x = qmc.scale(unit, [s.ranges[k][0] for k in keys], [s.ranges[k][1] for k in keys])
    elif s.method == "sobol":
        from SALib.sample import sobol

        x = sobol.sample(problem(study), s.n, calc_second_order=False, scramble=True, seed=seed)
    else:
        from SALib.sample import morris

        x = morris.sample(problem(study), s.n, num_levels=s.levels, seed=seed)
    return [{k: float(v) for k, v in zip(keys, row, strict=True)} for row in np.asarray(x)]


def _lookup(doc: dict, key: str) -> Any:
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def points(study) -> list[Point]:
    """Every design point with its validated scenario; any bad key or value is an InputError naming the study."""
    raw = base_raw(study)
    try:
        base = validate_scenario(raw, study.scenario_path)
    except InputError as exc:
        raise InputError(study.source, f"set.{exc.field}" if exc.field else "scenario", exc.problem) from None
    base_doc = scenario_dict(base)
    integer = {k for k in study.design_keys
               if isinstance(_lookup(base_doc, k), int) and not isinstance(_lookup(base_doc, k), bool)}
    field_name = "vary" if study.vary is not None else "sample.ranges"
    for key in study.design_keys:  # the key must exist in the scenario schema
        try:
            apply_sets(raw, [f"{key}=0"], study.source)
        except InputError as exc:
            raise InputError(study.source, f"{field_name}.{key}", f"not a scenario key: {exc.problem}") from None
    matrix = design_matrix(study)
    width = max(3, len(str(len(matrix) - 1)))
    out = []
    for i, values in enumerate(matrix):
        values = {k: (int(round(v)) if k in integer and isinstance(v, float) else v) for k, v in values.items()}
        pid = f"p{i:0{width}d}"
        try:
            sc = validate_scenario(apply_sets(raw, [_set_item(k, v) for k, v in values.items()], study.source),
                                   study.scenario_path)
        except InputError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise InputError(study.source, f"{field_name}", f"design point {pid} ({shown}): "
                             f"{exc.field or 'scenario'}: {exc.problem}") from None
        out.append(Point(pid, values, sc))
    return out


def check_design(study) -> None:
    """Validate every point now (fail before anything runs or is written); also the plans."""
    pts = points(study)
    load_plans(study, pts[0].scenario)


def load_plans(study, scenario: Scenario) -> list:
    from sim.pricing.plan import load_plan

    names = study.plans if study.plans is not None else scenario.plans
    if not names:
        raise InputError(study.source, "plans", "no plans: list some in the study or in its scenario")
    plans = []
    for i, name in enumerate(names):
        from pathlib import Path

        local = Path(study.source).parent / name
        try:
            plans.append(load_plan(local if local.is_file() else name))
        except InputError as exc:
            raise InputError(study.source, f"plans.{i}", f"{name!r}: {exc.problem}") from None
    return plans
