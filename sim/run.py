"""``sim run``: load a scenario, simulate it, print a summary, price it, write the outputs.

Bad input (scenario file, ``--set``, plan names) raises :class:`sim.errors.InputError` before
anything is simulated or written. Pricing uses the plans listed in the scenario; the seed's payload
-only calculator (``sim.quote``) is printed beside each bill so the cost of overheads is visible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sim.comparison import mau_of
from sim.errors import InputError
from sim.meters import BILLED_OUTBOUND
from sim.scenario import Scenario, load_scenario
from sim.simulate import RunResult, simulate

GB = 1e9


def _load_plans(names: list[str], source: str):
    """Load every plan named by the scenario (fails fast, before the run)."""
    from sim.plan import load_plan

    plans = []
    for i, name in enumerate(names):
        try:
            plans.append(load_plan(name))
        except InputError as exc:
            raise InputError(source, f"plans.{i}", f"{name!r}: {exc.problem}") from None
    return plans


def summary_lines(result: RunResult) -> list[str]:
    """Human summary: MAU, peak CCU, GB by category, overhead share of billed outbound."""
    u = result.usage or {}
    meters, counts, bd = u.get("meters", {}), u.get("counts", {}), u.get("breakdown", {})
    mau = mau_of(u)
    peak = max(meters.get("peak_ccu", {}).get("values", [0])) if isinstance(meters.get("peak_ccu"), dict) else 0
    out = bd.get("outbound", {})
    billed = sum(out.get(c, 0) for c in BILLED_OUTBOUND)
    overhead = 1 - out.get("payload", 0) / billed if billed else 0.0
    lines = [
        f"scenario {result.scenario.get('name')}  seed {result.seed}  wall {result.wall_s:.1f} s",
        f"MAU {int(mau):,}   peak CCU {int(peak):,} ({peak / mau:.1%} of MAU)" if mau else "MAU 0",
        f"connections {counts.get('connections', 0):,}  full TLS {counts.get('full_handshakes', 0):,}  "
        f"resumed {counts.get('resumed_handshakes', 0):,}",
        f"chat messages originated {counts.get('messages_originated', 0):,}  copies sent {counts.get('messages_sent', 0):,}  "
        f"delivered {counts.get('delivered', 0):,}  stored at end {counts.get('stored', 0):,}  "
        f"expired {counts.get('expired', 0):,}  dropped {counts.get('dropped', 0):,}",
        *_iot_lines(counts),
        "outbound GB by category: " + ", ".join(f"{c} {v / GB:.3f}" for c, v in out.items() if v),
        f"billed outbound {billed / GB:.3f} GB, overhead share (non-payload) {overhead:.1%}; "
        f"TURN {out.get('turn_media', 0) / GB:.3f} GB",
    ]
    return lines


def _iot_lines(counts: dict) -> list[str]:
    """The tracker fleet's line of the summary, when the scenario has one."""
    if "iot_messages_sent" not in counts:
        return []
    keys = ("iot_messages_sent", "iot_delivered", "iot_read", "iot_expired", "iot_in_buffer_end", "iot_rejected",
            "iot_discarded", "iot_dropped", "iot_pending_on_device_end")
    return ["telemetry: " + "  ".join(f"{k.removeprefix('iot_').replace('_', ' ')} {counts.get(k, 0):,}" for k in keys)]


def run_command(scenario_path: str, sets: list[str] | None, seed: int | None, out_dir: str | None,
                progress: bool = True) -> int:
    """Load + validate, simulate under each listed plan's limits, summarise, price, write. Returns the exit status.

    Every input (scenario, overrides, plans) is validated before anything is simulated or written.
    """
    from sim.comparison import comparison_table, run_plans

    sc: Scenario = load_scenario(scenario_path, sets or [], seed)
    plans = _load_plans(sc.plans, str(scenario_path))
    if plans:
        result, outcomes = run_plans(sc, plans, seed=seed, progress=progress)
    else:
        result, outcomes = simulate(sc, seed=seed, progress=progress), []
    if not result.ok or any(o is None for o in outcomes):
        print(f"simulation failed: {result.error}", file=sys.stderr)
        if out_dir:
            _write_json(Path(out_dir) / "run.json", result.run_info())
        return 1
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
    if out_dir:
        write_outputs(result, outcomes, out_dir)
        print(f"wrote {out_dir}")
    return 0


def enforcement_lines(enf: dict, most: int = 3) -> list[str]:
    """What a plan did to the run, in words: suspensions, losses by reason, notifications, throttling."""
    lines = []
    sus = enf.get("suspensions", [])
    if sus:
        shown = ", ".join(f"{s['element']} ({s['limit']}) at {s['start']} for {s['minutes']:g} min" for s in sus[:most])
        lines.append(f"suspensions {len(sus):,}: {shown}" + (" ..." if len(sus) > most else ""))
    for section in ("rejected", "discarded", "dropped", "refused_connections"):
        if enf.get(section):
            lines.append(f"{section.replace('_', ' ')}: " + ", ".join(f"{k} {v:,}" for k, v in enf[section].items()))
    for n in enf.get("notifications", [])[:6]:
        lines.append(f"notification: {n['meter']} at {n['threshold']:.0%} of its {n['of']} on {n['at'] or 'unknown time'}")
    if enf.get("throttled_from"):
        lines.append(f"throttled from {enf['throttled_from']}")
    return lines


def bills_document(outcomes) -> dict:
    """bills.json: each plan's bill (on the usage of its own run) with its enforcement and storm extras."""
    from sim.comparison import cheapest_usable

    bills = []
    for o in outcomes:
        doc = o.bill.to_dict()
        doc["calculator_total"] = str(o.quote.total) if o.quote else None
        doc["enforcement"] = o.enforcement
        doc["storm_extra"] = o.extra
        doc["own_run"] = o.enforced
        bills.append(doc)
    return {"bills": bills, "best": cheapest_usable(outcomes)}


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
    write_plots(result.frame, out, title=str(result.scenario.get("name", "")))
    for o in outcomes:
        if o.enforced:
            _write_json(out / f"usage-{o.plan}.json", o.usage)
    if outcomes:
        pd.DataFrame(comparison_rows(outcomes)).to_csv(out / "comparison.csv", index=False)
        plot_comparison(outcomes, out / "comparison.png", title=str(result.scenario.get("name", "")))


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
