"""Apple Silicon: IOReport through a fake sample source, powermetrics through a recorded-layout
plist stream. Neither needs a Mac."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters import apple
from greentrack.meters.apple import (
    IOREPORT_ENERGY,
    POWERMETRICS_ENERGY,
    AppleSocMeter,
    LibIOReport,
    PowermetricsWindows,
)

FIXTURE = Path(__file__).parent / "accelerator_fixtures" / "powermetrics_m2pro_3x1s.plist"

# IOReport "Energy Model" channels and the unit each reports in, as on an M2 Pro; the values
# below are cumulative counts in those units at successive samples.
UNITS = {
    "CPU Energy": "mJ",
    "PACC0_CPU": "mJ",  # a cluster: already inside "CPU Energy"
    "GPU Energy": "nJ",
    "GPU SRAM": "nJ",
    "ANE0": "mJ",
    "DRAM0": "mJ",
}
SCALE = {"mJ": 1e-3, "nJ": 1e-9}


class FakeIOReport:
    """An :class:`apple.IOReportSamples` that replays cumulative channel values."""

    def __init__(self, samples: list[dict[str, int]]) -> None:
        self.samples = samples
        self.taken = 0
        self.live: set[int] = set()
        self.closed = False

    def sample(self) -> int:
        i = min(self.taken, len(self.samples) - 1)
        self.taken += 1
        self.live.add(self.taken)
        return i * 1000 + self.taken  # a handle; the index is i

    def delta_j(self, before: Any, after: Any) -> dict[str, float]:
        a, b = self.samples[before // 1000], self.samples[after // 1000]
        return {k: (b[k] - a[k]) * SCALE[UNITS[k]] for k in UNITS}

    def release(self, sample: Any) -> None:
        self.live.discard(sample % 1000)

    def close(self) -> None:
        self.closed = True


def recorded() -> list[dict[str, int]]:
    start = {
        "CPU Energy": 10_000,
        "PACC0_CPU": 8_000,
        "GPU Energy": 5 * 10**9,
        "GPU SRAM": 10**8,
        "ANE0": 0,
        "DRAM0": 900,
    }
    steps = [
        {
            "CPU Energy": 2_400,
            "PACC0_CPU": 2_000,
            "GPU Energy": 850 * 10**6,
            "GPU SRAM": 10**6,
            "ANE0": 0,
            "DRAM0": 310,
        },
        {
            "CPU Energy": 3_100,
            "PACC0_CPU": 2_600,
            "GPU Energy": 4_200 * 10**6,
            "GPU SRAM": 4 * 10**6,
            "ANE0": 12,
            "DRAM0": 420,
        },
    ]
    out = [start]
    for step in steps:
        out.append({k: out[-1][k] + step[k] for k in start})
    return out


def test_ioreport_energy_per_subsystem_in_each_channels_unit():
    source = FakeIOReport(recorded())
    meter = AppleSocMeter(source, model="Apple M2 Pro")
    ids = [(c.id, c.component) for c in meter.channels]
    assert ids == [
        ("apple_cpu", "cpu"),
        ("apple_gpu", "gpu"),
        ("apple_ane", "gpu"),
        ("apple_dram", "dram"),
    ]
    ch = meter.channels[0]
    assert ch.energy_method == IOREPORT_ENERGY and ch.power_method is None
    assert ch.name == "Apple M2 Pro CPU" and ch.details["vendor"] == "Apple"
    assert "interval between reads" in ch.details["averaging_window"]
    assert meter.read_energy_j() == pytest.approx(
        {"apple_cpu": 2.4, "apple_gpu": 0.85, "apple_ane": 0.0, "apple_dram": 0.31}
    )
    assert meter.read_energy_j() == pytest.approx(
        {"apple_cpu": 5.5, "apple_gpu": 5.05, "apple_ane": 0.012, "apple_dram": 0.73}
    )  # the cluster (PACC0_CPU) and the GPU's SRAM are inside the totals: not added
    meter.close()
    assert source.closed and len(source.live) <= 1


def test_powermetrics_energy_is_the_sum_of_its_windows_never_the_last_sample():
    data = FIXTURE.read_bytes()
    windows = PowermetricsWindows()
    for i in range(0, len(data), 700):  # a stream arrives in pieces that split documents
        windows.feed(data[i : i + 700])
    assert windows.windows == 3
    assert windows.covered_s == pytest.approx(3.004634)
    assert windows.totals_j == pytest.approx({"cpu": 8.405, "gpu": 9.44, "ane": 0.012})
    last_window_as_average = 4.390 * windows.covered_s  # CodeCarbon #985's error
    assert abs(windows.totals_j["gpu"] - last_window_as_average) > 3.0


def test_powermetrics_meter_reads_the_windows_so_far():
    windows = PowermetricsWindows()
    meter = AppleSocMeter(powermetrics=windows, model="Apple M2 Pro", window_ms=1000)
    assert [c.id for c in meter.channels] == ["apple_cpu", "apple_gpu", "apple_ane"]
    ch = meter.channels[1]
    assert ch.energy_method == POWERMETRICS_ENERGY
    assert ch.details["averaging_window"] == "powermetrics windows of 1000 ms"
    assert meter.read_energy_j() == {"apple_cpu": 0.0, "apple_gpu": 0.0, "apple_ane": 0.0}
    first, rest = FIXTURE.read_bytes().split(b"\x00", 1)
    windows.feed(first + b"\x00")
    assert meter.read_energy_j() == pytest.approx(
        {"apple_cpu": 2.41, "apple_gpu": 0.85, "apple_ane": 0}
    )
    windows.feed(rest)
    assert meter.read_energy_j()["apple_gpu"] == pytest.approx(9.44)


def test_power_only_window_is_integrated_over_its_elapsed_time():
    import plistlib

    windows = PowermetricsWindows()
    doc = {"elapsed_ns": 500_000_000, "processor": {"cpu_power": 3000.0, "gpu_power": 800.0}}
    windows.feed(plistlib.dumps(doc) + b"\x00")
    assert windows.totals_j == pytest.approx({"cpu": 1.5, "gpu": 0.4})


def test_damaged_window_is_a_meter_error():
    windows = PowermetricsWindows()
    with pytest.raises(MeterError, match="unreadable window"):
        windows.feed(b"<?xml version='1.0'?><plist><dict><key>elapsed_ns</key>\x00")


@pytest.mark.skipif(sys.platform == "darwin", reason="off Apple Silicon only")
def test_ioreport_is_unavailable_off_apple_silicon_and_powermetrics_needs_root(monkeypatch):
    with pytest.raises(MeterUnavailableError, match="macOS on Apple Silicon only"):
        LibIOReport()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(MeterUnavailableError, match="powermetrics, the alternative, needs root"):
        AppleSocMeter()
    assert not apple.apple_silicon()
