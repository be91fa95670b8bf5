"""`greentrack estimate`: Patterson et al. 2021 accounting against hand-computed cases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from greentrack.analysis.estimate import estimate, processor, sensitivity
from greentrack.carbon.intensity import resolve_region

GT = [sys.executable, "-m", "greentrack", "estimate"]


def test_hand_computed():
    e = estimate(count=8, power_w=300.0, hours=24.0, pue=1.1, intensity=400.0)
    # 8 x 300 W x 24 h = 57.6 kWh; x 1.1 = 63.36 kWh; x 400 g/kWh = 25.344 kg
    assert e.energy_kwh_it == pytest.approx(57.6)
    assert e.energy_kwh == pytest.approx(63.36)
    assert e.co2e_kg == pytest.approx(25.344)


def test_reproduces_patterson_gpt3_row():
    # Patterson et al. 2021, Table 4, GPT-3: 10,000 V100, 14.8 days, 330 W average, PUE 1.10,
    # 0.429 kgCO2e/kWh -> 1,287 MWh and 552 tCO2e (their day count is rounded)
    e = estimate(
        count=10_000,
        power_w=330.0,
        hours=14.8 * 24,
        pue=1.1,
        intensity=429.0,
        intensity_source="Patterson et al. 2021",
    )
    assert e.energy_kwh / 1000 == pytest.approx(1287, rel=0.005)
    assert e.co2e_kg / 1000 == pytest.approx(552, rel=0.005)


def test_processor_power_and_flops():
    v100 = processor("V100-SXM2")
    e = estimate(count=4, processor_key="v100-sxm2", hours=10.0)
    assert e.power_w_per_processor == v100.measured_avg_w == 325.0
    assert "Patterson" in e.power_basis and e.co2e_kg is None and e.pue == 1.0
    a100 = estimate(count=2, processor_key="a100-sxm4-40gb", hours=1.0)
    assert a100.power_w_per_processor == 400.0 and "upper bound" in a100.power_basis
    f = estimate(
        count=8,
        processor_key="a100-sxm4-40gb",
        flops=8 * 312e12 * 0.5 * 3600 * 10,
        utilization=0.5,
        region="DE",
    )
    assert f.hours == pytest.approx(10.0)
    assert f.co2e_kg == pytest.approx(
        8 * 400 * 10 / 1000 * resolve_region("DE").gco2e_per_kwh / 1000
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0, "power_w": 1.0, "hours": 1.0}, "--count"),
        ({"count": 1, "hours": 1.0}, "--power-w"),
        ({"count": 1, "power_w": 1.0}, "exactly one of --hours or --flops"),
        ({"count": 1, "processor_key": "a100-sxm4-40gb", "flops": 1e20}, "--utilization"),
        ({"count": 1, "processor_key": "h100-sxm", "hours": 1.0}, "closest: h100-sxm5-80gb"),
        ({"count": 1, "power_w": 100.0, "hours": 1.0, "pue": 0.7}, "is not a PUE"),
    ],
)
def test_errors_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate(**kwargs)


def test_sensitivity_shows_the_levers():
    e = estimate(
        count=8,
        processor_key="v100-sxm2",
        flops=1e21,
        utilization=0.3,
        region="US-CA",
        pue="google",
    )
    rows = sensitivity(e, flops=1e21, utilization=0.3)
    levers = {r.lever for r in rows}
    assert levers == {"region", "PUE", "accelerator"}
    region = [r.factor_vs_base for r in rows if r.lever == "region"]
    assert max(region) / min(region) > 5  # location: the 5-10x of Patterson et al.
    pue = [r.factor_vs_base for r in rows if r.lever == "PUE"]
    assert max(pue) / min(pue) == pytest.approx(1.63 / 1.10)
    same = next(r for r in rows if r.lever == "accelerator" and r.setting.startswith("v100-sxm2"))
    assert same.factor_vs_base == pytest.approx(1.0)


def test_cli_json_and_yaml(tmp_path):
    out = subprocess.run(
        [
            *GT,
            "--count",
            "8",
            "--power-w",
            "300",
            "--hours",
            "24",
            "--pue",
            "1.1",
            "--intensity",
            "400",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["energy_kwh"] == pytest.approx(63.36) and data["co2e_kg"] == pytest.approx(25.344)
    assert data["estimated"] is True
    cfg = tmp_path / "plan.yaml"
    cfg.write_text("count: 8\nprocessor: a100-sxm4-40gb\nhours: 24\nregion: FR\npue: google\n")
    text = subprocess.run(
        [*GT, "--config", str(cfg), "--hours", "12", "--sensitivity"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert text.startswith("estimate (not a measurement): 42.2 kWh")  # 8x400 Wx12 hx1.1
    assert "sensitivity" in text and "uptime-2024" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("count: 8\nwatts: 300\n")
    proc = subprocess.run([*GT, "--config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown keys ['watts']" in proc.stderr
    listing = subprocess.run([*GT, "--list-processors"], capture_output=True, text=True, check=True)
    assert "h100-sxm5-80gb" in listing.stdout
