"""Scenario files: validation names file, key and reason; overrides; the generated reference."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sim.errors import InputError
from sim.scenario import (
    DEVICE_MIXES,
    Scenario,
    apply_sets,
    load_scenario,
    reference_markdown,
    resolve_scenario_path,
)


def test_shipped_scenarios_validate():
    for name in ("quick", "mesibo-example", "chat-app"):
        sc = load_scenario(name)
        assert sc.simulation.start == datetime(2026, 11, 1, tzinfo=UTC)
        assert sc.plans, name
    ex = load_scenario("mesibo-example")
    assert ex.population.users == 100_000 and ex.simulation.days == 30
    assert ex.plans == ["mesibo-cloud-example", "mesibo-cloud"]
    # 120 M messages in 30 days at DAU/MAU 0.75: 53.33 per DAU per day
    expected = ex.messaging.messages_per_dau_per_day * ex.population.dau_over_mau * 100_000 * 30
    assert expected == pytest.approx(120e6, rel=1e-4)


def test_defaults_cite_protocol_facts():
    sc = Scenario.model_validate({"population": {"users": 10}})
    assert sc.simulation.days == 30
    assert sc.network.tls_resumption_probability == 0.8
    assert sc.calls.turn_relay_fraction == 0.20
    assert sc.population.device_mix == DEVICE_MIXES["global"]


def _write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_unknown_key_names_file_and_key(tmp_path):
    p = _write(tmp_path, "population: {users: 10, userz: 3}\n")
    with pytest.raises(InputError) as e:
        load_scenario(p)
    assert e.value.source == str(p)
    assert e.value.field == "population.userz"
    assert "unknown key" in e.value.problem


def test_bad_value_names_key_and_reason(tmp_path):
    p = _write(tmp_path, "population: {users: 10}\nnetwork: {tls_resumption_probability: 1.5}\n")
    with pytest.raises(InputError) as e:
        load_scenario(p)
    assert e.value.field == "network.tls_resumption_probability"
    assert "less than or equal to 1" in e.value.problem


def test_missing_required_and_malformed_yaml(tmp_path):
    with pytest.raises(InputError) as e:
        load_scenario(_write(tmp_path, "simulation: {days: 3}\n"))
    assert e.value.field == "population" and "required" in e.value.problem
    with pytest.raises(InputError, match="malformed YAML at line 2"):
        load_scenario(_write(tmp_path, "population: {users: [1\n"))
    with pytest.raises(InputError, match="no such scenario file"):
        resolve_scenario_path("does-not-exist")


def test_sets_override_any_key_as_yaml_scalars():
    sc = load_scenario("quick", ["population.users=123", "network.heartbeat_s=0", "push.enabled=false",
                                 "messaging.ttl_s=3600", "protocol.tls=off", "population.device_mix=ios",
                                 "population.timezones=americas"], seed=99)
    assert sc.population.users == 123
    assert sc.network.heartbeat_s == 0 and sc.push.enabled is False and sc.messaging.ttl_s == 3600
    assert sc.protocol.tls == "off"
    assert sc.population.device_mix == {"android": 0.0, "ios": 1.0}
    assert sc.population.timezones == {-8.0: 0.2, -6.0: 0.2, -5.0: 0.35, -3.0: 0.25}
    assert sc.seed == 99


@pytest.mark.parametrize("item, field", [
    ("population.userz=3", "population.userz"),
    ("nope=1", "nope"),
    ("simulation.days.x=1", "simulation.days.x"),
])
def test_unknown_set_path_is_named(item, field):
    with pytest.raises(InputError) as e:
        apply_sets({"population": {"users": 1}}, [item])
    assert e.value.field == field


def test_union_errors_name_the_key_not_the_type():
    with pytest.raises(InputError) as e:
        load_scenario("quick", ["population.timezones.40=1"])
    assert e.value.field == "population.timezones"


def test_set_bad_value_is_validated():
    with pytest.raises(InputError) as e:
        load_scenario("quick", ["simulation.days=0"])
    assert e.value.field == "simulation.days"
    with pytest.raises(InputError) as e:
        load_scenario("quick", ["population.device_mix=martian"])
    assert "unknown device mix preset" in e.value.problem


def test_reference_lists_every_key_with_its_description():
    md = reference_markdown()
    for key in ("population.users", "simulation.days", "simulation.start", "plans",
                "network.tls_resumption_probability", "calls.turn_relay_fraction", "os.android.light_idle_s",
                "messaging.ttl_s", "push.min_interval_ios_s", "protocol.tls"):
        assert f"`{key}`" in md, key
    assert "PF §6 turn_relay_fraction 0.20" in md
    # every leaf field of every section appears
    def leaves(model, prefix=""):
        for name, f in model.model_fields.items():
            sub = getattr(f.annotation, "model_fields", None)
            if sub is not None:
                yield from leaves(f.annotation, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}"
    missing = [k for k in leaves(Scenario) if f"`{k}`" not in md]
    assert not missing, missing


def test_tls_version_may_be_given_as_a_number():
    # `--set protocol.tls=1.2` parses 1.2 as a YAML float; the version is still TLS 1.2.
    from sim.scenario import load_scenario

    assert load_scenario("scenarios/quick.yaml", ["protocol.tls=1.2"]).protocol.tls == "1.2"
    assert load_scenario("scenarios/quick.yaml", ["protocol.tls=off"]).protocol.tls == "off"


def test_yaml_12_numbers_and_booleans_in_overrides():
    # One YAML reader for every file and --set: 1e3 is a number (YAML 1.1 read it as a string), and `off`
    # is a string (YAML 1.1 read it as False).
    from sim.scenario import load_scenario

    sc = load_scenario("scenarios/quick.yaml", ["population.users=1e3", "protocol.tls=off"])
    assert sc.population.users == 1000 and sc.protocol.tls == "off"
