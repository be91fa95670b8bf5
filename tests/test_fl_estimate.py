"""The federated pre-run estimator: arithmetic by hand, and calibration on a short run
predicting longer and larger runs of the same task."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("flwr")

import greentrack
from greentrack.analysis import fl_estimate as fe
from greentrack.carbon.intensity import resolve_region
from tests.test_flower import _task_identity, run_server  # noqa: F401


def test_arithmetic_from_assumptions() -> None:
    units = fe.units_from_assumptions(
        client_power_w=5.0,
        seconds_per_epoch=60.0,
        samples_per_client=500,
        model_bytes=4e6,
        eval_seconds=6.0,
        server_j_per_client_round=10.0,
    )
    setup = fe.FlSetup(rounds=100, clients_per_round=50, local_epochs=2, samples_per_client=500)
    est = fe.estimate_fl(setup, units, region="DE", pue=1.1, client_regions={"FR": 1, "PL": 1})
    n = 100 * 50
    assert est.parts_kwh["client_compute"] == pytest.approx(n * (5 * 60 * 2 + 5 * 6) / 3.6e6)
    assert est.parts_kwh["upload"] == pytest.approx(n * 4e6 / 1e9 * 0.06)
    assert est.parts_kwh["download"] == pytest.approx(n * 4e6 / 1e9 * 0.06)
    assert est.parts_kwh["server"] == pytest.approx(n * 10 / 3.6e6)
    client_g = (resolve_region("FR").gco2e_per_kwh + resolve_region("PL").gco2e_per_kwh) / 2
    server_g = resolve_region("DE").gco2e_per_kwh * 1.1
    expected = (
        est.parts_kwh["client_compute"] + est.parts_kwh["upload"] + est.parts_kwh["download"]
    ) * client_g + est.parts_kwh["server"] * server_g
    assert est.co2e_g == pytest.approx(expected)
    assert est.low_kwh < est.total_kwh < est.high_kwh
    rows = fe.sensitivity_fl(est)
    twice = next(r for r in rows if r.lever == "clients/round" and r.setting == "100")
    assert twice.factor_vs_base == pytest.approx(2.0)
    assert {r.lever for r in rows} >= {"local epochs", "client region", "network"}
    with pytest.raises(ValueError, match="clients_per_round must be positive"):
        fe.FlSetup(rounds=1, clients_per_round=0, local_epochs=1, samples_per_client=1)


def test_calibrated_on_two_rounds_predicts_longer_and_wider_runs(tmp_path) -> None:
    short = tmp_path / "short"
    short.mkdir()
    run_server(short, [1, 2, 3], 2)
    units = fe.calibrate(greentrack.load_run(short / "fl"), local_epochs=1)
    assert units.source.startswith("calibrated on")
    for nodes, rounds in (([1, 2, 3], 5), ([1, 2, 3, 4, 5], 3)):
        target = tmp_path / f"long-{len(nodes)}-{rounds}"
        target.mkdir()
        run_server(target, nodes, rounds)
        setup = fe.FlSetup(rounds, len(nodes), local_epochs=1, samples_per_client=10)
        predicted = fe.estimate_fl(setup, units)
        error = fe.prediction_error(predicted, greentrack.load_run(target / "fl"))
        # bytes are exact per message; compute and server energy follow the clients' and
        # server's timing, which varies a little from run to run
        assert abs(error["upload"]) < 0.01 and abs(error["download"]) < 0.01
        assert abs(error["client_compute"]) < 0.25
        assert abs(error["total"]) < 0.25, error


def test_cli(tmp_path) -> None:
    run_server(tmp_path, [1, 2], 2)
    done = subprocess.run(
        [sys.executable, "-m", "greentrack", "estimate-fl", "--rounds", "10",
         "--clients-per-round", "4", "--local-epochs", "1", "--samples-per-client", "10",
         "--calibrate", str(tmp_path / "fl"), "--region", "DE", "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["estimated"] and set(out["parts_kwh"]) == {
        "client_compute",
        "upload",
        "download",
        "server",
    }
    assert (
        out["co2e_kg"] > 0 and out["energy_kwh_low"] <= out["energy_kwh"] <= out["energy_kwh_high"]
    )
    bad = subprocess.run(
        [sys.executable, "-m", "greentrack", "estimate-fl", "--rounds", "10",
         "--clients-per-round", "4", "--local-epochs", "1", "--samples-per-client", "10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "--calibrate RUN_DIR, or --client-power-w" in bad.stderr
