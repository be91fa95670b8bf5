"""Intel GPUs: the xe and i915 hwmon energy counters, on fake sysfs trees laid out as the real."""

from __future__ import annotations

from pathlib import Path

import pytest

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters import sysfs
from greentrack.meters.intel import (
    CARD_ENERGY,
    PACKAGE_ENERGY,
    IntelGpuMeter,
    XpuDevice,
    level_zero_devices,
)
from tests.sysfs_fakes import FakeSysfs

# an excerpt of the PCI ID database, in its own format (vendor line, tab, device line)
PCI_IDS = """\
# pci.ids excerpt
8086  Intel Corporation
\t0bd5  Ponte Vecchio XT (2 Tile) [Data Center GPU Max 1550]
\t56a0  DG2 [Arc A770]
\ta7a0  Raptor Lake-P [Iris Xe Graphics]
1002  Advanced Micro Devices, Inc. [AMD/ATI]
\t740c  Aldebaran/MI200 [Instinct MI250X/MI250]
C 03  Display controller
"""


@pytest.fixture(autouse=True)
def pci_ids(tmp_path, monkeypatch):
    path = tmp_path / "pci.ids"
    path.write_text(PCI_IDS)
    monkeypatch.setattr(sysfs, "pci_ids_paths", lambda: (path,))


@pytest.fixture
def tree(tmp_path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sys")


def arc_workstation(tree: FakeSysfs, energy_uj: int = 5_000_000) -> Path:
    """An integrated Iris Xe (card0, no hwmon) and an Arc A770 on i915 (card1)."""
    igpu = tree.pci_device("0000:00:02.0", "i915", "8086:a7a0")
    tree.drm_card(0, igpu)
    arc = tree.pci_device("0000:03:00.0", "i915", "8086:56a0")
    tree.drm_card(1, arc)
    return tree.hwmon(
        arc, "i915", energy1_input=energy_uj, power1_max=190_000_000, power1_rated_max=225_000_000
    )


def test_arc_on_i915_counts_its_card_and_explains_the_igpu(tree):
    mon = arc_workstation(tree)
    meter = IntelGpuMeter(tree.root, environ={})
    (ch,) = meter.channels
    assert (ch.id, ch.component, ch.source) == ("intel1", "gpu", "measured")
    assert ch.name == "Intel DG2 [Arc A770] [8086:56a0]"
    assert (ch.energy_method, ch.power_method) == (CARD_ENERGY, None)
    assert ch.details["vendor"] == "Intel" and ch.details["driver"] == "i915"
    assert ch.details["power_limit_w"] == 225.0 and ch.details["uuid"] == "PCI-0000:03:00.0"
    assert "integrated GPU" in meter.not_counted["intel0"]
    assert "RAPL" in meter.not_counted["intel0"]
    tree.set(mon / "energy1_input", 5_000_000 + 2_500_000)  # 2.5 J later
    assert meter.read_energy_j() == {"intel1": pytest.approx(2.5)}
    assert meter.read_power_w() == {}


def test_counter_restart_after_driver_reload_is_not_negative(tree):
    mon = arc_workstation(tree, energy_uj=900_000_000)
    meter = IntelGpuMeter(tree.root, environ={})
    tree.set(mon / "energy1_input", 901_000_000)
    assert meter.read_energy_j()["intel1"] == pytest.approx(1.0)
    tree.set(mon / "energy1_input", 300_000)  # the accumulator restarted at 0: 0.3 J since
    assert meter.read_energy_j()["intel1"] == pytest.approx(1.3)
    tree.set(mon / "energy1_input", 1_300_000)
    assert meter.read_energy_j()["intel1"] == pytest.approx(2.3)


def test_counter_that_runs_many_times_past_a_32_bit_register_stays_exact(tree):
    # the driver widens its 32-bit register to 63 bits: the file's value keeps growing
    start = 2**40
    mon = arc_workstation(tree, energy_uj=start)
    meter = IntelGpuMeter(tree.root, environ={})
    total = 0
    for step in (2**32 + 7, 3 * 2**32, 11):
        total += step
        tree.set(mon / "energy1_input", start + total)
        assert meter.read_energy_j()["intel1"] == pytest.approx(total / 1e6)


def test_xe_card_counter_preferred_package_only_labelled(tree):
    a = tree.pci_device("0000:3a:00.0", "xe", "8086:0bd5")
    tree.drm_card(0, a)
    (a / "tile0").mkdir()
    (a / "tile1").mkdir()
    tree.hwmon(a, "xe", energy1_input=10, energy2_input=5)
    b = tree.pci_device("0000:9a:00.0", "xe", "8086:0bd5")
    tree.drm_card(1, b)
    (b / "tile0").mkdir()
    (b / "tile1").mkdir()
    tree.hwmon(b, "xe", energy2_input=7)
    meter = IntelGpuMeter(tree.root, environ={})
    card, package = meter.channels
    assert card.energy_method == CARD_ENERGY and card.details["scope"] == "card"
    assert package.energy_method == PACKAGE_ENERGY
    assert "package" in package.details["scope"]
    assert card.details["stacks"] == 2 and meter.devices == 4  # FLAT: a device per stack


def test_i915_per_tile_hwmons_are_recorded_not_counted(tree):
    a = tree.pci_device("0000:3a:00.0", "i915", "8086:0bd5")
    card = tree.drm_card(0, a)
    for gt in ("gt0", "gt1"):
        (card / "gt" / gt).mkdir(parents=True)
    tree.hwmon(a, "i915", energy1_input=100)
    tree.hwmon(a, "i915_gt0", energy1_input=40)
    tree.hwmon(a, "i915_gt1", energy1_input=60)
    meter = IntelGpuMeter(tree.root, environ={})
    (ch,) = meter.channels
    assert ch.details["tile_hwmons"] == ["i915_gt0", "i915_gt1"]
    assert ch.details["stacks"] == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [(0, 0), (0, 1), (1, 0), (1, 1)]),
        ({"ZE_AFFINITY_MASK": "3,1"}, [(0, 1), (1, 1)]),  # kept in their own order
        ({"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE"}, [(0, None), (1, None)]),
        ({"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE", "ZE_AFFINITY_MASK": "1.1"}, [(1, None)]),
        ({"ZE_FLAT_DEVICE_HIERARCHY": "COMBINED", "ZE_AFFINITY_MASK": "2"}, [(1, 0)]),
    ],
)
def test_level_zero_devices(env, expected):
    assert level_zero_devices([2, 2], env) == [XpuDevice(c, s) for c, s in expected]


def test_invalid_affinity_entry_warns_and_is_ignored():
    with pytest.warns(UserWarning, match="'9' matches no Intel GPU"):
        assert level_zero_devices([1, 1], {"ZE_AFFINITY_MASK": "9,1"}) == [XpuDevice(1, 0)]


def test_rank_measures_the_card_of_its_stack(tree):
    for i, slot in enumerate(("0000:3a:00.0", "0000:9a:00.0")):
        dev = tree.pci_device(slot, "xe", "8086:0bd5")
        tree.drm_card(i, dev)
        (dev / "tile0").mkdir()
        (dev / "tile1").mkdir()
        tree.hwmon(dev, "xe", energy1_input=1)
    meter = IntelGpuMeter(tree.root, device_indices=[3], environ={})
    (ch,) = meter.channels
    assert ch.id == "intel1" and ch.details["stacks_used"] == [1]
    assert "measured whole" in ch.details["note"]
    with pytest.raises(MeterUnavailableError, match=r"indices \[4\] out of range.*sees 4"):
        IntelGpuMeter(tree.root, device_indices=[4], environ={})


def test_sysfs_root_from_the_environment(tree):
    arc_workstation(tree)
    meter = IntelGpuMeter(environ={"GREENTRACK_SYSFS_ROOT": str(tree.root)})
    assert [c.id for c in meter.channels] == ["intel1"]
    with pytest.raises(ValueError, match="GREENTRACK_SYSFS_ROOT='/nonexistent' is not a dir"):
        IntelGpuMeter(environ={"GREENTRACK_SYSFS_ROOT": "/nonexistent"})


def test_nothing_to_measure_says_why(tree):
    igpu = tree.pci_device("0000:00:02.0", "i915", "8086:a7a0")
    tree.drm_card(0, igpu)
    with pytest.raises(MeterUnavailableError, match="integrated GPU"):
        IntelGpuMeter(tree.root, environ={})
    with pytest.raises(MeterUnavailableError, match="no Intel GPU"):
        IntelGpuMeter(tree.root / "devices", environ={})


def test_vanished_counter_is_a_meter_error(tree):
    mon = arc_workstation(tree)
    meter = IntelGpuMeter(tree.root, environ={})
    (mon / "energy1_input").unlink()
    with pytest.raises(MeterError, match="intel1: cannot read"):
        meter.read_energy_j()
