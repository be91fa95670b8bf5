"""`greentrack devices` and discovery: what is measured, and why not where it is not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import MeterUnavailableError
from greentrack.meters import rapl
from greentrack.meters.fake import FakeGpu, FakeNvml


def _statuses(**kw):
    meters, statuses = discover(DiscoveryOptions(**kw))
    for m in meters:
        m.close()
    return {(s.component, s.status): s.detail for s in statuses}, meters


def test_gpu_and_rapl_measured(powercap, make_nvml):
    powercap.package(0)
    got, meters = _statuses(nvml=make_nvml(2), powercap_root=powercap.root, environ={})
    assert [c.id for m in meters for c in m.channels] == ["gpu0", "gpu1", "cpu0", "dram0"]
    assert "nvml-total-energy-counter" in got[("gpu", "measured")]
    assert ("cpu", "measured") in got and ("dram", "measured") in got


def test_no_nvml_and_no_powercap_in_container(tmp_path, clock, monkeypatch):
    nvml = FakeNvml([FakeGpu()], clock, init_error=FakeNvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setattr(rapl.Path, "exists", lambda self: str(self) == "/.dockerenv")
    got, _ = _statuses(nvml=nvml, powercap_root=tmp_path / "absent", environ={}, cpu_tdp_w=None)
    assert "libnvidia-ml.so was not found" in got[("gpu", "not counted")]
    cpu = got[("cpu", "estimated")]
    assert "inside a container" in cpu and "-v /sys/class/powercap" in cpu


def test_permission_denied_gives_fix_and_falls_back_to_estimate(powercap, make_nvml, monkeypatch):
    powercap.package(0)
    real = rapl._read_text
    monkeypatch.setattr(
        rapl,
        "_read_text",
        lambda p: (
            (_ for _ in ()).throw(PermissionError(13, "denied"))
            if p.name == "energy_uj"
            else real(p)
        ),
    )
    got, meters = _statuses(
        nvml=make_nvml(0), powercap_root=powercap.root, environ={}, cpu_tdp_w=65.0
    )
    assert "sudo chmod o+r" in got[("cpu", "estimated")]
    assert "TDP 65 W" in got[("cpu", "estimated")]
    assert [c.source for m in meters for c in m.channels] == ["estimated"]
    assert "dram_w_per_gb=0.375" in got[("dram", "not counted")]


def test_tdp_from_environment(powercap, make_nvml):
    got, _ = _statuses(
        nvml=make_nvml(0),
        powercap_root=powercap.root / "none",
        environ={"GREENTRACK_CPU_TDP_W": "42"},
    )
    assert "TDP 42 W" in got[("cpu", "estimated")]
    with pytest.raises(ValueError, match="GREENTRACK_CPU_TDP_W='lots' is not a number"):
        _statuses(
            nvml=make_nvml(0),
            powercap_root=powercap.root / "none",
            environ={"GREENTRACK_CPU_TDP_W": "lots"},
        )


def test_required_component_missing_raises(powercap, make_nvml):
    powercap.package(0)
    with pytest.raises(MeterUnavailableError, match="gpu energy was required but no GPU measured"):
        discover(
            DiscoveryOptions(
                nvml=make_nvml(0), powercap_root=powercap.root, environ={}, require=("gpu",)
            )
        )
    with pytest.raises(ValueError, match="require accepts"):
        DiscoveryOptions(require=("tpu",))


def test_devices_cli_on_this_machine():
    proc = subprocess.run(
        [sys.executable, "-m", "greentrack", "devices", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    components = {c["component"] for c in data["components"]}
    assert {"gpu", "cpu", "dram"} <= components
    for c in data["components"]:
        assert c["status"] in {"measured", "estimated", "not counted"} and c["detail"]
    text = subprocess.run(
        [sys.executable, "-m", "greentrack", "devices"], capture_output=True, text=True, timeout=60
    ).stdout
    assert text.startswith("greentrack devices")
