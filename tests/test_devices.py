"""`greentrack devices` and discovery: what is measured, and why not where it is not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import MeterUnavailableError
from greentrack.launcher import RankInfo
from greentrack.meters import rapl
from greentrack.meters.fake import FakeGpu, FakeMigDevice, FakeNvml
from tests.sysfs_fakes import FakeSysfs


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


# --- every accelerator: fake trees at the OS boundary -----------------------------------------


def _accelerator_tree(tree: FakeSysfs) -> None:
    """Two AMD Radeon PRO cards (amdgpu hwmon) and an Intel Arc A770 (i915 hwmon)."""
    for i, slot in enumerate(("0000:03:00.0", "0000:43:00.0")):
        dev = tree.pci_device(slot, "amdgpu", "1002:7448", gpu_busy_percent=40)
        tree.drm_card(i, dev)
        tree.hwmon(dev, "amdgpu", power1_input=(150 + 50 * i) * 1_000_000)
    arc = tree.pci_device("0000:83:00.0", "i915", "8086:56a0")
    tree.drm_card(2, arc)
    tree.hwmon(arc, "i915", energy1_input=1_000_000)


def _gpu_lines(statuses):
    return [s for s in statuses if s.component == "gpu"]


def test_amd_and_intel_found_with_vendor_model_driver_method(tmp_path, make_nvml):
    tree = FakeSysfs(tmp_path / "sys")
    _accelerator_tree(tree)
    meters, statuses = discover(
        DiscoveryOptions(
            nvml=make_nvml(0), sysfs_root=tree.root, amdsmi=False, environ={}, cpu=False
        )
    )
    measured = [s for s in _gpu_lines(statuses) if s.status == "measured"]
    assert [s.vendor for s in measured] == ["AMD", "AMD", "Intel"]
    amd = measured[0]
    assert amd.method == "integral of amdgpu-hwmon-power1_input" and amd.driver == "amdgpu"
    assert (
        amd.model.startswith("AMD ") and "read through amdgpu hwmon: amdsmi disabled" in amd.detail
    )
    assert measured[2].method == "intel-hwmon-energy1_input" and measured[2].driver == "i915"
    assert {"vendor", "model", "driver", "method"} <= set(amd.to_dict())
    nvidia = [s for s in _gpu_lines(statuses) if s.vendor == "NVIDIA"]
    assert nvidia and nvidia[0].status == "not counted"  # NVML present, no GPU visible
    ids = [c.id for m in meters for c in m.channels]
    assert ids == ["amd0", "amd1", "intel0"]
    for m in meters:
        m.close()


def test_each_rank_measures_its_device_under_each_vendors_variable(tmp_path, make_nvml):
    tree = FakeSysfs(tmp_path / "sys")
    _accelerator_tree(tree)
    second = tree.pci_device("0000:c3:00.0", "i915", "8086:56a0")
    tree.drm_card(3, second)
    tree.hwmon(second, "i915", energy1_input=5)
    rank = RankInfo(rank=1, local_rank=1, world_size=2, local_world_size=2)
    meters, _ = discover(
        DiscoveryOptions(
            nvml=make_nvml(0),
            sysfs_root=tree.root,
            amdsmi=False,
            environ={},
            cpu=False,
            rank=rank,
        )
    )
    slots = {c.id: c.details["pci_slot"] for m in meters for c in m.channels}
    assert slots == {"amd1": "0000:43:00.0", "intel1": "0000:c3:00.0"}
    env = {"HIP_VISIBLE_DEVICES": "1", "ZE_AFFINITY_MASK": "0"}  # one device each, visible
    meters, _ = discover(
        DiscoveryOptions(
            nvml=make_nvml(0),
            sysfs_root=tree.root,
            amdsmi=False,
            environ=env,
            cpu=False,
            rank=rank,
        )
    )
    slots = {c.id: c.details["pci_slot"] for m in meters for c in m.channels}
    assert slots == {"amd0": "0000:43:00.0", "intel0": "0000:83:00.0"}


def test_no_accelerator_anywhere_is_one_line_with_every_reason(tmp_path, clock):
    nvml = FakeNvml([FakeGpu()], clock, init_error=FakeNvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    tree = FakeSysfs(tmp_path / "sys")
    got, _ = _statuses(nvml=nvml, sysfs_root=tree.root, environ={}, cpu=False, kfd=tmp_path / "kfd")
    line = got[("gpu", "not counted")]
    assert line.startswith("no GPU measured: libnvidia-ml.so was not found")
    assert "no AMD GPU" in line and "no Intel GPU" in line


def test_mig_slice_in_devices(clock):
    gpu = FakeGpu(
        uuid="GPU-aaaa",
        mig_enabled=True,
        mig_devices=(
            FakeMigDevice("MIG-3333"),
            FakeMigDevice("MIG-4444", gpu_slices=4, compute_slices=4),
        ),
    )
    env = {"CUDA_VISIBLE_DEVICES": "MIG-4444"}
    got, _ = _statuses(nvml=FakeNvml([gpu], clock), environ=env, cpu=False, amdsmi=False)
    assert "x MIG compute-slice share (attribution)" in got[("gpu", "measured")]
    got, _ = _statuses(nvml=FakeNvml([gpu], clock), environ={}, cpu=False, amdsmi=False)
    assert "CUDA_VISIBLE_DEVICES=MIG-<uuid>" in got[("gpu", "not counted")]


def test_jetson_module_rail_covers_the_cpu_no_estimate(tmp_path, make_nvml):
    tree = FakeSysfs(tmp_path / "sys")
    tree.devicetree_model("NVIDIA Jetson Orin Nano Developer Kit")
    tree.ina3221(
        "1-0040",
        {1: ("VDD_IN", 5000, 1400), 2: ("VDD_CPU_GPU_CV", 5000, 600), 3: ("VDD_SOC", 5000, 300)},
    )
    meters, statuses = discover(
        DiscoveryOptions(nvml=make_nvml(0), sysfs_root=tree.root, environ={}, amdsmi=False)
    )
    assert [c.id for m in meters for c in m.channels] == ["jetson_vdd_in"]  # no CPU estimate
    got = {(s.component, s.status, s.detail) for s in statuses}
    assert ("cpu", "measured", "within the VDD_IN rail (jetson_vdd_in)") in got
    assert ("dram", "measured", "within the VDD_IN rail (jetson_vdd_in)") in got
    soc = next(s for s in statuses if "VDD_SOC" in s.detail)
    assert soc.status == "measured" and "inside VDD_IN" in soc.detail


def test_apple_soc_cpu_is_measured_no_estimate(make_nvml):
    from tests.test_meter_apple import FakeIOReport, recorded

    meters, statuses = discover(
        DiscoveryOptions(
            nvml=make_nvml(0),
            apple=FakeIOReport(recorded()),
            environ={},
            amdsmi=False,
            kfd=Path("/nonexistent/kfd"),
        )
    )
    assert [c.id for m in meters for c in m.channels] == [
        "apple_cpu",
        "apple_gpu",
        "apple_ane",
        "apple_dram",
    ]
    assert {(s.component, s.vendor) for s in statuses if s.status == "measured"} >= {
        ("cpu", "Apple"),
        ("gpu", "Apple"),
        ("dram", "Apple"),
    }


def test_sysfs_root_moves_rapl_too(tmp_path, make_nvml):
    tree = FakeSysfs(tmp_path / "sys")
    tree.rapl_package(0)
    env = {"GREENTRACK_SYSFS_ROOT": str(tree.root)}
    got, _ = _statuses(nvml=make_nvml(0), environ=env, amdsmi=False)
    assert ("cpu", "measured") in got and ("dram", "measured") in got


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.endswith("VISIBLE_DEVICES")}
    return subprocess.run(
        [sys.executable, "-m", "greentrack", "devices", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **env},
    )


def test_devices_cli_on_fake_trees(tmp_path):
    tree = FakeSysfs(tmp_path / "sys")
    _accelerator_tree(tree)
    root = {"GREENTRACK_SYSFS_ROOT": str(tree.root)}
    proc = _cli("--json", env=root)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    gpus = [c for c in data["components"] if c["component"] == "gpu"]
    measured = [(c["vendor"], c["driver"]) for c in gpus if c["status"] == "measured"]
    assert measured == [("AMD", "amdgpu"), ("AMD", "amdgpu"), ("Intel", "i915")]
    assert [c["id"] for c in data["channels"] if c["component"] == "gpu"] == [
        "amd0",
        "amd1",
        "intel0",
    ]
    hidden = json.loads(_cli("--json", env={**root, "HIP_VISIBLE_DEVICES": ""}).stdout)
    amd = [c for c in hidden["components"] if c.get("vendor") == "AMD"]
    assert [c["status"] for c in amd] == ["not counted"]
    assert "hide all" in amd[0]["detail"]
    text = _cli(env=root).stdout
    assert "intel0 Intel" in text and "vendor Intel, driver i915" in text
    bad = _cli(env={"GREENTRACK_SYSFS_ROOT": str(tmp_path / "missing")})
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "GREENTRACK_SYSFS_ROOT=" in bad.stderr


def test_short_track_run_on_a_fake_jetson_tree(tmp_path, clock, make_nvml):
    import greentrack
    from tests.helpers import run_for

    tree = FakeSysfs(tmp_path / "sys")
    tree.devicetree_model("NVIDIA Jetson Orin Nano Developer Kit")
    tree.ina3221("1-0040", {1: ("VDD_IN", 5000, 1400), 2: ("VDD_CPU_GPU_CV", 5000, 600)})
    with greentrack.track(
        tmp_path / "run",
        clock=clock,
        background=False,
        rank=None,
        nvml=make_nvml(0),
        sysfs_root=tree.root,
        amdsmi=False,
        sync=lambda: None,
    ) as run:
        run_for(run, clock, 10.0)
    loaded = greentrack.load_run(tmp_path / "run")
    (ch,) = loaded.channels
    assert ch["id"] == "jetson_vdd_in" and ch["details"]["rail"] == "VDD_IN"
    summary = greentrack.summarize(loaded)
    assert summary.measured_energy_j == pytest.approx(70.0, rel=1e-6)  # 7 W x 10 s
