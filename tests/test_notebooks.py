"""Every notebook in notebooks/ runs as Jupyter runs it, and the TLS what-if shows what it claims.

Notebooks are executed with nbclient in a real ipykernel kernel on this interpreter, working directory
``notebooks/``, with a timeout per cell (``notebooks/execute.py``, the same code that refreshes the saved
outputs). Each notebook's setup cell, the one that finds its files, is tagged ``paths`` and must also work from
the repository root.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TLS = NOTEBOOK_DIR / "what-if-tls.ipynb"


def _load_executor():
    spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOK_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


executor = _load_executor()


@functools.cache
def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook run top to bottom in notebooks/ (once per test session; nothing is written back)."""
    return executor.execute(path, cwd=NOTEBOOK_DIR)


def outputs(nb: nbformat.NotebookNode, tag: str | None = None) -> list:
    return [o for c in nb.cells if c.cell_type == "code" and (tag is None or tag in c.metadata.get("tags", []))
            for o in c.outputs]


def tagged_json(nb: nbformat.NotebookNode, tag: str) -> dict:
    found = [o.data["application/json"] for o in outputs(nb, tag) if "application/json" in o.get("data", {})]
    assert len(found) == 1, f"expected one application/json output in the cell tagged {tag!r}"
    return found[0]


def test_there_are_notebooks():
    assert TLS in NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_in_a_kernel_from_notebooks_dir(path):
    nb = executed(path)  # a failing cell raises CellExecutionError with its traceback
    assert not [o for o in outputs(nb) if o.output_type == "error"]
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_setup_finds_its_files_from_the_repo_root(path):
    nb = nbformat.read(str(path), as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "paths" in c.metadata.get("tags", [])]
    assert tagged, f"{path.name}: tag the setup cell that resolves paths with 'paths'"
    executor.execute(path, cwd=ROOT, cells=tagged[-1] + 1, timeout=120)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saved_notebook_carries_its_outputs(path):
    """The committed notebook was executed and saved (refresh: python notebooks/execute.py)."""
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code and all(c.execution_count for c in code), f"{path.name} is saved unexecuted"
    assert not [o for o in outputs(nb) if o.output_type == "error"]
    assert not [c for c in nb.cells if "execution" in c.metadata], "volatile timing metadata saved"


def test_saved_tls_notebook_shows_its_plot():
    nb = nbformat.read(str(TLS), as_version=4)
    assert any("image/png" in o.get("data", {}) for o in outputs(nb))
    assert "variants" in tagged_json(nb, "summary")


@pytest.mark.slow
def test_tls_what_if_shows_a_difference_the_floors_do_not_hide():
    nb = executed(TLS)
    s = tagged_json(nb, "summary")
    v, minimum, included = s["variants"], s["minimum"], s["included_GB"]
    ref = v["TLS 1.3, ECDSA"]

    # The issue: a small app pays the minimum whatever its transport (and its traffic is inside the free quota).
    assert {r["total"] for r in s["small"].values()} == {minimum}
    assert all(r["billed_outbound_GB"] < included for r in s["small"].values())

    # The study's app is above both floors, so the transport shows on the bill and the totals differ.
    assert all(r["total"] == r["total_without_minimum"] > minimum for r in v.values())
    assert all(r["billed_outbound_GB"] > included for r in v.values())
    assert len({r["total"] for r in v.values()}) > 1
    assert len({r["payload_GB"] for r in v.values()}) == 1  # same world, only the wire differs

    # An RSA chain costs more than ECDSA, on either version, by exactly its extra bytes per full handshake.
    for version in ("1.3", "1.2"):
        rsa, ecdsa = v[f"TLS {version}, RSA"], v[f"TLS {version}, ECDSA"]
        assert rsa["total"] > ecdsa["total"] and rsa["billed_outbound_GB"] > ecdsa["billed_outbound_GB"]
        extra = rsa["full_s2c_B"] - ecdsa["full_s2c_B"]
        assert extra > 0 and rsa["full_handshakes"] == ecdsa["full_handshakes"]
        assert rsa["tls_handshake_bytes"] - ecdsa["tls_handshake_bytes"] == ecdsa["full_handshakes"] * extra

    # Without session tickets every resumption becomes a full handshake: more handshake bytes, a bigger bill.
    no_tickets = v["TLS 1.3, no tickets"]
    assert no_tickets["resumed_s2c_B"] == no_tickets["full_s2c_B"] > ref["resumed_s2c_B"]
    assert no_tickets["tls_handshake_bytes"] > ref["tls_handshake_bytes"] and no_tickets["total"] > ref["total"]
    assert 0 < ref["handshake_share"] < no_tickets["handshake_share"] < 1

    # The findings text is written from these numbers, not typed in.
    text = "".join(o.data["text/markdown"] for o in outputs(nb) if "text/markdown" in o.get("data", {}))
    totals = [r["total"] for r in v.values()]
    for total in (ref["total"], min(totals), max(totals)):
        assert f"${total:.2f}" in text
    assert f"{ref['handshake_share']:.1%}" in text


CUSTOM = NOTEBOOK_DIR / "custom-client.ipynb"


def test_saved_custom_client_notebook_shows_its_plot_and_both_runs():
    nb = nbformat.read(str(CUSTOM), as_version=4)
    assert any("image/png" in o.get("data", {}) for o in outputs(nb))
    assert len(tagged_json(nb, "summary")["runs"]) == 2


@pytest.mark.slow
def test_custom_client_notebook_shows_what_always_connected_clients_do_to_the_bill():
    nb = executed(CUSTOM)
    s = tagged_json(nb, "summary")
    phones, mixed = s["runs"].values()

    # Same app, same users: every registered user is active in both runs.
    assert phones["mau"] == mixed["mau"] == s["users"]

    # Web tabs stay connected through office hours and ping every 25 s; phones connect briefly and often.
    assert mixed["peak_ccu"] > 2 * phones["peak_ccu"]
    assert mixed["keepalives"] > 10 * phones["keepalives"]
    assert mixed["outbound_MB"]["keepalive"] > 10 * phones["outbound_MB"]["keepalive"]
    assert mixed["messages_originated"] > phones["messages_originated"]   # the bots

    # mesibo-cloud's MAU line bills max(MAU, 10 x peak CCU) of the priced usage, minus the included MAU; the
    # minimum commitment lifts a smaller total to it.
    for r in (phones, mixed):
        assert r["mau_quantity"] == max(r["bill_mau"], 10 * r["bill_peak_ccu"])
        assert r["billable_mau"] == max(0.0, r["mau_quantity"] - s["mau_included"])
        assert r["total"] == max(s["minimum"], r["total_without_minimum"])
    assert mixed["mau_quantity"] > phones["mau_quantity"]
    assert mixed["total_without_minimum"] >= phones["total_without_minimum"]

    # The conclusion is written from these numbers, not typed in.
    text = "".join(o.data["text/markdown"] for o in outputs(nb) if "text/markdown" in o.get("data", {}))
    for r in (phones, mixed):
        assert f"{r['peak_ccu']} " in text and f"{r['keepalives']:,}" in text
        assert f"${r['total']:.2f}" in text and f"${r['total_without_minimum']:.2f}" in text

    # The notebook's own client module was written to a temporary directory, not into the repository.
    assert not (NOTEBOOK_DIR / "my_clients.py").exists() and not (ROOT / "my_clients.py").exists()


TUNE_FREE_TIER = NOTEBOOK_DIR / "tune-free-tier.ipynb"


@pytest.mark.slow
def test_tune_free_tier_notebook_recommends_limits_with_their_intervals():
    from decimal import Decimal

    nb = executed(TUNE_FREE_TIER)
    rec = tagged_json(nb, "recommendation")
    variables = rec["tune"]["variables"]

    # A feasible recommendation: one value per tuned limit, on its grid's range, pasted into the plan's limits.
    assert rec["feasible"] is True and rec["limits"] and rec["closest"] is None
    assert set(rec["limits"]) == set(variables)
    for name, value in rec["limits"].items():
        assert variables[name]["low"] <= value <= variables[name]["high"]
    pasted = {f"limits.{p['metric']}": p.get("max", (p.get("max_fraction_of") or {}).get("fraction"))
              for p in rec["plan_limits"]}
    assert all(pasted[name] == value for name, value in rec["limits"].items())
    assert rec["objective"]["name"] == "minimise_free_cost"
    assert Decimal(rec["objective"]["value"]) == Decimal(rec["free_tier"]["cost"]["total"])

    # Every requirement is reported with its value and interval, and met.
    reqs = rec["requirements"]
    assert [r["kind"] for r in reqs] == [next(k for k, v in r.items() if v is not None)
                                             for r in rec["tune"]["requirements"]]
    for r in reqs:
        assert {"requirement", "value", "ci_low", "ci_high", "confidence", "met"} <= set(r) and r["met"] is True
    shares = [r for r in reqs if r["kind"] == "free_share"]
    assert len(shares) == 2
    for r in shares:
        body = r["requirement"]["free_share"]
        assert 0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1      # the point value inside its interval
        assert r["ci_low"] >= body["at_least"] and r["confidence"] == body["confidence"]
        assert r["value"] == pytest.approx(r["apps_free"] / r["apps"])
        assert r["pessimistic"] <= r["value"] <= r["optimistic"]
    cost = next(r for r in reqs if r["kind"] == "free_cost")
    budget = Decimal(cost["requirement"]["free_cost"]["at_most"])
    assert Decimal(cost["value"]) <= budget and Decimal(cost["ci_high"]) <= budget
    assert Decimal(cost["value"]) == Decimal(rec["free_tier"]["cost"]["total"])
    servers = next(r for r in reqs if r["kind"] == "servers")
    assert servers["value"] == rec["free_tier"]["servers"] <= servers["requirement"]["servers"]["at_most"]

    # The fleet was re-priced, not re-simulated; the shipped limits fail the requirements the recommendation meets.
    assert rec["fleet"]["path"] is None and rec["fleet"]["apps_tuned"] == rec["free_tier"]["apps"]
    assert rec["as_shipped"]["feasible"] is False
    assert rec["as_shipped"]["free_share"] < rec["free_tier"]["share"]
    variants = rec["variants"]
    assert variants["as shipped (base)"]["limits"] == rec["limits"]
    held = variants["CCU fraction held at 10 %"]
    assert held["feasible"] is False and held["limits"] is None and held["failing"]

    # The app side: each free plan's headroom, the app's growth factor the smallest of its limits'.
    app = rec["app_headroom"]
    for label in ("as shipped", "recommended"):
        h = app[label]
        factors = [lim["growth_factor"] for lim in h["limits"] if lim["growth_factor"] is not None]
        assert h["growth_factor"] == pytest.approx(min(factors)) and h["binding"]
        assert {lim["metric"] for lim in h["limits"] if lim["binds_first"]} == set(h["binding"])

    # The reading is written from these numbers, not typed in.
    text = "".join(o.data["text/markdown"] for o in outputs(nb) if "text/markdown" in o.get("data", {}))
    hobby = next(r for r in shares if r["requirement"]["free_share"]["archetype"] != "all")
    assert f"{hobby['apps_free']} of {hobby['apps']} hobby apps" in text
    assert f"{rec['limits']['limits.peak_ccu']:.0%}" in text and rec["free_tier"]["cost"]["total"] in text


GROWTH = NOTEBOOK_DIR / "growth-and-credits.ipynb"


def test_saved_growth_notebook_shows_its_plot_and_summary():
    nb = nbformat.read(str(GROWTH), as_version=4)
    assert any("image/png" in o.get("data", {}) for o in outputs(nb))
    assert {"plans", "switch", "what_if", "breakeven"} <= set(tagged_json(nb, "summary"))


@pytest.mark.slow
def test_growth_notebook_bills_the_months_plays_the_accounts_and_the_top_up_what_if():
    from datetime import datetime
    from decimal import Decimal

    nb = executed(GROWTH)
    s = tagged_json(nb, "summary")
    months, plans, cur = s["months"], s["plans"], s["currency"]
    n, minimum = len(months), Decimal(s["minimum"])

    # The app grows month by month, and every plan is billed every month (the total is the months' sum).
    assert n >= 2 and s["users"] == sorted(s["users"]) and s["mau"] == sorted(s["mau"]) and s["mau"][0] < s["mau"][-1]
    for p in plans.values():
        assert len(p["in_force"]) == len(p["totals"]) == len(p["rejected_messages"]) == n
        assert Decimal(p["total"]) == sum(Decimal(t) for t in p["totals"])
    assert all(Decimal(t) >= minimum for t in plans["mesibo-cloud"]["totals"])

    # Each ledger: the month's bill (minimum included) deducted at its end, the rest carried forward.
    for p in plans.values():
        led = p["ledger"]
        first = n - len(led)
        for k, c in enumerate(led):
            ups = [Decimal(t["amount"]) for t in c["top_ups"]]
            assert all(u >= 50 for u in ups)                                       # "as low as US$ 50"
            assert Decimal(c["deducted"]) == Decimal(p["totals"][first + k])
            assert Decimal(c["closing"]) == Decimal(c["opening"]) + sum(ups) - Decimal(c["deducted"])
            assert k == 0 or Decimal(c["opening"]) == Decimal(led[k - 1]["closing"])

    # The switch: Free (nothing billed) until a free limit is exceeded, then PAYG for good, never below the minimum.
    sw = s["switch"]
    free, c = plans[sw["plan"]], sw["cycle"]
    assert sw["trigger"] == "exceeded" and months[c] == sw["month"] and sw["metric"] in free["first_exceeded"]
    assert free["in_force"] == [sw["plan"]] * c + [sw["to"]] * (n - c)
    assert all(Decimal(t) == 0 for t in free["totals"][:c])
    assert all(Decimal(t) >= minimum for t in free["totals"][c:])
    assert len(free["ledger"]) == n - c
    assert free["ledger"][0]["top_ups"][0] == {"at": sw["at"], "amount": sw["credit"], "reason": "switch"}
    # irreversible: a month's usage within every free limit costs nothing on Free and the minimum on PAYG
    assert sw["fall_back_within_free"] and Decimal(sw["fall_back_free"]) == 0 and Decimal(sw["fall_back_payg"]) == minimum

    # The what-if: same opening credit; never topping up throttles the app (it loses messages) and ends owing money,
    # topping up at the notices keeps it running. The non-throttling one is replayed exactly without re-simulating.
    a, b = s["what_if"]["A"], s["what_if"]["B"]
    assert a["account"]["opening_balance"] == b["account"]["opening_balance"]
    assert a["account"]["top_up"]["when"] == "never" and b["account"]["top_up"]["when"] == "notified"
    assert a["replay_throttles"] and a["throttled_from"] is not None and a["rejected_throttled"] > 0
    assert sum(a["rejected_per_month"]) == a["rejected_throttled"] and Decimal(a["closing"]) < 0
    assert not b["replay_throttles"] and b["throttled_from"] is None and b["rejected_throttled"] == 0
    assert Decimal(b["top_ups"]) >= 50 and Decimal(b["closing"]) > Decimal(a["closing"])
    assert b["replay_matches"] and Decimal(b["replay_closing"]) == Decimal(b["closing"])
    for v in (a, b):
        last = v["ledger"][-1]
        assert Decimal(v["closing"]) == Decimal(last["closing"])
        assert all(Decimal(x) >= minimum for x in v["bills"])
    first_throttle = next(c["throttled_from"] for c in a["ledger"] if c["throttled_from"])
    assert first_throttle == a["throttled_from"]

    # Break-even: on the same usage mesibo-cloud never costs less than mesibo-onprem, so there is no crossing.
    be = s["breakeven"]
    assert be["value"] is None and be["cheaper_throughout"] == "mesibo-onprem"
    assert all(d >= 0 for d in be["difference"])

    # The text is written from these numbers, not typed in.
    text = "".join(o.data["text/markdown"] for o in outputs(nb) if "text/markdown" in o.get("data", {}))

    def when(iso: str) -> str:
        return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M}"

    for p in plans.values():
        assert f"{cur} {Decimal(p['total']):,.2f}" in text
    assert when(sw["at"]) in text and f"{cur} {Decimal(sw['fall_back_payg']):,.2f}" in text
    assert when(a["throttled_from"]) in text and f"{a['rejected_throttled']:,} messages rejected" in text
    for v in (a, b):
        assert f"{cur} {Decimal(v['closing']):,.2f}" in text
