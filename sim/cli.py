"""The ``sim`` command line (also ``python -m sim``).

Bad input of any kind ends with one line on stderr naming the file, the field and the problem, exit
status 2, and nothing written: every input is read and validated before any output is produced.
"""

from __future__ import annotations

import argparse
import json
import sys

from sim import __version__
from sim.errors import InputError


def _cmd_plans(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from sim.plan import shipped_plans

    print(tabulate(sorted(shipped_plans().items()), headers=["plan", "description"], tablefmt="plain"))
    return 0


def _load_plans(names: list[str]):
    from sim.plan import load_plan

    return [load_plan(name) for name in names]


def _addons_for(plans, addons: list[str]) -> list[tuple[str, ...]]:
    for name in addons:
        if not any(name in p.addons for p in plans):
            offered = sorted({a for p in plans for a in p.addons}) or ["none"]
            raise InputError(None, "--addon", f"no listed plan offers {name!r}; offered: {', '.join(offered)}")
    return [tuple(a for a in addons if a in p.addons) for p in plans]


def _emit(bills, fmt: str) -> None:
    from sim.report import bill_table, cheapest_plan, comparison

    if fmt == "json":
        cheapest = cheapest_plan(bills)
        json.dump({"bills": [b.to_dict() for b in bills], "cheapest": cheapest}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(comparison(bills))
    for bill in bills:
        print()
        print(bill_table(bill))


def _cmd_price(args: argparse.Namespace) -> int:
    from sim.pricing import price
    from sim.usage import load_usage

    usage = load_usage(args.usage)
    plans = _load_plans(args.plan)
    bills = [price(usage, plan, addons, apply_minimum=not args.no_minimum)
             for plan, addons in zip(plans, _addons_for(plans, args.addon), strict=True)]
    _emit(bills, args.format)
    return 0


def _cmd_quote(args: argparse.Namespace) -> int:
    from sim.quote import quote

    plans = _load_plans(args.plan)
    bills = [quote(plan, mau=args.mau, messages=args.messages, size=args.size) for plan in plans]
    _emit(bills, args.format)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.run import run_command

    return run_command(args.scenario, args.set, args.seed, args.out, progress=not args.no_progress)


def _cmd_scenario_reference(args: argparse.Namespace) -> int:
    from sim.scenario import reference_markdown

    print(reference_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plans", help="list the shipped plans")
    p.set_defaults(func=_cmd_plans)

    p = sub.add_parser("price", help="price a usage file under one or more plans")
    p.add_argument("usage", help="usage file (.json, .yaml)")
    p.add_argument("--plan", action="append", required=True, help="shipped plan name or plan file (repeatable)")
    p.add_argument("--addon", action="append", default=[], help="optional add-on, e.g. sla_basic (repeatable)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--no-minimum", action="store_true", help="leave out the minimum-commitment true-up")
    p.set_defaults(func=_cmd_price)

    p = sub.add_parser("quote", help="the seed's pricing calculator: payload only, no overheads, no minimum")
    p.add_argument("--plan", action="append", required=True)
    p.add_argument("--mau", type=int, required=True, help="monthly active users")
    p.add_argument("--messages", type=int, required=True, help="messages per month")
    p.add_argument("--size", type=float, required=True, help="average message size in bytes")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_quote)

    p = sub.add_parser("run", help="simulate a scenario, then meter and price it")
    p.add_argument("scenario", help="scenario file (scenarios/*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a scenario key")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="directory for usage.json, bills.json, run.json, series, plots")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("scenario", help="scenario file help")
    ssub = p.add_subparsers(dest="scenario_command", required=True)
    s = ssub.add_parser("reference", help="every scenario key with its type, default and meaning (Markdown)")
    s.set_defaults(func=_cmd_scenario_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"sim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sim price ... | head`
        return 0
