"""``sim run``: load a scenario, simulate it, print a summary, price it, write the outputs.

Bad input (scenario file, ``--set``, plan names) raises :class:`sim.errors.InputError` before
anything is simulated or written. Pricing uses the plans listed in the scenario; the seed's payload
-only calculator (``sim.pricing.quote``) is printed beside each bill so the cost of overheads is visible.

``--out`` is checked before simulating (:func:`check_out_dir`), and so is the memory the run needs
(:func:`sim.memory.check_memory`). The files are written into a fresh directory beside the target and
moved into place at the end (:func:`staged_dir`): a failure or Ctrl-C leaves the previous complete
result or nothing, never half of one, and files of an earlier run never sit beside new ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from sim.errors import InputError
from sim.scenario import Scenario, load_scenario
from sim.simulate import RunResult, simulate
from sim.summary import enforcement_lines, headroom_lines, summary_lines


def _load_plans(names: list[str], source: str):
    """Load every plan named by the scenario (fails fast, before the run)."""
    from sim.pricing.plan import load_plan

    plans = []
    for i, name in enumerate(names):
        try:
            plans.append(load_plan(name))
        except InputError as exc:
            raise InputError(source, f"plans.{i}", f"{name!r}: {exc.problem}") from None
    return plans


def run_command(scenario_path: str, sets: list[str] | None, seed: int | None, out_dir: str | None,
                progress: bool = True, max_memory: str | int | None = None) -> int:
    """Load + validate, simulate under each listed plan's limits, summarise, price, write. Returns the exit status.

    After the bills, each free plan's headroom is printed (:func:`sim.summary.headroom_lines`) and, with ``--out``,
    written to ``headroom.json`` (:func:`headroom_document`; only when a listed plan has hard limits).

    Every input (scenario, overrides, plans, ``--out``, the memory the run needs) is checked before anything is
    simulated or written; the outputs appear whole or not at all (:func:`staged_dir`).
    """
    from sim.comparison import comparison_table, run_plans
    from sim.memory import check_memory

    sc: Scenario = load_scenario(scenario_path, sets or [], seed)
    plans = _load_plans(sc.plans, str(scenario_path))
    if out_dir:
        check_out_dir(out_dir)
    check_memory(sc, str(scenario_path), max_memory)
    if sc.simulation.months:
        from sim.months.run import switch_targets

        try:
            switch_targets(sc, plans)
        except InputError as exc:
            raise InputError(str(scenario_path), exc.field, exc.problem) from None
        return months_command(sc, plans, seed, out_dir, progress)
    if plans:
        result, outcomes = run_plans(sc, plans, seed=seed, progress=progress)
    else:
        result, outcomes = simulate(sc, seed=seed, progress=progress), []
    if not result.ok or any(o is None for o in outcomes):
        print(f"simulation failed: {result.error}", file=sys.stderr)  # a bug, not bad input: keep the traceback
        return 1  # and leave --out as it was: a previous complete result, or nothing
    for line in summary_lines(result):
        print(line)
    if outcomes:
        print()
        print(comparison_table(outcomes))
        print()
        for o in outcomes:
            print(f"plan {o.plan}: bill {o.bill.total} {o.bill.currency}   calculator (payload only, no minimum) "
                  f"{o.quote.total} {o.quote.currency}" + ("   [limits acted: own run]" if o.enforced else ""))
            for line in enforcement_lines(o.enforcement):
                print(f"    {line}")
    headrooms = free_plan_headrooms(outcomes, plans)
    for _, h in headrooms:
        print()
        for line in headroom_lines(h):
            print(line)
    if out_dir:
        with staged_dir(out_dir) as tmp:
            write_outputs(result, outcomes, tmp)
            if headrooms:
                _write_json(tmp / "headroom.json", headroom_document(headrooms))
        print(f"wrote {out_dir}")
    return 0


def months_command(sc: Scenario, plans: list, seed: int | None, out_dir: str | None, progress: bool) -> int:
    """`sim run` on a scenario of ``simulation.months``: each plan's months (sim/months/run.py), the months table,
    each account's ledger; with ``--out``: months.csv, months.png, bills.json (per plan, per month), accounts.json,
    usage.json (the unrestricted run, every month), run.json, timeseries.csv."""
    from sim.months.report import table
    from sim.months.run import run_months

    mr = run_months(sc, plans, seed=seed, progress=progress)
    if not mr.ok:
        print(f"simulation failed: {mr.error}", file=sys.stderr)
        return 1
    print(f"{sc.name}: {sc.simulation.months} months from {mr.bounds[0].date()}, {len(plans)} plans")
    if mr.plans:
        print(table(mr, sc))
    for line in account_lines(mr):
        print(line)
    if out_dir:
        with staged_dir(out_dir) as tmp:
            write_months_outputs(mr, sc, tmp)
        print(f"wrote {out_dir}")
    return 0


def account_lines(mr) -> list[str]:
    """Per plan: the switch, each PAYG month's credits, notices and throttling, the invoice timeline's downgrades."""
    lines = []
    for pm in mr.plans:
        if pm.switch is not None:
            lines.append(f"{pm.plan}: switched to {pm.switch.to} ({pm.switch.trigger}) at {pm.switch.at.isoformat()}, "
                         f"irreversibly; billed under it from {mr.bounds[pm.switch.cycle].strftime('%Y-%m')}")
        for c in pm.ledger:
            notes = ", ".join(f"{float(n.threshold):.0%} {n.at:%m-%d %H:%M}" for n in c.notifications)
            lines.append(f"{pm.plan} {c.start:%Y-%m}: credits {c.opening} + top-ups "
                         f"{sum((t.amount for t in c.top_ups), 0)} - {c.deducted} = {c.closing}"
                         + (f"; notices {notes}" if notes else "")
                         + (f"; throttled from {c.throttled_from:%Y-%m-%d %H:%M}" if c.throttled_from else ""))
        if pm.timeline is not None:
            rep = ((pm.result.usage.get("enforcement") or {}).get("iot") or {}).get("downgrades") or {}
            acted = {w["start"]: w for w in rep.get("windows", [])}
            for a, b in pm.timeline.downgrades:
                if pm.timeline.after_run(a):
                    lines.append(f"{pm.plan}: would be downgraded {a:%Y-%m-%d} (after the run)")
                    continue
                w = acted.get(a.isoformat(), {})
                lines.append(f"{pm.plan}: downgraded to the free limits {a:%Y-%m-%d}"
                             + (f" until {b:%Y-%m-%d %H:%M} (paid)" if b else " (unpaid at the end)")
                             + (f": {rep.get('devices_affected', 0):,} devices cut off, {w['refused_attempts']:,} "
                                f"refused reconnection attempts, {w.get('storm_peak_per_minute', 0):,} reconnecting in "
                                "a minute when restored" if w else ""))
    return lines


def write_months_outputs(mr, sc: Scenario, out_dir: str | Path) -> None:
    import pandas as pd

    from sim.months.plots import plot_months
    from sim.months.report import rows

    out = Path(out_dir)
    _write_json(out / "usage.json", {"run": mr.base.usage, "months": mr.base.months})
    _write_json(out / "bills.json", {"plans": [
        {"plan": pm.plan, "total": str(pm.total), "own_run": pm.own_run,
         "months": [b.to_dict() | {"enforcement": e} for b, e in zip(pm.bills, pm.enforcement, strict=True)]}
        for pm in mr.plans]})
    _write_json(out / "accounts.json", {"plans": [
        {"plan": pm.plan, "ledger": [c.to_dict() for c in pm.ledger],
         "switch": None if pm.switch is None else {"to": pm.switch.to, "at": pm.switch.at.isoformat(),
                                                   "trigger": pm.switch.trigger, "credit": str(pm.switch.credit),
                                                   "first_month": mr.bounds[pm.switch.cycle].strftime("%Y-%m")},
         "timeline": None if pm.timeline is None else pm.timeline.to_dict(),
         "first_exceeded": {k: mr.bounds[m].strftime("%Y-%m") for k, m in pm.first_exceeded.items()}}
        for pm in mr.plans]})
    _write_json(out / "run.json", mr.base.run_info() | {"plans": [pm.plan for pm in mr.plans]})
    mr.base.frame.to_csv(out / "timeseries.csv", index_label="time")
    pd.DataFrame(rows(mr, sc)).to_csv(out / "months.csv", index=False)
    plot_months(mr, out / "months.png", title=sc.name)


def bills_document(outcomes) -> dict:
    """bills.json: each plan's bill (on the usage of its own run) with its enforcement and storm extras, and
    ``cheapest`` (a plan name, or null on a tie) with ``tie`` (the tied plans, else []): the keys and meaning of
    `sim price --format json`, among the plans that are usable (:func:`sim.comparison.cheapest_usable_choice`)."""
    from sim.comparison import cheapest_usable_choice

    bills = []
    for o in outcomes:
        doc = o.bill.to_dict()
        doc["calculator_total"] = str(o.quote.total) if o.quote else None
        doc["enforcement"] = o.enforcement
        doc["storm_extra"] = o.extra
        doc["own_run"] = o.enforced
        bills.append(doc)
    name, tie = cheapest_usable_choice(outcomes)
    return {"bills": bills, "cheapest": name, "tie": tie}


def free_plan_headrooms(outcomes, plans) -> list:
    """``[(outcome, Headroom)]`` for each free plan (a plan with hard limits), on the usage of the plan's own run
    (the usage its bill is priced on): :func:`sim.pricing.headroom.headroom`."""
    from sim.pricing.headroom import headroom
    from sim.pricing.usage import usage_from_dict

    out = []
    for o, plan in zip(outcomes, plans, strict=True):
        if plan.limits:
            out.append((o, headroom(usage_from_dict(o.usage, f"<simulated usage under {plan.name}>"), plan)))
    return out


def headroom_document(headrooms) -> dict:
    """headroom.json: ``{"plans": [...]}``, one :meth:`Headroom.to_dict` per free plan, with ``own_run`` (the
    headroom is measured on the usage of a run with the plan's limits enforced)."""
    return {"plans": [h.to_dict() | {"own_run": o.enforced} for o, h in headrooms]}


def write_outputs(result: RunResult, outcomes: list, out_dir: str | Path) -> None:
    """usage.json (unrestricted run), bills.json, run.json, timeseries.csv, plots; per plan whose limits acted,
    usage-<plan>.json; comparison.csv and comparison.png when plans were priced."""
    import pandas as pd

    from sim.comparison import comparison_rows, plot_comparison
    from sim.plots import write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "usage.json", result.usage)
    _write_json(out / "bills.json", bills_document(outcomes))
    _write_json(out / "run.json", result.run_info() | {"plans": [o.bill.plan_file for o in outcomes]})
    result.frame.to_csv(out / "timeseries.csv", index_label="time")
    write_plots(result.frame, out, title=str(result.scenario.get("name", "")),
                plans=[o.bill.plan_file for o in outcomes])
    for o in outcomes:
        if o.enforced:
            _write_json(out / f"usage-{o.plan}.json", o.usage)
    if outcomes:
        pd.DataFrame(comparison_rows(outcomes)).to_csv(out / "comparison.csv", index=False)
        plot_comparison(outcomes, out / "comparison.png", title=str(result.scenario.get("name", "")))


def _write_json(path: Path, data) -> None:
    """One JSON file; the directory is the staging one, so a half-written file is never seen as a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.write("\n")


# -- the output directory: checked first, replaced whole at the end -------------------------------------------

#: A directory ``--out`` may replace: empty, or an earlier result (it has run.json and only files).
RESULT_MARKER = "run.json"


def _earlier_result(out: Path) -> bool:
    """A directory `sim run` wrote: it has run.json and only files (replacing it whole loses nothing else)."""
    return (out / RESULT_MARKER).is_file() and all(e.is_file() for e in out.iterdir())


def check_out_dir(out_dir: str | Path, earlier: Callable[[Path], bool] = _earlier_result,
                  what: str = f"an earlier result (no {RESULT_MARKER}); it would be replaced whole",
                  writes_inside: bool = False) -> Path:
    """Refuse an ``--out`` that cannot receive a result, before anything is simulated; return it absolute.

    Refused: an existing file; a path under a file; a directory that is neither empty nor ``earlier`` (an
    earlier output of the same command: replacing or adding to anything else would touch the user's files);
    a place without write permission (in the directory itself when ``writes_inside`` and it exists, else
    beside it). Shared by `sim run` (replaces the directory whole) and `sim sweep` (resumes inside it).
    """
    out = Path(os.path.abspath(out_dir))
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise InputError(None, "--out", f"{out_dir}: exists and is not a directory")
        if any(out.iterdir()) and not earlier(out):
            raise InputError(None, "--out", f"{out_dir}: a directory that is neither empty nor {what}, so choose "
                             "another")
    probe = out if writes_inside and out.is_dir() else out.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(None, "--out", f"{out_dir}: {probe} is a file, not a directory")
    try:  # the one reliable test of writability (root, read-only mounts, /proc): make and remove a directory
        os.rmdir(tempfile.mkdtemp(prefix=".sim-probe-", dir=probe))
    except OSError as exc:
        raise InputError(None, "--out", f"{out_dir}: cannot write in {probe}: {exc.strerror}") from None
    return out


@contextlib.contextmanager
def staged_dir(out_dir: str | Path):
    """Yield a fresh directory beside ``out_dir``; on success it replaces ``out_dir`` whole, on any failure
    (Ctrl-C included) it is deleted: ``out_dir`` holds the previous complete result or nothing, never half."""
    out = check_out_dir(out_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise InputError(None, "--out", f"{out_dir}: cannot write in {out.parent}: {exc.strerror}") from None
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a result directory is an ordinary one
        yield tmp
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(new: Path, out: Path) -> None:
    """Rename ``new`` to ``out``; an existing ``out`` is renamed aside first and deleted after. Ctrl-C is held
    back meanwhile (delivered right after), so the swap is never left half done."""
    with _sigint_held():
        if not out.exists():
            os.rename(new, out)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old)  # an empty directory may be replaced by rename
        try:
            os.rename(new, out)
        except BaseException:
            os.replace(old, out)
            raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _sigint_held():
    """Block SIGINT for a few system calls (main thread, POSIX); elsewhere do nothing."""
    can = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if can:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if can:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
