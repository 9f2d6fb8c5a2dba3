"""Plots and the run summary fit the scenario: IoT series drawn, billed bytes drawn as billed, storm figures with
signs that agree, summary lines only for what the scenario has."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import bill

import sim.plots as plots
from sim.comparison import PlanOutcome, change_text, comparison_table, connection_attempts, storm_extra
from sim.meters import BILLED_OUTBOUND
from sim.plots import Quota, quotas_of, write_plots
from sim.simulate import RunResult
from sim.summary import summary_lines

# ---------------------------------------------------------------- storm extras

# The iot-trackers scenario for 2 days: the unrestricted run, and flespi-free's run (100 MQTT sessions: 901
# trackers refused on every attempt, each attempt paying a handshake).
BASE = {"connections": 4055, "full_handshakes": 3544, "resumed_handshakes": 511}
FREE = {"connections": 406, "rejected_connections": 1_221_756, "full_handshakes": 1_222_118,
        "resumed_handshakes": 44}


def test_storm_counts_connection_attempts_like_the_handshakes():
    # attempts: 406 + 1,221,756 = 1,222,162 (= 1,222,118 + 44 handshakes) against 4,055 (= 3,544 + 511):
    # +1,218,107 attempts = +1,218,574 full - 467 resumed. Established connections: 406 - 4,055 = -3,649 (fewer).
    assert connection_attempts(FREE) == 1_222_162 == FREE["full_handshakes"] + FREE["resumed_handshakes"]
    extra = storm_extra({"counts": FREE}, {"counts": BASE})
    assert extra == {"connections": 1_218_107, "established_connections": -3_649, "full_handshakes": 1_218_574,
                     "resumed_handshakes": -467, "outbound_bytes": 0}
    assert extra["connections"] == extra["full_handshakes"] + extra["resumed_handshakes"]


def test_signed_figures_read_plus_or_fewer():
    assert change_text(1_218_574) == "+1,218,574"
    assert change_text(-3_649) == "3,649 fewer"
    assert change_text(0) == "0"


def test_comparison_table_shows_no_contradictory_sign():
    free = PlanOutcome(plan="flespi-free", bill=bill("flespi-free", {}), quote=None, usage={"counts": FREE},
                       enforced=True, extra=storm_extra({"counts": FREE}, {"counts": BASE}),
                       enforcement={"refused_connections": {"mqtt_session_refused": 1_221_756}})
    commercial = PlanOutcome(plan="flespi-commercial", bill=bill("flespi-commercial", {}), quote=None,
                             usage={"counts": BASE}, enforced=False, extra=storm_extra({"counts": BASE},
                                                                                       {"counts": BASE}))
    table = comparison_table([free, commercial])
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:4]] for r in table.splitlines()[2:]}
    assert rows["connection attempts vs unrestricted run"] == ["+1,218,107", "0"]
    assert rows["established connections vs unrestricted run"] == ["3,649 fewer", "0"]
    assert rows["full TLS handshakes vs unrestricted run"] == ["+1,218,574", "0"]
    assert "-3,649" not in table and "-" not in "".join(rows["connection attempts vs unrestricted run"])
    # $0 against $100, yet flespi-commercial is the cheapest usable plan: flespi-free refused connections
    assert "flespi-commercial <- cheapest" in table.splitlines()[0]


def test_real_iot_storm_attempts_match_handshakes():
    # 150 trackers for a day under flespi-free: refused attempts pay handshakes, so the extra connection attempts
    # are exactly the extra handshakes (full + resumed), and positive.
    from sim.comparison import run_plans
    from sim.pricing.plan import load_plan
    from sim.scenario import load_scenario

    sc = load_scenario("scenarios/iot-trackers.yaml", ["simulation.days=1", "iot.devices=150"])
    _, (free,) = run_plans(sc, [load_plan("flespi-free")], progress=False)
    x = free.extra
    assert x["connections"] > 0 and x["connections"] == x["full_handshakes"] + x["resumed_handshakes"]
    assert x["established_connections"] < 0          # fewer sessions were accepted


# ---------------------------------------------------------------- summary


def _result(usage: dict, frame=None) -> RunResult:
    return RunResult(scenario={"name": "t"}, seed=1, version="0", wall_s=0.1, usage=usage, frame=frame)


def _breakdown(**outbound) -> dict:
    cats = (*BILLED_OUTBOUND, "turn_media", "tcpip")
    return {"outbound": {c: outbound.get(c, 0) for c in cats}, "inbound": {c: 0 for c in cats}}


def test_iot_only_summary_has_no_mau_and_no_100_percent_overhead():
    frame = pd.DataFrame({"iot_connections": [1000, 998], "ccu_max": [0, 0]})
    bd = _breakdown(app_protocol=11_000_000, tls_record=62_000_000, keepalive=42_000_000, tcpip=237_000_000)
    bd["inbound"].update(payload=559_000_000, app_protocol=84_000_000, tls_record=62_000_000, keepalive=42_000_000,
                         tls_handshake=3_000_000)
    usage = {"meters": {"mau": {"interval": "1min", "values": [0, 0]}, "devices": {"interval": "1d", "values": [1000]}},
             "counts": {"iot_messages_sent": 2_797_190, "connections": 4055, "full_handshakes": 3544,
                        "resumed_handshakes": 511},
             "breakdown": bd}
    text = "\n".join(summary_lines(_result(usage, frame)))
    assert "MAU" not in text and "chat messages" not in text and "TURN" not in text
    assert "overhead share (non-payload)" not in text and "100.0%" not in text
    assert "IoT fleet: 1,000 devices, at most 1,000 connected at once" in text
    assert "telemetry: messages sent 2,797,190" in text
    # billed outbound 11 + 62 + 42 = 115 MB, none of it payload
    assert "billed outbound 0.115 GB, no payload among it" in text
    # inbound session bytes 559 + 84 + 3 + 62 + 42 = 750 MB, payload 559: overhead 191 / 750 = 25.5 %
    assert "inbound (devices -> platform) 0.750 GB at the session layer: payload 0.559 GB, overhead share 25.5%" in text
    assert "tcpip (not billed) 0.237" in text


def test_chat_summary_has_mau_and_overhead_share():
    # payload 23 MB of 48 MB billed: overhead 25 / 48 = 52.1 %; peak CCU 39 of 500 MAU = 7.8 %
    bd = _breakdown(payload=23_000_000, tls_handshake=15_000_000, app_protocol=10_000_000, turn_media=61_000_000)
    usage = {"meters": {"mau": {"interval": "1min", "values": [300, 200]}, "peak_ccu": {"interval": "1min",
                                                                                        "values": [39, 12]}},
             "counts": {"connections": 10, "full_handshakes": 4, "resumed_handshakes": 6, "messages_originated": 5},
             "breakdown": bd}
    lines = summary_lines(_result(usage))
    assert lines[1] == "MAU 500   peak CCU 39 (7.8% of MAU)"
    assert "billed outbound 0.048 GB, overhead share (non-payload) 52.1%; TURN 0.061 GB (its own meter)" in lines
    assert not any("IoT" in x or "telemetry" in x for x in lines)


def test_summary_without_billed_bytes_has_no_overhead_share():
    usage = {"meters": {"mau": 3}, "counts": {}, "breakdown": _breakdown()}
    text = "\n".join(summary_lines(_result(usage)))
    assert "overhead share" not in text and "MAU 3" in text
    empty = "\n".join(summary_lines(_result({"meters": {}, "counts": {}, "breakdown": _breakdown()})))
    assert "MAU 0: no user of the app connected" in empty and "overhead" not in empty


# ---------------------------------------------------------------- plots


def test_quotas_of_shipped_plans():
    q = quotas_of(["mesibo-cloud", "mesibo-free", "flespi-commercial", "mesibo-onprem"])
    assert Quota("mesibo-cloud", "outbound_bytes", 5e9, "included", "sum") in q
    assert Quota("mesibo-cloud", "turn_bytes", 2e9, "included", "sum") in q
    assert Quota("mesibo-cloud", "stored_bytes", 1e9, "included", "avg") in q
    assert Quota("mesibo-free", "outbound_bytes", 5e9, "limit", "sum") in q
    assert Quota("flespi-commercial", "stored_bytes", 1e9, "included", "daily_avg") in q
    assert not [x for x in q if x.plan == "mesibo-onprem"]          # MAU only: nothing in bytes
    assert Quota("mesibo-cloud", "outbound_bytes", 5e9, "included", "sum").label(1e9, "GB") == (
        "mesibo-cloud: 5 GB billed outbound included for the whole period (billed as one month)")


@pytest.fixture
def figures(monkeypatch):
    """The figures write_plots makes, by file name, still open for inspection."""
    made = {}
    real = plots._save

    def keep(fig, path):
        made[path.name] = [(ax.get_title(), [(ln.get_label(), ln.get_linestyle(), np.asarray(ln.get_ydata()))
                                             for ln in ax.get_lines()],
                            ax.get_legend_handles_labels()[1], ax.get_ylim()) for ax in fig.axes]
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return made


def _frame(minutes: int = 180, iot: bool = True, app: bool = True) -> pd.DataFrame:
    idx = pd.date_range("2026-11-01", periods=minutes, freq="1min", tz="UTC")
    f = pd.DataFrame(index=idx)
    for c in (*BILLED_OUTBOUND, "turn_media", "tcpip"):
        f[f"out_{c}_bytes"] = 0.0
    if app:
        f["out_payload_bytes"] = 1e6
        f["out_tls_handshake_bytes"] = 5e5
        f["out_turn_media_bytes"] = 4e6                 # the largest category: drawn, on its own
        f["ccu"] = f["ccu_max"] = 40.0
        f["stored_bytes"] = 2e5
    f["out_tcpip_bytes"] = 3e5
    if iot:
        f["out_keepalive_bytes"] = 2e5
        f["iot_connections"] = 1000.0
        f["iot_stored_bytes"] = np.linspace(0, 5e8, minutes)
    return f


def test_iot_plots_draw_the_fleet(tmp_path, figures):
    write_plots(_frame(app=False), tmp_path, "iot", plans=["flespi-commercial"])
    (conn,) = figures["connections.png"]
    assert [label for label, _, _ in conn[1]] == ["IoT devices connected"]
    assert conn[1][0][2].max() == 1000 and conn[3][1] > 1000              # drawn, not clipped at the top
    (stored,) = figures["stored_bytes.png"]
    assert "IoT device buffers" in stored[2]
    assert any(label.startswith("flespi-commercial: 1 GB storage included") for label in stored[2])
    # the 0.5 GB peak is within reach of the 1 GB quota: the axis is in GB and the line is drawn at 1
    assert any(y.size and y[0] == 1.0 for _, _, y in stored[1])


def test_outbound_plot_stacks_billed_bytes_and_keeps_turn_and_tcpip_apart(tmp_path, figures):
    write_plots(_frame(), tmp_path, "mix", plans=["mesibo-cloud"])
    top, turn, cum = figures["outbound_bytes.png"]
    assert "outbound_bytes meter by category, stacked" in top[0]
    stacked = [lab for lab in top[2] if lab in (*BILLED_OUTBOUND, "turn_media", "tcpip")]
    assert stacked == ["payload", "tls_handshake", "keepalive"]           # billed categories only
    assert [(lab, ls) for lab, ls, _ in top[1]] == [("tcpip (not billed, not stacked)", "--")]
    assert "its own meter (turn_bytes)" in turn[0] and [lab for lab, _, _ in turn[1]] == ["turn_media"]
    # 4 MB of TURN a minute -> 240 MB an hour
    assert turn[1][0][2].max() == pytest.approx(240.0)
    # cumulative: billed 1.7 MB a minute x 180 = 306 MB, TURN 720 MB; the 5 GB and 2 GB quotas are far above
    # (more than 4 x the data), so they are named in the legend, with the share reached: 306 MB / 5 GB = 6.12 %,
    # 720 MB / 2 GB = 36.00 %
    labels = cum[2]
    assert any(lab.startswith("off the scale: mesibo-cloud: 5 GB billed outbound included") and "6.12%" in lab
               for lab in labels)
    assert any(lab.startswith("mesibo-cloud: 2 GB TURN included") for lab in labels)          # 2 GB < 4 x 720 MB
    # the drawn 2 GB line sets the axis unit: GB
    billed_line = next(y for lab, _, y in cum[1] if lab.startswith("billed outbound so far"))
    assert billed_line[-1] == pytest.approx(0.306)


def test_plots_draw_the_quotas_of_the_plans_given(tmp_path, figures):
    write_plots(_frame(iot=False), tmp_path, plans=["mesibo-cloud"])
    assert any("mesibo-cloud" in lab for lab in figures["outbound_bytes.png"][2][2])
    write_plots(_frame(iot=False), tmp_path)
    assert not any("mesibo-cloud" in lab for lab in figures["outbound_bytes.png"][2][2])
