from __future__ import annotations

from pathlib import Path

import pytest

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters import rapl
from greentrack.meters.rapl import RaplMeter, wrapped_delta_uj


def test_two_sockets_with_dram(powercap):
    powercap.package(0, energy_uj=1_000_000)
    powercap.package(1, energy_uj=5_000_000)
    meter = RaplMeter(powercap.root)
    assert [(c.id, c.component) for c in meter.channels] == [
        ("cpu0", "cpu"),
        ("dram0", "dram"),
        ("cpu1", "cpu"),
        ("dram1", "dram"),
    ]
    assert all(c.source == "measured" and c.power_method is None for c in meter.channels)
    powercap.set("intel-rapl:0", 3_500_000)
    powercap.set("intel-rapl:1", 5_250_000)
    powercap.set("intel-rapl:0/intel-rapl:0:1", 400_000)
    assert meter.read_energy_j() == {"cpu0": 2.5, "dram0": 0.4, "cpu1": 0.25, "dram1": 0.0}


def test_wraparound_is_added_across_several_wraps(powercap):
    max_uj = 1_000_000
    powercap.package(0, dram=False, energy_uj=900_000, max_uj=max_uj)
    meter = RaplMeter(powercap.root)
    expected = 0
    raw = 900_000
    for step in (300_000, 800_000, 950_000, 100_000):  # three wraps, each read before the next
        new = (raw + step) % max_uj
        powercap.set("intel-rapl:0", new)
        expected += step
        raw = new
        assert meter.read_energy_j()["cpu0"] == pytest.approx(expected / 1e6)


def test_wrapped_delta():
    assert wrapped_delta_uj(10, 10, 100) == 0
    assert wrapped_delta_uj(90, 5, 100) == 15


def test_amd_style_tree_without_dram_and_skipped_zones(powercap):
    powercap.package(0, dram=False)
    powercap.zone("intel-rapl:1", "psys")
    powercap.zone("intel-rapl-mmio:0", "package-0")
    meter = RaplMeter(powercap.root)
    assert [c.id for c in meter.channels] == ["cpu0"]
    assert set(meter.skipped) == {"intel-rapl:1", "intel-rapl-mmio:0"}


def test_missing_root_explains(tmp_path):
    with pytest.raises(MeterUnavailableError, match="does not exist"):
        RaplMeter(tmp_path / "nope")


def test_no_package_zone(powercap):
    powercap.zone("intel-rapl:0", "psys")
    with pytest.raises(MeterUnavailableError, match=r"no RAPL package zone.*intel_rapl_common"):
        RaplMeter(powercap.root)


def test_unreadable_energy_gives_the_exact_fix(powercap, monkeypatch):
    powercap.package(0)
    real = rapl._read_text

    def denied(path: Path) -> str:  # root ignores file modes, so the OS call is faked
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl, "_read_text", denied)
    with pytest.raises(MeterUnavailableError) as info:
        RaplMeter(powercap.root)
    msg = str(info.value)
    assert "is not readable" in msg and "CVE-2020-8694" in msg
    assert "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in msg


def test_read_failure_mid_run_is_a_meter_error(powercap):
    powercap.package(0, dram=False)
    meter = RaplMeter(powercap.root)
    (powercap.root / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.raises(MeterError, match="cpu0"):
        meter.read_energy_j()
