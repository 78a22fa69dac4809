"""The simulator: its model on a hand-checked trace, the baselines, the CLI, and acceptance 2 on both traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sprout.cli.simulate_cmd import simulate_command
from sprout.errors import UserError
from sprout.scale.config import Limits
from sprout.scale.simulate import Scenario, default_config, simulate
from sprout.scale.trace import Trace, load_trace
from sprout.spec.scaling import ScalingSection

DATA = Path(__file__).parent / "data"


def test_model_on_a_hand_checked_trace() -> None:
    # 10 req/s, then 50 req/s, then 10 req/s, 10 s each; 10 req/s per instance, 5 s launch delay, target 7.
    trace = Trace("tiny", 10, (10.0, 50.0, 10.0))
    scenario = Scenario(10.0, 5, ScalingSection(target=7, scale_in_stabilization=5), Limits(1, 100))
    result = simulate(trace, "sprout", scenario)
    # Two instances for t=0..10; at t=10 the scale-out limit launches 4 (x2 or +4), at t=11 two more
    # (serving from t=15 and t=16; t=10..14 violated); the 5 s window lets go at t=24:
    # 11*2 + 4*13 + 2*13 + ... = 144 - 2 (the last two start a second later).
    assert (result.instance_seconds, result.violation_seconds, result.max_instances) == (142, 5, 8)
    assert result.cost == pytest.approx(142 / 3600 * 0.024)


def test_fixed_peak_is_the_peak_fleet_all_along() -> None:
    trace = Trace("tiny", 10, (10.0, 50.0, 10.0))
    scenario = Scenario(10.0, 5, ScalingSection(target=7), Limits(1, 100))
    result = simulate(trace, "fixed-peak", scenario)
    assert (result.instance_seconds, result.violation_seconds, result.max_instances) == (150, 0, 5)


@pytest.mark.parametrize(
    "name",
    # A week of seconds through the per-second scaler takes a few seconds per run.
    ["euro-matchday", pytest.param("christmas-lottery", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("delay", [60, 3])
def test_acceptance_sprout_beats_the_baselines(name: str, delay: int) -> None:
    trace = load_trace(DATA / f"{name}.csv")
    scenario = Scenario(40.0, delay, default_config(40.0, delay), Limits(1, 10_000))
    sprout, hpa, asg, fixed = (simulate(trace, p, scenario) for p in ("sprout", "hpa", "asg", "fixed-peak"))
    assert sprout.violation_seconds < hpa.violation_seconds
    assert sprout.violation_seconds < asg.violation_seconds
    assert sprout.instance_seconds <= hpa.instance_seconds
    assert sprout.instance_seconds <= asg.instance_seconds
    assert sprout.instance_seconds <= 0.5 * fixed.instance_seconds
    assert sprout.violation_seconds <= 0.01 * trace.duration


def test_json_output_has_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    simulate_command(
        trace=DATA / "euro-matchday.csv", capacity=40, launch_delay=3, policy="hpa", json_output=True
    )
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"policy", "instance_seconds", "violation_seconds", "max_instances", "cost"}
    assert document["policy"] == "hpa"


def test_all_policies_json_and_one_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "spike.csv"
    small.write_text(
        "t_seconds,requests_per_second\n"
        + "".join(f"{t * 10},{50 if 30 <= t < 60 else 5}\n" for t in range(120))
    )
    png = tmp_path / "out" / "all.png"
    simulate_command(trace=small, capacity=10, launch_delay=20, policy="all", plot=png, json_output=True)
    documents = json.loads(capsys.readouterr().out)
    assert [d["policy"] for d in documents] == ["sprout", "hpa", "asg", "fixed-peak"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_manifest_settings_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "sprout.toml"
    manifest.write_text(
        '[app]\nname = "shop"\nweb = "python app.py"\n[instances]\nmin = 3\nmax = 4\nsize = "large"\n[scaling]\ntarget = 20\n[cost]\ncurrency = "EUR"\n'
        "[cost.prices]\nlarge = 3.6\n"
    )
    trace = tmp_path / "flat.csv"
    trace.write_text("t_seconds,requests_per_second\n0,100\n60,100\n")
    simulate_command(trace=trace, capacity=40, launch_delay=3, manifest=manifest, json_output=True)
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "policy": "sprout",
        "instance_seconds": 480,
        "violation_seconds": 0,
        "max_instances": 4,
        "cost": 0.48,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,rate\n0,1\n10,2\n", "not a trace; expected a CSV header `t_seconds,requests_per_second`"),
        ("t_seconds,requests_per_second\n0,1\n", "a trace needs at least two rows to tell its step"),
        (
            "t_seconds,requests_per_second\n0,1\n10,2\n25,3\n",
            "rows must be a fixed whole number of seconds apart",
        ),
    ],
)
def test_bad_traces(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_trace(path)


def test_unknown_policy_is_a_user_error() -> None:
    with pytest.raises(
        UserError, match="simulate: unknown policy 'k8s'; choose one of sprout, hpa, asg, fixed-peak or all"
    ):
        simulate_command(trace=DATA / "euro-matchday.csv", capacity=40, launch_delay=3, policy="k8s")


def test_module_entry_point_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    trace = tmp_path / "flat.csv"
    trace.write_text("t_seconds,requests_per_second\n0,100\n60,100\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sprout",
            "simulate",
            "--trace",
            str(trace),
            "--capacity",
            "40",
            "--launch-delay",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sprout" in done.stdout and "instance-s" in done.stdout
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "sprout",
            "simulate",
            "--trace",
            str(tmp_path / "no.csv"),
            "--capacity",
            "40",
            "--launch-delay",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert (
        "no.csv: cannot read the trace (No such file or directory); check the --trace path" in missing.stderr
    )
