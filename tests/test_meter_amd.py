"""AMD GPUs: a fake amdsmi shaped as AMD's published API, and fake amdgpu sysfs trees."""

from __future__ import annotations

import pytest

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters import amd as amd_module
from greentrack.meters.amd import (
    HWMON_ENERGY,
    HWMON_POWER,
    HWMON_POWER_AVERAGE,
    SHARED,
    SMI_ENERGY,
    SMI_POWER,
    open_amd,
)
from greentrack.meters.fake import PowerTrace
from greentrack.meters.fake_amdsmi import STATUS_INIT_ERROR, FakeAmdGpu, FakeAmdSmi
from tests.sysfs_fakes import FakeSysfs

MI250 = "AMD Instinct MI250X/MI250"


@pytest.fixture
def tree(tmp_path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sys")


def mi300x(i: int, watts: float = 300.0, **kw) -> FakeAmdGpu:
    return FakeAmdGpu(
        uuid=f"{i}aff74a1-0000-1000-80fa-00000000000{i}",
        bdf=f"0000:{0x05 + i * 0x20:02x}:00.0",
        asic_serial=f"0x5F3A9C0B1234567{i}",
        trace=PowerTrace.constant(watts),
        **kw,
    )


def ids(gpus) -> list[str]:
    return [m.channels[0].id for m in gpus.meters]


def test_energy_accumulator_times_resolution_and_current_power(tree, clock):
    smi = FakeAmdSmi([mi300x(0, 300.0), mi300x(1, 500.0)], clock)
    gpus = open_amd(tree.root, amdsmi=smi, environ={})
    assert gpus.backend == "amdsmi" and gpus.visible == 2 and ids(gpus) == ["amd0", "amd1"]
    ch = gpus.meters[0].channels[0]
    assert (ch.name, ch.component, ch.source) == ("AMD Instinct MI300X", "gpu", "measured")
    assert (ch.energy_method, ch.power_method) == (SMI_ENERGY, SMI_POWER)
    assert ch.details["counter_resolution_uj"] == 15.259
    assert ch.details["vendor"] == "AMD" and ch.details["driver"] == "amdgpu 6.8.5"
    assert ch.details["power_limit_w"] == 750.0
    clock.advance(10.0)
    energy = {k: v for m in gpus.meters for k, v in m.read_energy_j().items()}
    # the accumulator counts whole 15.259 uJ steps: exact to one step per read
    assert energy == {
        "amd0": pytest.approx(3000.0, abs=1e-4),
        "amd1": pytest.approx(5000.0, abs=1e-4),
    }
    assert gpus.meters[1].read_power_w() == {"amd1": 500.0}
    for m in gpus.meters:
        m.close()
    assert smi.initialized == 0  # shut down with the last meter


def test_mi250_dies_each_count_half_of_their_package_never_zero(tree, clock):
    # amd-smi order: package A = dies 0 (primary) + 1 (secondary); package B = 2 (secondary)
    # + 3 (primary): AMD's rocm-smi says the primary is "usually one above or below"
    dies = [
        FakeAmdGpu(
            market_name=MI250, uuid="a0", bdf="0000:c1:00.0", trace=PowerTrace.constant(400)
        ),
        FakeAmdGpu(market_name=MI250, uuid="a1", bdf="0000:c6:00.0", secondary=True),
        FakeAmdGpu(market_name=MI250, uuid="b0", bdf="0000:c9:00.0", secondary=True),
        FakeAmdGpu(
            market_name=MI250, uuid="b1", bdf="0000:ce:00.0", trace=PowerTrace.constant(200)
        ),
    ]
    gpus = open_amd(tree.root, amdsmi=FakeAmdSmi(dies, clock), environ={})
    channels = [m.channels[0] for m in gpus.meters]
    assert [c.id for c in channels] == ["amd0", "amd1", "amd2", "amd3"]
    assert all(c.energy_method == SMI_ENERGY + SHARED for c in channels)
    assert channels[1].details["package"]["reported_on"] == "a0"
    assert channels[2].details["package"]["reported_on"] == "b1"
    assert channels[1].details["power_limit_w"] == 375.0  # half of the package's cap
    clock.advance(2.0)
    energy = {k: v for m in gpus.meters for k, v in m.read_energy_j().items()}
    assert energy == {
        "amd0": pytest.approx(400.0, abs=1e-3),
        "amd1": pytest.approx(400.0, abs=1e-3),
        "amd2": pytest.approx(200.0, abs=1e-3),
        "amd3": pytest.approx(200.0, abs=1e-3),
    }
    assert sum(energy.values()) == pytest.approx(400 * 2 + 200 * 2, abs=1e-2)  # once
    assert gpus.meters[1].read_power_w() == {"amd1": 200.0}


def test_a_rank_on_the_secondary_die_counts_its_share(tree, clock):
    dies = [
        FakeAmdGpu(
            market_name=MI250, uuid="a0", bdf="0000:c1:00.0", trace=PowerTrace.constant(400)
        ),
        FakeAmdGpu(market_name=MI250, uuid="a1", bdf="0000:c6:00.0", secondary=True),
    ]
    gpus = open_amd(tree.root, amdsmi=FakeAmdSmi(dies, clock), environ={"HIP_VISIBLE_DEVICES": "1"})
    (meter,) = gpus.meters
    assert meter.channels[0].details["uuid"] == "a1"
    clock.advance(1.0)
    assert meter.read_energy_j()["amd0"] == pytest.approx(200.0, abs=1e-3)


def test_vm_guest_falls_back_to_hwmon_and_says_why(tree, clock):
    dev = tree.pci_device("0000:05:00.0", "amdgpu", "1002:74b5")
    tree.drm_card(0, dev)
    mon = tree.hwmon(dev, "amdgpu", power1_average=250_000_000, power1_cap=650_000_000)
    smi = FakeAmdSmi([mi300x(0, vm_guest=True)], clock)
    gpus = open_amd(tree.root, amdsmi=smi, environ={})
    (meter,) = gpus.meters
    ch = meter.channels[0]
    assert (ch.energy_method, ch.power_method) == (None, HWMON_POWER_AVERAGE)
    notes = " ".join(ch.details["notes"])
    assert "virtual machine guests" in notes and "hwmon files instead" in notes
    assert ch.details["backend"] == "amdgpu hwmon"
    assert meter.read_power_w() == {"amd0": 250.0}
    FakeSysfs.set(mon / "power1_average", 0)
    assert meter.read_power_w() == {"amd0": 0.0}  # gfx_activity of hwmon unknown: no flag


def test_vm_guest_without_hwmon_is_not_counted_with_the_reason(tree, clock):
    smi = FakeAmdSmi([mi300x(0, vm_guest=True)], clock)
    with pytest.raises(MeterUnavailableError, match="virtual machine guests"):
        open_amd(tree.root, amdsmi=smi, environ={})


def test_die_reading_zero_watts_while_busy_is_flagged(tree, clock):
    smi = FakeAmdSmi([mi300x(0, zero_watts=True)], clock)
    (meter,) = open_amd(tree.root, amdsmi=smi, environ={}).meters
    with pytest.raises(MeterError, match=r"amd0 AMD Instinct MI300X: it reads 0 W while 90% busy"):
        meter.read_power_w()
    smi.gpus[0].gfx_activity = 0  # idle: 0 W is a reading, not a failure
    assert meter.read_power_w() == {"amd0": 0.0}


def test_gpu_reset_restarts_the_count(tree, clock):
    smi = FakeAmdSmi([mi300x(0, 100.0)], clock)
    (meter,) = open_amd(tree.root, amdsmi=smi, environ={}).meters
    clock.advance(5.0)
    assert meter.read_energy_j()["amd0"] == pytest.approx(500.0, abs=1e-3)
    smi.gpus[0].counter_offset = 0  # the reset: the accumulator restarts from 0 ...
    clock.t = 0.0  # ... and the firmware's timestamp goes back
    clock.advance(1.0)  # 1 s at 100 W since the reset
    assert meter.read_energy_j()["amd0"] == pytest.approx(600.0, abs=1e-2)


def test_hip_order_from_enumeration_info_then_kfd_nodes(tree, clock):
    gpus = [mi300x(0, 100.0, hip_id=1, kfd_node=3), mi300x(1, 200.0, hip_id=0, kfd_node=2)]
    found = open_amd(tree.root, amdsmi=FakeAmdSmi(gpus, clock), environ={})
    assert [m.channels[0].details["uuid"][0] for m in found.meters] == ["1", "0"]
    older = open_amd(tree.root, amdsmi=FakeAmdSmi(gpus, clock, rocm_6_4=False), environ={})
    assert [m.channels[0].details["uuid"][0] for m in older.meters] == ["1", "0"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ROCR_VISIBLE_DEVICES": "1,2,3", "HIP_VISIBLE_DEVICES": "0"}, ["1"]),
        ({"ROCR_VISIBLE_DEVICES": "2,3"}, ["2", "3"]),
        ({"CUDA_VISIBLE_DEVICES": "3,0"}, ["3", "0"]),
        ({"HIP_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "2"}, ["1"]),
        ({"ROCR_VISIBLE_DEVICES": "GPU-5f3a9c0b12345672"}, ["2"]),  # the ASIC serial
        ({"HIP_VISIBLE_DEVICES": "GPU-3aff74a1-0000-1000-80fa-000000000003"}, ["3"]),
    ],
)
def test_visibility_variables(tree, clock, env, expected):
    smi = FakeAmdSmi([mi300x(i) for i in range(4)], clock)
    gpus = open_amd(tree.root, amdsmi=smi, environ=env)
    assert [m.channels[0].details["uuid"][0] for m in gpus.meters] == expected
    assert ids(gpus) == [f"amd{i}" for i in range(len(expected))]


def test_invalid_visibility_entry_stops_parsing_with_a_warning(tree, clock):
    smi = FakeAmdSmi([mi300x(i) for i in range(2)], clock)
    with pytest.warns(UserWarning, match="HIP_VISIBLE_DEVICES entry '7' matches no AMD GPU"):
        gpus = open_amd(tree.root, amdsmi=smi, environ={"HIP_VISIBLE_DEVICES": "1,7,0"})
    assert gpus.visible == 1


def test_rank_picks_its_device_among_the_visible(tree, clock):
    smi = FakeAmdSmi([mi300x(i) for i in range(4)], clock)
    gpus = open_amd(
        tree.root, amdsmi=smi, device_indices=[1], environ={"HIP_VISIBLE_DEVICES": "2,3"}
    )
    assert [m.channels[0].details["uuid"][0] for m in gpus.meters] == ["3"]
    assert gpus.visible == 2


def test_amdsmi_is_not_imported_without_amd_device_files(tree, tmp_path, monkeypatch):
    def must_not_import():
        raise AssertionError("amdsmi imported although no AMD device file exists")

    monkeypatch.setattr(amd_module, "load_amdsmi", must_not_import)
    with pytest.raises(MeterUnavailableError, match="no AMD GPU"):
        open_amd(tree.root, environ={}, kfd=tmp_path / "no-kfd")


def amd_hwmon_box(tree: FakeSysfs) -> list:
    """Two Radeon PRO W7900 cards whose KFD order is the reverse of their PCI order."""
    mons = []
    for i, slot in enumerate(("0000:03:00.0", "0000:43:00.0")):
        dev = tree.pci_device(
            slot, "amdgpu", "1002:7448", unique_id=f"00000000cafe000{i}", gpu_busy_percent=50
        )
        tree.drm_card(i, dev)
        mons.append(
            tree.hwmon(
                dev,
                "amdgpu",
                power1_input=(100 + 100 * i) * 1_000_000,
                power1_average=1,
                power1_cap=295_000_000,
            )
        )
    tree.kfd_node(0, gpu_id=0)
    tree.kfd_node(1, gpu_id=4321, render_minor=129)  # the card at 0000:43:00.0 first
    tree.kfd_node(2, gpu_id=8765, render_minor=128)
    return mons


def test_hwmon_when_amdsmi_is_missing(tree, monkeypatch):
    mons = amd_hwmon_box(tree)
    monkeypatch.setattr(amd_module, "load_amdsmi", lambda: (None, "amdsmi is not installed"))
    gpus = open_amd(tree.root, environ={}, kfd=tree.root / "absent")
    assert gpus.backend == "amdgpu hwmon: amdsmi is not installed"
    a, b = (m.channels[0] for m in gpus.meters)
    assert (a.details["pci_slot"], b.details["pci_slot"]) == ("0000:43:00.0", "0000:03:00.0")
    assert (a.energy_method, a.power_method) == (None, HWMON_POWER)
    assert a.details["power_limit_w"] == 295.0 and a.details["uuid"] == "GPU-00000000cafe0001"
    assert gpus.meters[0].read_power_w() == {"amd0": 200.0}  # microwatts to watts
    FakeSysfs.set(mons[1] / "power1_input", 0)
    with pytest.raises(MeterError, match="reads 0 W while 50% busy"):
        gpus.meters[0].read_power_w()
    env = {"ROCR_VISIBLE_DEVICES": "GPU-00000000cafe0000"}
    (only,) = open_amd(tree.root, amdsmi=False, environ=env).meters
    assert only.channels[0].details["pci_slot"] == "0000:03:00.0"


def test_hwmon_energy_counter_where_present(tree):
    dev = tree.pci_device("0000:03:00.0", "amdgpu", "1002:740f")
    tree.drm_card(0, dev)
    mon = tree.hwmon(dev, "amdgpu", energy1_input=7_000_000, power1_average=300_000_000)
    (meter,) = open_amd(tree.root, amdsmi=False, environ={}).meters
    ch = meter.channels[0]
    assert (ch.energy_method, ch.power_method) == (HWMON_ENERGY, HWMON_POWER_AVERAGE)
    FakeSysfs.set(mon / "energy1_input", 9_500_000)
    assert meter.read_energy_j() == {"amd0": pytest.approx(2.5)}


def test_hwmon_secondary_die_shares_its_neighbours_reading(tree):
    for i, (slot, watts) in enumerate((("0000:c1:00.0", 380), ("0000:c6:00.0", 0))):
        dev = tree.pci_device(slot, "amdgpu", "1002:740c", product_name="MI250X/MI250")
        tree.drm_card(i, dev)
        tree.hwmon(dev, "amdgpu", power1_average=watts * 1_000_000)
    gpus = open_amd(tree.root, amdsmi=False, environ={})
    a, b = gpus.meters
    assert b.channels[0].power_method == HWMON_POWER_AVERAGE + SHARED
    assert a.read_power_w() == {"amd0": 190.0} and b.read_power_w() == {"amd1": 190.0}


def test_amdsmi_that_fails_to_start_falls_back(tree, clock):
    amd_hwmon_box(tree)
    smi = FakeAmdSmi([mi300x(0)], clock, init_error=STATUS_INIT_ERROR)
    gpus = open_amd(tree.root, amdsmi=smi, environ={})
    assert gpus.backend.startswith("amdgpu hwmon: amdsmi failed (amdsmi error 18")
    assert len(gpus.meters) == 2


def test_read_failure_is_a_meter_error(tree, clock):
    smi = FakeAmdSmi([mi300x(0)], clock)
    (meter,) = open_amd(tree.root, amdsmi=smi, environ={}).meters
    smi.gpus[0].vm_guest = True  # the library starts refusing mid-run
    with pytest.raises(MeterError, match="amd0: energy read failed"):
        meter.read_energy_j()
    with pytest.raises(MeterError, match="amd0: power read failed"):
        meter.read_power_w()


def test_amdsmi_is_shut_down_when_the_rank_index_is_out_of_range(tree, clock):
    smi = FakeAmdSmi([mi300x(0)], clock)
    with pytest.raises(MeterUnavailableError, match=r"indices \[3\] out of range"):
        open_amd(tree.root, amdsmi=smi, device_indices=[3], environ={})
    assert smi.initialized == 0
