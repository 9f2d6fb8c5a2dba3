"""Custom clients on the events engine (sim/world/events/custom.py, examples.py) against closed forms.

Each run is small (at most 100 users, one billing day after one warm-up day) and its figures are exact
consequences of what the example clients do:

* ``Bot(interval_s=10)``: always connected, one message every 10 s from the world's clock zero, so
  86,400 / 10 = 8,640 messages per bot in each simulated day of the period, and nothing from the default
  clients when ``messaging.messages_per_dau_per_day`` is 0;
* ``WebSocketTab`` (25 s heartbeat, 8 h a day from 09:00): one connection per tab per day, held
  28,800 s, so floor(28,800 / 25) = 1,152 keep-alives per connection; its previous connection ended 16 h
  earlier, beyond the 7,200 s ticket lifetime, so its handshake is always full;
* ``Poller(every_s=300, stay_s=2)``: a random phase, then a poll every 300 s; 86,400 is a multiple of 300,
  so every phase gives exactly 288 polls in the day; each follows the previous one by 298 s, inside the
  ticket lifetime, so each resumes with probability ``network.tls_resumption_probability`` (binomial);
* ``every_minute`` (a generator function): a 5 s connection every minute, 1,440 a day.

How many users each behaviour got is read from the world the run builds (:func:`assigned`), the same
draw ``simulate`` makes. Calls are off in these runs (a call would ring a custom client and add a
connection); pushes are off in the bot run (recipients woken 8,640 times a day only cost time).

Run time: ~15 s on a loaded 2-core machine (the bot run is the largest: 3 bots x 17,280 messages).
"""

from __future__ import annotations

import functools
import json
import textwrap
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats

from sim.cli import main
from sim.meters import MeterBook
from sim.rng import Streams
from sim.scenario import validate_scenario
from sim.simulate import make_protocol, make_world, simulate

EX = "sim.world.events.examples"
BOT, POLLER, TAB, EVERY_MINUTE = f"{EX}:Bot", f"{EX}:Poller", f"{EX}:WebSocketTab", f"{EX}:every_minute"
DAY_S = 86_400


def scenario(clients: list[dict], users: int = 100, seed: int = 11, **sections):
    raw = {"name": "custom", "seed": seed, "engine": "events", "simulation": {"days": 1, "warmup_days": 1},
           "population": {"users": users, "timezones": "utc"}, "calls": {"calls_per_dau_per_day": 0},
           "clients": clients}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return validate_scenario(raw, "<test>")


def assigned(sc) -> dict[str, int]:
    """Users per client class in the world ``simulate(sc)`` builds (same streams, same draw)."""
    s = sc.simulation
    book = MeterBook(start=s.start - timedelta(days=s.warmup_days), minutes=(s.warmup_days + s.days) * 1440,
                     days=s.days, tz="UTC")
    world = make_world(sc, Streams(sc.seed), book, make_protocol(sc))
    out: dict[str, int] = {}
    for c in world.clients:
        if c is not None:
            out[type(c).__name__] = out.get(type(c).__name__, 0) + 1
    return out


def run(sc):
    return simulate(sc, progress=False, raise_errors=True)


# -- Bot: messages per bot per day ------------------------------------------------------------------


@functools.cache
def bots():
    """3 bots (seed 3) among 97 default clients that send nothing."""
    sc = scenario([{"behaviour": BOT, "share": 0.02, "params": {"interval_s": 10}}], seed=3,
                  messaging={"messages_per_dau_per_day": 0}, push={"enabled": False})
    n = assigned(sc)
    assert n["Bot"] == 3 and n["MobileClient"] == 97
    return sc, n["Bot"], run(sc)


def test_bot_messages_per_day_in_the_per_minute_series_and_bytes():
    sc, n_bots, r = bots()
    per_bot_day = DAY_S // 10
    expected = n_bots * per_bot_day * sc.simulation.days
    assert per_bot_day == 8640
    assert r.frame["messages_originated"].sum() == expected
    # each originated message is uploaded once: 200 B of payload inbound each
    assert r.usage["breakdown"]["inbound"]["payload"] == expected * 200


def test_bot_messages_per_day_in_the_counts():
    sc, n_bots, r = bots()
    assert r.usage["counts"]["messages_originated"] == n_bots * (DAY_S // 10) * sc.simulation.days


# -- WebSocketTab and Poller together: no default client in the run --------------------------------


@functools.cache
def tabs_and_pollers():
    sc = scenario([{"behaviour": TAB, "share": 0.5, "params": {"hours": 8, "start_hour": 9}},
                   {"behaviour": POLLER, "share": 0.5, "params": {"every_s": 300, "stay_s": 2}}])
    n = assigned(sc)
    assert set(n) == {"WebSocketTab", "Poller"}
    return sc, n["WebSocketTab"], n["Poller"], run(sc)


def test_websocket_tab_keepalives_per_connection_and_one_connection_a_day():
    sc, tabs, pollers, r = tabs_and_pollers()
    c = r.usage["counts"]
    per_conn = (8 * 3600) // 25
    assert per_conn == 1152
    # a 2 s poll is shorter than any heartbeat: every keep-alive of the run is a tab's
    assert c["keepalives"] == tabs * per_conn
    assert c["connections"] == tabs * 1 + pollers * 288
    # keep-alive bytes are metered from the tab's own 25 s period, per connection
    ka = make_protocol(sc).keepalive().out["keepalive"]
    assert r.usage["breakdown"]["outbound"]["keepalive"] == pytest.approx(tabs * per_conn * ka, rel=1e-12)
    # all tabs open in the 09:00 minute of the period's day and close in the 17:00 minute
    ccu = r.frame["ccu"]
    day = ccu.index[0].normalize()
    assert ccu[day + timedelta(hours=12)] >= tabs
    assert ccu[day + timedelta(hours=8, minutes=59)] <= pollers


def test_poller_connections_and_resumed_handshakes():
    """Poller: 288 connections per poller in the day, exactly (86,400 s is a multiple of the 300 s period, so the
    random phase cannot add or remove a poll), and each in-period poll resumes its TLS session with probability
    p = network.tls_resumption_probability (0.8): the previous poll ended 298 s earlier, inside the 7,200 s ticket
    lifetime (for the first poll of the period, the last poll of the warm-up day). The tabs' handshakes are all full
    (16 h since their previous connection).

    Test: the resumed count R among the N = 288 x pollers in-period polls is Binomial(N, p) (one independent draw of
    the user's stream per connection); exact two-sided binomial test (scipy.stats.binomtest), rejected below
    alpha = 1e-6. A correct engine fails it for a given seed with probability at most 1e-6 (its false-alarm
    rate); the seed is fixed, so the outcome is the same on every run.
    """
    sc, tabs, pollers, r = tabs_and_pollers()
    c = r.usage["counts"]
    n_polls = 288 * pollers
    resumed = c["resumed_handshakes"]
    assert c["full_handshakes"] == tabs + (n_polls - resumed)
    p = sc.network.tls_resumption_probability
    test = stats.binomtest(resumed, n_polls, p)
    assert test.pvalue > 1e-6, (resumed, n_polls, p, test.pvalue)
    assert abs(resumed / n_polls - p) < 0.02


def test_a_clients_own_heartbeat_keeps_its_nat_mapping_alive():
    sc = scenario([{"behaviour": TAB, "share": 1.0}], users=20, network={"heartbeat_s": 0})
    c = run(sc).usage["counts"]
    assert c.get("nat_timeouts", 0) == 0
    assert c["connections"] == 20 and c["keepalives"] == 20 * 1152


def test_keepalives_of_tabs_open_across_the_period_boundaries():
    # open 20:00-04:00: in the period, 00:00-04:00 of the warm-up's connection and 20:00-24:00 of the day's own
    sc = scenario([{"behaviour": TAB, "share": 1.0, "params": {"hours": 8, "start_hour": 20}}], users=20)
    r = run(sc)
    per_tab = 2 * (4 * 3600 // 25)
    ka = make_protocol(sc).keepalive().out["keepalive"]
    assert r.usage["breakdown"]["outbound"]["keepalive"] == pytest.approx(20 * per_tab * ka, rel=1e-9)
    assert r.usage["counts"]["keepalives"] == 20 * per_tab


# -- a generator-function behaviour ---------------------------------------------------------------


@functools.cache
def every_minute_run():
    sc = scenario([{"behaviour": EVERY_MINUTE, "share": 1.0}], users=20)
    return assigned(sc), run(sc)


def test_generator_function_behaviour_runs():
    n, r = every_minute_run()
    assert n == {"Behaviour_every_minute": 20}   # wrapped into a Client subclass
    c = r.usage["counts"]
    # a 5 s connection every minute from the world's clock zero: 1,440 per user in the day
    assert r.frame["connects"].sum() == 20 * 1440
    assert c["full_handshakes"] + c["resumed_handshakes"] == c["connections"]
    assert c["keepalives"] == 0          # 5 s is shorter than the 240 s heartbeat
    assert r.frame["ccu_max"].max() == 20


def test_generator_function_connections_in_the_counts():
    _, r = every_minute_run()
    assert r.usage["counts"]["connections"] == 20 * 1440


# -- sim run: custom clients are metered and priced like the default one ----------------------------

SCENARIO = """\
name: custom-run
seed: 5
engine: events
simulation: {days: 1}
population: {users: 60, timezones: utc}
calls: {calls_per_dau_per_day: 0}
plans: [mesibo-cloud]
"""
CLIENTS = f"""\
clients:
  - {{behaviour: "{TAB}", share: 0.3}}
  - {{behaviour: "{EVERY_MINUTE}", share: 0.1}}
"""


def sim_run(capsys, tmp_path, name, text, *extra):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    out = tmp_path / f"out-{name}"
    code = main(["run", str(path), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured, out


def test_sim_run_with_clients_writes_the_same_files_and_prices_them(capsys, tmp_path):
    code_a, _, out_a = sim_run(capsys, tmp_path, "plain", SCENARIO)
    code_b, printed, out_b = sim_run(capsys, tmp_path, "custom", SCENARIO + CLIENTS)
    assert code_a == code_b == 0
    files = sorted(p.name for p in out_a.iterdir())
    assert files == sorted(p.name for p in out_b.iterdir())
    assert {"usage.json", "bills.json", "run.json", "timeseries.csv", "connections.png"} <= set(files)
    assert "mesibo-cloud" in printed.out

    usage_a = json.loads((out_a / "usage.json").read_text())
    usage_b = json.loads((out_b / "usage.json").read_text())
    run_info = json.loads((out_b / "run.json").read_text())
    assert [c["behaviour"] for c in run_info["scenario"]["clients"]] == [TAB, EVERY_MINUTE]
    # the tabs' 25 s keep-alives and the one-minute connections are metered
    assert usage_b["counts"]["keepalives"] > 10 * usage_a["counts"]["keepalives"]
    assert usage_b["breakdown"]["outbound"]["keepalive"] > 10 * usage_a["breakdown"]["outbound"]["keepalive"]
    # ... and priced: mesibo-cloud bills max(MAU, 10 x peak CCU) on the MAU line
    bills = json.loads((out_b / "bills.json").read_text())
    bill = next(b for b in bills["bills"] if b["plan"] == "mesibo-cloud")
    mau_line = next(line for line in bill["lines"] if line["item"] == "mau")
    plan_usage = out_b / "usage-mesibo-cloud.json"
    priced = json.loads(plan_usage.read_text()) if plan_usage.exists() else usage_b
    mau = sum(priced["meters"]["mau"]["values"])
    peak = max(priced["meters"]["peak_ccu"]["values"])
    assert mau_line["quantity"] == max(mau, 10 * peak)
    assert float(bill["total"]) >= 49.0


def test_a_users_own_module_next_to_where_sim_runs(capsys, tmp_path, monkeypatch):
    """A module in the working directory is importable by dotted path (the console script does not put the
    working directory on sys.path; the resolver does, for the import)."""
    (tmp_path / "my_custom_clients_t1.py").write_text(textwrap.dedent('''
        from sim.world.events import Client

        class Kiosk(Client):
            heartbeat_s = 30.0

            def run(self):
                yield self.sleep(3600)
                self.hold(2 * 3600)          # one 2 h connection in the first day of the clock (the warm-up)
                yield self.sleep(86_400)
                self.hold(2 * 3600)          # and one in the period: 01:00-03:00
    '''))
    monkeypatch.chdir(tmp_path)
    text = SCENARIO.replace("users: 60", "users: 10") + "clients: [{behaviour: 'my_custom_clients_t1:Kiosk', share: 1.0}]\n"
    code, printed, out = sim_run(capsys, tmp_path, "kiosk", text.replace("plans: [mesibo-cloud]\n", ""))
    assert code == 0, printed.err
    usage = json.loads((out / "usage.json").read_text())
    assert usage["counts"]["connections"] == 10
    assert usage["counts"]["keepalives"] == 10 * (2 * 3600 // 30)


# -- bad input: exit 2, one line naming the file and the field, nothing written ---------------------


@pytest.mark.parametrize(("clients", "engine", "fragments"), [
    ("[{behaviour: 'no_such_module_xyz:Bot', share: 0.1}]", "events",
     ["clients.0", "cannot import module 'no_such_module_xyz'"]),
    ("[{behaviour: 'collections:OrderedDict', share: 0.1}]", "events",
     ["clients.0", "not a subclass of sim.world.events.Client"]),
    (f"[{{behaviour: '{EX}:DAY_S', share: 0.1}}]", "events",
     ["clients.0", "neither a Client subclass nor a generator function"]),
    (f"[{{behaviour: '{BOT}', share: 0.6}}, {{behaviour: '{POLLER}', share: 0.5}}]", "events",
     ["clients", "the shares add up to 1.1, more than 1"]),
    (f"[{{behaviour: '{BOT}', share: 0.1}}]", "fast",
     ["clients", "events engine only"]),
], ids=["unimportable", "not-a-client", "not-callable", "shares-above-1", "engine-fast"])
def test_bad_clients_are_refused(capsys, tmp_path, clients, engine, fragments):
    text = SCENARIO.replace("engine: events", f"engine: {engine}") + f"clients: {clients}\n"
    code, printed, out = sim_run(capsys, tmp_path, "bad", text)
    assert code == 2
    assert printed.out == ""
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1, printed.err
    for fragment in ["bad.yaml", *fragments]:
        assert fragment in lines[0], lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


# -- reproducible ---------------------------------------------------------------------------------


def test_same_seed_same_usage():
    clients = [{"behaviour": TAB, "share": 0.2}, {"behaviour": POLLER, "share": 0.2},
               {"behaviour": EVERY_MINUTE, "share": 0.1}]
    a, b = (run(scenario(clients, users=40, seed=21)) for _ in range(2))
    assert a.usage == b.usage
    assert np.array_equal(a.frame.to_numpy(), b.frame.to_numpy())
    c = run(scenario(clients, users=40, seed=22))
    assert c.usage["counts"] != a.usage["counts"]
