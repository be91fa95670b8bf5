"""NVIDIA Jetson: INA3221 board rails on fake sysfs trees laid out as Jetson Linux lays them."""

from __future__ import annotations

import pytest

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.jetson import RAIL_POWER, RAIL_POWER_FILE, JetsonMeter
from tests.sysfs_fakes import FakeSysfs


@pytest.fixture
def tree(tmp_path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sys")


def orin_nano(tree: FakeSysfs):
    """Orin Nano: VDD_IN (module input), VDD_CPU_GPU_CV, VDD_SOC on one INA3221."""
    tree.devicetree_model("NVIDIA Jetson Orin Nano Developer Kit")
    return tree.ina3221(
        "1-0040",
        {1: ("VDD_IN", 5000, 1400), 2: ("VDD_CPU_GPU_CV", 5000, 600), 3: ("VDD_SOC", 5000, 300)},
    )


def test_module_input_is_the_one_channel_and_the_cpu_is_inside_it(tree):
    mon = orin_nano(tree)
    meter = JetsonMeter(tree.root, environ={})
    (ch,) = meter.channels
    assert (ch.id, ch.component, ch.source) == ("jetson_vdd_in", "gpu", "measured")
    assert ch.name == "NVIDIA Jetson Orin Nano Developer Kit VDD_IN board rail (whole module input)"
    assert (ch.energy_method, ch.power_method) == (None, RAIL_POWER)
    assert "board rail" in ch.details["scope"]
    assert ch.details["rails_inside"] == ["VDD_CPU_GPU_CV", "VDD_SOC"]
    assert meter.covers == {"cpu": "VDD_IN", "dram": "VDD_IN"}
    assert "inside VDD_IN" in meter.not_counted["VDD_SOC"]
    assert meter.read_power_w() == {"jetson_vdd_in": pytest.approx(7.0)}  # 5000 mV x 1400 mA
    FakeSysfs.set(mon / "curr1_input", 2000)
    assert meter.read_power_w() == {"jetson_vdd_in": pytest.approx(10.0)}
    assert meter.read_energy_j() == {}


def test_agx_orin_rails_add_up_to_the_module(tree):
    tree.devicetree_model("NVIDIA Jetson AGX Orin Developer Kit")
    tree.ina3221(
        "1-0040",
        {
            1: ("VDD_GPU_SOC", 5000, 3000),
            2: ("VDD_CPU_CV", 5000, 1000),
            3: ("VIN_SYS_5V0", 5000, 400),
        },
    )
    tree.ina3221("1-0041", {1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 5000, 200), 3: ("NC", 0, 0)})
    meter = JetsonMeter(tree.root, environ={})
    got = {c.id: c.component for c in meter.channels}
    assert got == {
        "jetson_vdd_gpu_soc": "gpu",
        "jetson_vdd_cpu_cv": "cpu",
        "jetson_vin_sys_5v0": "gpu",
        "jetson_vddq_vdd2_1v8ao": "dram",
    }
    assert sum(meter.read_power_w().values()) == pytest.approx(5 * (3 + 1 + 0.4 + 0.2))


def test_combined_cpu_gpu_rail_says_so(tree):
    tree.ina3221("1-0040", {2: ("VDD_CPU_GPU_CV", 5000, 600), 3: ("VDD_SOC", 5000, 300)})
    meter = JetsonMeter(tree.root, environ={})
    assert meter.covers == {"cpu": "VDD_CPU_GPU_CV"}
    (cpu_gpu, soc) = meter.channels
    assert "one rail for the CPU and GPU" in cpu_gpu.details["note"]
    assert (cpu_gpu.component, soc.component) == ("gpu", "gpu")
    assert cpu_gpu.name == "NVIDIA Jetson VDD_CPU_GPU_CV board rail"  # no model in the tree


def test_carrier_board_rails_are_outside_the_module(tree):
    tree.ina3221(
        "0-0040",
        {1: ("VDD_IN", 19000, 500), 2: ("VDD_GPU", 19000, 100), 3: ("VDD_CPU", 19000, 100)},
    )
    tree.ina3221("0-0042", {1: ("VDD_MUX", 19000, 200), 2: ("VDD_5V_IO_SYS", 5000, 100)})
    meter = JetsonMeter(tree.root, environ={})
    assert [c.id for c in meter.channels] == ["jetson_vdd_in"]
    assert meter.not_counted["VDD_MUX"] == "carrier-board rail, outside the module"


def test_power_file_in_microwatts_and_disabled_rails(tree):
    mon = tree.ina3221("1-0040", {1: ("VDD_IN", 5000, 1000), 2: ("VDD_SOC", 5000, 10)})
    FakeSysfs.set(mon / "power1_input", 4_900_000)
    FakeSysfs.set(mon / "in2_enable", 0)
    meter = JetsonMeter(tree.root, environ={})
    (ch,) = meter.channels
    assert ch.power_method == RAIL_POWER_FILE
    assert meter.read_power_w() == {"jetson_vdd_in": pytest.approx(4.9)}
    assert "VDD_SOC" not in meter.not_counted


def test_no_rails_and_unreadable_rails(tree):
    with pytest.raises(MeterUnavailableError, match="no INA3221 power rails"):
        JetsonMeter(tree.root, environ={})
    mon = orin_nano(tree)
    meter = JetsonMeter(tree.root, environ={})
    (mon / "curr1_input").unlink()
    with pytest.raises(MeterError, match="jetson_vdd_in: cannot read rail VDD_IN"):
        meter.read_power_w()
