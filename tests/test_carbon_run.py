"""Carbon settings on a run: track(region=, pue=), greentrack run/regions/whatif."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import greentrack
from greentrack.carbon.intensity import UnknownRegionError, resolve_region
from greentrack.carbon.series import IntensitySeries
from greentrack.carbon.settings import resolve_settings
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from tests.helpers import gpu_cpu_meters, run_for

GT = [sys.executable, "-m", "greentrack"]


def test_track_with_region_and_pue(tmp_path, clock):
    with greentrack.track(
        tmp_path / "run",
        meters=gpu_cpu_meters(clock),
        clock=clock,
        background=False,
        region="DE",
        pue=1.1,
    ) as run:
        run_for(run, clock, 36.0)
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["carbon"]["intensity"]["region"] == "DE"
    assert meta["carbon"]["pue"]["pue"] == 1.1
    s = run.summary()
    kwh = 290.0 * 36.0 / 3.6e6
    g = resolve_region("DE").gco2e_per_kwh
    acct = s.account
    assert acct.co2e_g_by_provenance["measured"] == pytest.approx(kwh * 1.1 * g)
    assert acct.co2e_g.value == pytest.approx(kwh * 1.1 * g)
    # the range: counters +/-5% (NVML fake) and +/-10% (unknown measured), PUE preset-less
    # user value exact, annual intensity +/-15%
    assert acct.co2e_g.low < acct.co2e_g.value < acct.co2e_g.high
    assert "estimated" not in acct.co2e_g_by_provenance
    text = str(s)
    assert "344.1 gCO2e/kWh for DE" in text and "PUE 1.1" in text and "CO2e:" in text


def test_bad_carbon_settings_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"PUE of 0\.9 is not a PUE"):
        greentrack.track(tmp_path / "run", region="DE", pue=0.9)
    with pytest.raises(UnknownRegionError, match="closest"):
        greentrack.track(tmp_path / "run", region="aws:eu-wst-1")
    with pytest.raises(ValueError, match="either region"):
        greentrack.track(tmp_path / "run", region="DE", intensity=300.0, intensity_source="x")
    assert not (tmp_path / "run").exists()


def test_region_auto_only_from_explicit_configuration():
    settings = resolve_settings("auto", environ={"GREENTRACK_REGION": "FR"})
    assert settings is not None and settings.intensity.region == "FR"
    assert settings.how_chosen == "$GREENTRACK_REGION"
    with pytest.raises(ValueError, match="GREENTRACK_REGION, which is not set"):
        resolve_settings("auto", environ={})


def test_explicit_intensity_on_a_run(tmp_path, clock):
    with greentrack.track(
        tmp_path / "run",
        meters=gpu_cpu_meters(clock),
        clock=clock,
        background=False,
        intensity=412.0,
        intensity_source="supplier 2025",
    ) as run:
        run_for(run, clock, 3.6)
    s = run.summary()
    assert s.carbon["source"] == "supplier 2025 (user; as stated by the user)"
    assert s.carbon["gco2e_per_kwh"]["low"] == s.carbon["gco2e_per_kwh"]["high"] == 412.0
    assert s.account.co2e_g.value == pytest.approx(290.0 * 3.6 / 3.6e6 * 412.0)


def test_cli_run_refuses_bad_pue(tmp_path):
    marker = tmp_path / "ran"
    proc = subprocess.run(
        [
            *GT,
            "run",
            "--run-dir",
            str(tmp_path / "r"),
            "--region",
            "DE",
            "--pue",
            "0.5",
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in err
    assert "--pue" in err and "from 1 to 5" in err and "'0.5'" in err
    assert not marker.exists()


def test_cli_regions():
    ok = subprocess.run([*GT, "regions", "ontario"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("CA-ON")
    bad = subprocess.run([*GT, "regions", "germny"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "closest: DE" in bad.stderr


def test_cli_whatif_on_the_gb_series(tmp_path):
    series = IntensitySeries.gb_example()
    clock = ManualClock(start_unix_s=series.start_unix_s + 3600.0)  # 2023-03-14 02:00 UTC
    meter = FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(300.0))], clock)
    with greentrack.track(
        tmp_path / "run", meters=[meter], clock=clock, background=False, region="GB", pue=1.1
    ) as run:
        run_for(run, clock, 4 * 3600.0, step=1.0)
    csv_path = tmp_path / "gb.csv"
    csv_path.write_text(
        "timestamp,gco2e_per_kwh\n"
        + "\n".join(
            f"{t},{v}"
            for t, v in zip(
                [
                    __import__("greentrack.metadata", fromlist=["utc_iso"]).utc_iso(
                        series.start_unix_s + i * 1800
                    )
                    for i in range(len(series.values))
                ],
                series.values,
                strict=True,
            )
        )
        + "\n"
    )
    proc = subprocess.run(
        [
            *GT,
            "whatif",
            str(tmp_path / "run"),
            "--regions",
            "SE,PL",
            "--intensity-csv",
            str(csv_path),
            "--flexible-start",
            "24h",
            "--pause-resume",
            "2x",
            "--fill-gaps",
            "annual",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    fs, pr = out["flexible_start"], out["pause_resume"]
    assert set(fs) >= {"best_start", "co2e_kg", "saving"} and set(pr) >= {"co2e_kg", "saving"}
    assert 0 <= fs["saving"] < 1 and 0 <= pr["saving"] < 1
    assert fs["co2e_g"] <= fs["actual_co2e_g"]
    # the baseline of every counterfactual is the run's own CO2e, as its summary shows it
    assert fs["actual_co2e_g"] == pr["actual_co2e_g"] == out["co2e_g"]["value"]
    summary = json.loads(
        subprocess.run(
            [*GT, "summary", str(tmp_path / "run"), "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert summary["energy"]["it_kwh"] == out["energy_kwh_it"]
    assert out["carbon"]["series"]["energy_kwh"] == pytest.approx(1.2, rel=1e-6)  # IT energy
    assert out["carbon"]["series"]["source"] == csv_path.name  # the series is named
    assert [r["region"] for r in out["regions"] if not r["own_region"]] == ["SE", "PL"]
    assert out["energy_kwh_it_estimated"] == 0.0  # the fake GPU is a measured channel
    assert not (tmp_path / "run" / "whatif.json").exists()  # whatif never changes a run
    text = subprocess.run(
        [*GT, "whatif", str(tmp_path / "run"), "--flexible-start", "2h"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert text.returncode == 2 and "need a series: --intensity-csv FILE" in text.stderr
