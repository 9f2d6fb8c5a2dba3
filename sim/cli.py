"""The ``sim`` command line (also ``python -m sim``).

Bad input of any kind ends with one line on stderr naming the file, the field and the problem, exit
status 2, and nothing written: every input is read and validated before any output is produced.
Argument errors are one line too (no usage dump), and Ctrl-C ends any command with ``sim: interrupted``
and exit status 130.
"""

from __future__ import annotations

import argparse
import decimal
import json
import math
import sys
from pathlib import Path

from sim import __version__
from sim.errors import InputError


def _cmd_plans(args: argparse.Namespace) -> int:
    from sim.pricing.plan import plans_by_platform

    groups = plans_by_platform()
    width = max((len(p.name) for plans in groups.values() for p in plans), default=0)
    for i, (platform, plans) in enumerate(groups.items()):
        print(("\n" if i else "") + f"{platform}:")
        for p in plans:
            print(f"  {p.name:<{width}}  {p.description}")
    return 0


def _load_plans(names: list[str]):
    from sim.pricing.plan import load_plan

    return [load_plan(name) for name in names]


def _addons_for(plans, addons: list[str]) -> list[tuple[str, ...]]:
    for name in addons:
        if not any(name in p.addons for p in plans):
            offered = sorted({a for p in plans for a in p.addons}) or ["none"]
            raise InputError(None, "--addon", f"no listed plan offers {name!r}; offered: {', '.join(offered)}")
    return [tuple(a for a in addons if a in p.addons) for p in plans]


def _emit(bills, fmt: str) -> None:
    """JSON: ``{"bills": [...], "cheapest": PLAN or null, "tie": [PLAN, ...]}`` (the same keys as bills.json);
    table: the plans side by side (the cheapest marked, every tied plan on a tie), then each bill."""
    from sim.pricing.report import bill_table, cheapest_document, comparison

    if fmt == "json":
        json.dump({"bills": [b.to_dict() for b in bills], **cheapest_document(bills)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(comparison(bills))
    for bill in bills:
        print()
        print(bill_table(bill))


def _cmd_price(args: argparse.Namespace) -> int:
    from sim.pricing.pricing import price, price_entities
    from sim.pricing.usage import load_usage

    usages = {}
    for path in args.usage:
        name = Path(path).stem
        while name in usages:
            name += "'"
        usages[name] = load_usage(path)
    plans = _load_plans(args.plan)
    if len(usages) == 1:
        usage = next(iter(usages.values()))
        bills = [price(usage, plan, addons, apply_minimum=not args.no_minimum)
                 for plan, addons in zip(plans, _addons_for(plans, args.addon), strict=True)]
    else:
        bills = [price_entities(usages, plan, addons, apply_minimum=not args.no_minimum)
                 for plan, addons in zip(plans, _addons_for(plans, args.addon), strict=True)]
    _emit(bills, args.format)
    return 0


def _cmd_quote(args: argparse.Namespace) -> int:
    from sim.pricing.quote import quote

    plans = _load_plans(args.plan)
    bills = [quote(plan, mau=args.mau, messages=args.messages, size=args.size) for plan in plans]
    _emit(bills, args.format)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.run import run_command

    return run_command(args.scenario, args.set, args.seed, args.out, progress=not args.no_progress,
                       max_memory=args.max_memory)


def _cmd_sweep(args: argparse.Namespace) -> int:
    """Load and check the whole study and --out first (bad input: one line, exit 2, nothing written), then run."""
    from sim.experiments import load_study, run_study
    from sim.experiments.executors import dask_executor
    from sim.experiments.files import check_sweep_dir

    study = load_study(args.study, args.set)
    check_sweep_dir(args.out)
    if args.dask or args.dask_local:
        with dask_executor(args.dask, args.dask_local) as ex:
            result = run_study(study, executor=ex, progress=not args.no_progress, out=args.out)
    else:
        result = run_study(study, progress=not args.no_progress, out=args.out, workers=args.workers)
    info = result.info
    print(f"{info['runs']} runs ({info['runs_computed']} computed, {info['runs_reused']} reused, "
          f"{info['runs_failed']} failed) in {info['wall_s']:.1f} s; wrote {args.out}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    """Check the tune file, its fleet and --out first (bad input: one line, exit 2, nothing written), then tune;
    exit 1 with one line when no candidate meets every requirement (the outputs say which fails)."""
    from sim.fleets.tune import tune_command

    return tune_command(args.tune, args.out, sets=args.set, workers=args.workers, dask=args.dask,
                        dask_local=args.dask_local, progress=not args.no_progress)


def _cmd_fleet(args: argparse.Namespace) -> int:
    """Load and check the whole fleet (every app's scenario) and --out first (bad input: one line, exit 2, nothing
    written), then run it and print what it needs."""
    from sim.fleets import load_fleet, run_fleet
    from sim.fleets.runner import check_fleet_dir

    fleet = load_fleet(args.fleet, args.set)
    check_fleet_dir(args.out)
    if args.dask or args.dask_local:
        from sim.experiments.executors import dask_executor

        with dask_executor(args.dask, args.dask_local) as ex:
            result = run_fleet(fleet, executor=ex, progress=not args.no_progress, out=args.out)
    else:
        result = run_fleet(fleet, progress=not args.no_progress, out=args.out, workers=args.workers)
    info, cap = result.info, result.capacity
    print(f"{info['apps']} apps ({info['apps_free']} free on their free plan, {info['apps_paying']} paying, "
          f"{info['apps_failed']} failed, {info['apps_sampled']} sampled), {info['mau']:,.0f} MAU in "
          f"{info['wall_s']:.1f} s")
    for name in ("total", "free", "paying"):
        c = cap[name]
        print(f"  {name}: peak {c['peak_ccu']:,.0f} connections, {c['peak_messages_per_s']:,.1f} messages/s -> "
              f"{c['servers']} servers; egress p{cap['parameters']['egress_percentile']:g} "
              f"{c['egress_percentile_mbit_s']:,.3f} Mbit/s; stored {c['stored_gb']:,.3f} GB")
    print(f"wrote {args.out}")
    return 0


def _cmd_breakeven(args: argparse.Namespace) -> int:
    """Check everything first (bad input: one line, exit 2, nothing written), then find where two plans cost the same;
    exit 1 when they do not cross in the range (sim/experiments/breakeven.py)."""
    from sim.experiments.breakeven import breakeven_command

    return breakeven_command(args.scenario, args.plan, args.vary, args.range, points=args.points,
                             replications=args.replications, seed=args.seed, sets=args.set, refine=args.refine,
                             confidence=args.confidence, fmt=args.format, out=args.out, workers=args.workers,
                             dask=args.dask, dask_local=args.dask_local, progress=not args.no_progress)


def _add_breakeven(sub) -> None:
    """``sim breakeven``; options left out take the defaults of sim/experiments/breakeven.py (imported when run)."""
    p = sub.add_parser("breakeven", help="the value of a scenario key at which two plans cost the same (simulated)")
    p.add_argument("scenario", help="scenario file (scenarios/*.yaml)")
    p.add_argument("--plan", action="append", required=True, help="plan A, then plan B: shipped name or plan file")
    p.add_argument("--vary", required=True, metavar="KEY", help="numeric scenario key, e.g. population.users")
    p.add_argument("--range", nargs=2, type=float, default=None, metavar=("LO", "HI"),
                   help="values of KEY to search (default: current / 4 to current x 4)")
    p.add_argument("--points", type=int, default=None, help="grid values (default 7)")
    p.add_argument("--replications", type=int, default=None, help="replications, common random numbers (default 5)")
    p.add_argument("--seed", type=int, default=None, help="root seed (default: the scenario's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a scenario key")
    p.add_argument("--refine", type=_count, default=None, help="bisection steps per replication (default 2)")
    p.add_argument("--confidence", type=float, default=None, help="CI level (default 0.95)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--out", default=None, help="directory for breakeven.json, breakeven.csv, breakeven.png")
    _executor_args(p, "local worker processes (default: usable cores)")
    p.set_defaults(func=_cmd_breakeven)


def _cmd_protocol(args: argparse.Namespace) -> int:
    from sim.protocol.report import default_messages, iot_messages, protocol_figures, protocol_table
    from sim.scenario import apply_sets, load_scenario, validate_scenario

    if args.scenario is None:  # the reference defaults: only protocol.* keys may be set
        bad = [s for s in args.set if not s.startswith("protocol.")]
        if bad:
            raise InputError("--set", bad[0].split("=")[0], "without a scenario only protocol.KEY=VALUE can be set")
        sc = validate_scenario(apply_sets({"name": "defaults", "population": {"users": 1}}, args.set), "--set")
    else:
        sc = load_scenario(args.scenario, args.set)
    doc: dict = {"scenario": sc.name}
    if sc.iot is None or sc.population.monthly_active_fraction > 0:  # a fleet-only scenario has no chat app
        doc["app"] = protocol_figures(sc.protocol, default_messages(sc))
    if sc.iot is not None:
        doc["iot"] = protocol_figures(sc.iot.protocol_config(), iot_messages(sc.iot))
    if args.format == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for part, title in (("app", "chat app (scenario protocol)"), ("iot", "IoT fleet (scenario iot)")):
        if part in doc:
            cfg = doc[part]["protocol"]
            print(f"{doc['scenario']}: {title}: app {cfg['app']}, TLS {cfg['tls']}, IPv{cfg['ip_version']}, "
                  f"MSS {cfg['mss']}")
            print(protocol_table(doc[part]))
            print()
    return 0


def _cmd_scenario_reference(args: argparse.Namespace) -> int:
    from sim.scenario import reference_markdown

    print(reference_markdown())
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``sim: error: ...``, exit 2), like every other bad input."""

    def error(self, message: str):
        raise InputError(None, None, " ".join(message.split()))


def _count(text: str) -> int:
    """A whole number >= 0 (``--mau``, ``--messages``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def _amount(text: str) -> float:
    """A finite number >= 0 (``--size``): nan and inf would poison the bill."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {text!r}")
    return value


def _memory_size(text: str) -> int:
    """``--max-memory``: 8GB, 512MB, 1.5GiB or bytes."""
    from sim.memory import parse_size

    try:
        return parse_size(text, "--max-memory")
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def _executor_args(p: argparse.ArgumentParser, workers_help: str) -> None:
    """--workers, --dask / --dask-local and --no-progress: how the commands that run many simulations run them."""
    p.add_argument("--workers", type=_count, default=None, help=workers_help)
    dask = p.add_mutually_exclusive_group()
    dask.add_argument("--dask", default=None, metavar="ADDRESS", help="a running Dask scheduler (tcp://host:8786)")
    dask.add_argument("--dask-local", type=_count, default=None, metavar="N", help="a Dask LocalCluster of N workers")
    p.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plans", help="list the shipped plans")
    p.set_defaults(func=_cmd_plans)

    p = sub.add_parser("price", help="price a usage file under one or more plans")
    p.add_argument("usage", nargs="+", help="usage file (.json, .yaml); several: one bill over them (one account's "
                   "apps or regions, combined by each metric's across_entities rule)")
    p.add_argument("--plan", action="append", required=True, help="shipped plan name or plan file (repeatable)")
    p.add_argument("--addon", action="append", default=[], help="optional add-on, e.g. sla_basic (repeatable)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--no-minimum", action="store_true", help="leave out the minimum-commitment true-up")
    p.set_defaults(func=_cmd_price)

    p = sub.add_parser("quote", help="the seed's pricing calculator: payload only, no overheads, no minimum")
    p.add_argument("--plan", action="append", required=True)
    p.add_argument("--mau", type=_count, required=True, help="monthly active users")
    p.add_argument("--messages", type=_count, required=True, help="messages per month")
    p.add_argument("--size", type=_amount, required=True, help="average message size in bytes")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_quote)

    p = sub.add_parser("run", help="simulate a scenario, then meter and price it")
    p.add_argument("scenario", help="scenario file (scenarios/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a scenario key")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="directory for usage.json, bills.json, run.json, series, plots")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--max-memory", type=_memory_size, default=None, metavar="SIZE",
                   help="refuse runs estimated to need more (e.g. 8GB; default: env SIM_MAX_MEMORY, else 60%% of RAM)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="run a study: a design x replications, priced under every plan (resumable)")
    p.add_argument("study", help="study file (studies/*.yaml)")
    p.add_argument("--out", required=True, help="directory for runs.parquet/csv, summary.csv, study.json, plots")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a study key")
    _executor_args(p, "local worker processes (default: usable cores)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("tune", help="tune a free plan's limits against a fleet: frontier, recommendation")
    p.add_argument("tune", help="tune file (fleets/tune-*.yaml)")
    p.add_argument("--out", required=True, help="directory for frontier.csv/png, recommendation.json (and fleet/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a tune key")
    _executor_args(p, "local worker processes for the fleet's runs")
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("fleet", help="run a fleet of apps: each simulated and priced, their load added on one clock")
    p.add_argument("fleet", help="fleet file (fleets/*.yaml)")
    p.add_argument("--out", required=True, help="directory for apps.parquet/csv, load.csv, capacity.json, plots")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a fleet key")
    _executor_args(p, "local worker processes (default: usable cores)")
    p.set_defaults(func=_cmd_fleet)

    _add_breakeven(sub)

    p = sub.add_parser("protocol", help="bytes per connection and per message, by direction and category, for a "
                       "scenario's protocol settings (to hold against a capture)")
    p.add_argument("scenario", nargs="?", default=None, help="scenario file (default: the reference defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a scenario key")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_protocol)

    p = sub.add_parser("scenario", help="scenario file help")
    ssub = p.add_subparsers(dest="scenario_command", required=True)
    s = ssub.add_parser("reference", help="every scenario key with its type, default and meaning (Markdown)")
    s.set_defaults(func=_cmd_scenario_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input is one line and exit 2, Ctrl-C one line and exit 130, never a traceback."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except InputError as exc:
        return _fail(f"sim: error: {exc}", 2)
    except decimal.DecimalException as exc:  # allowed inputs whose product leaves Decimal's 28 digits
        return _fail(f"sim: error: amounts too large to compute exactly ({type(exc).__name__}); use smaller "
                     "prices or quantities", 2)
    except KeyboardInterrupt:
        return _fail("sim: interrupted", 130)
    except BrokenPipeError:  # `sim price ... | head`
        return 0


def _fail(line: str, status: int) -> int:
    """Print the one line that ends a failed command; return its exit status."""
    print(" ".join(line.split()), file=sys.stderr)
    return status
