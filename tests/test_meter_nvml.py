from __future__ import annotations

import sys

import pytest

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters import nvml as nvml_module
from greentrack.meters.fake import FakeGpu, FakeMigDevice, FakeNvml, PowerTrace
from greentrack.meters.nvml import (
    ENERGY_COUNTER,
    MIG_SHARE,
    POWER_INSTANT,
    POWER_USAGE,
    NvmlMeter,
    missing_driver,
)


def test_energy_counter_and_instant_power_follow_the_trace(clock, make_nvml):
    nvml = make_nvml(1, trace=PowerTrace([(2.0, 100.0), (2.0, 400.0)], repeat=True))
    clock.advance(8.0)  # the counter ran before the meter opened: only the delta counts
    meter = NvmlMeter(nvml, environ={})
    (ch,) = meter.channels
    assert (ch.id, ch.component, ch.source) == ("gpu0", "gpu", "measured")
    assert (ch.energy_method, ch.power_method) == (ENERGY_COUNTER, POWER_INSTANT)
    clock.advance(3.0)  # t = 8..11: 2 s at 100 W, 1 s at 400 W
    assert meter.read_energy_j() == {"gpu0": pytest.approx(600.0)}
    assert meter.read_power_w() == {"gpu0": 400.0}
    clock.advance(1.5)  # t = 12.5: 100 W again
    assert meter.read_power_w() == {"gpu0": 100.0}
    assert meter.read_energy_j()["gpu0"] == pytest.approx(600.0 + 400.0 + 50.0)
    meter.close()
    meter.close()  # idempotent
    assert nvml.initialized == 0


def test_metadata_records_uuid_driver_limit(make_nvml):
    meter = NvmlMeter(make_nvml(1), environ={})
    details = meter.channels[0].details
    assert details["uuid"].startswith("GPU-0000")
    assert details["driver"] == "570.86.15"
    assert details["power_limit_w"] == 700.0
    assert details["vendor"] == "NVIDIA"
    assert "mig" not in details


def test_falls_back_to_power_usage_and_labels_it(make_nvml):
    meter = NvmlMeter(make_nvml(1, has_power_instant=False), environ={})
    assert meter.channels[0].power_method == POWER_USAGE
    assert meter.read_power_w() == {"gpu0": 100.0}


def test_gpu_without_counter_integrates_power_and_says_so(make_nvml):
    meter = NvmlMeter(make_nvml(1, has_energy_counter=False), environ={})
    ch = meter.channels[0]
    assert ch.energy_method is None and ch.method == f"integral of {POWER_INSTANT}"
    assert "integral of sampled power" in ch.details["note"]
    assert meter.read_energy_j() == {}


def test_gpu_with_nothing_is_not_counted_never_zero(make_nvml):
    nvml = make_nvml(1, has_energy_counter=False, has_power_instant=False, has_power_usage=False)
    with pytest.raises(MeterUnavailableError, match="neither the energy counter nor power"):
        NvmlMeter(nvml, environ={})
    assert nvml.initialized == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is Linux's")
def test_no_driver_is_said_without_loading_nvml(tmp_path, monkeypatch):
    absent = str(tmp_path / "absent")
    reason = missing_driver([absent, str(tmp_path / "gone")])
    assert reason is not None and absent in reason and "--gpus all" in reason
    assert missing_driver([absent, str(tmp_path)]) is None  # one path is enough

    def must_not_load() -> None:
        raise AssertionError("pynvml loaded although no driver can be there")

    monkeypatch.setattr(nvml_module, "load_pynvml", must_not_load)
    monkeypatch.setattr(nvml_module, "missing_driver", lambda: reason)
    with pytest.raises(MeterUnavailableError, match="no NVIDIA driver"):
        NvmlMeter(environ={})


def test_nvml_missing_library_message_names_the_fix(clock):
    nvml = FakeNvml([FakeGpu()], clock, init_error=FakeNvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(MeterUnavailableError, match=r"libnvidia-ml\.so was not found.*--gpus all"):
        NvmlMeter(nvml, environ={})


def test_read_error_becomes_meter_error(clock, make_nvml):
    nvml = make_nvml(1)
    nvml.gpus[0].fail_power_between = (5.0, 6.0)
    meter = NvmlMeter(nvml, environ={})
    clock.advance(5.5)
    with pytest.raises(MeterError, match="gpu0"):
        meter.read_power_w()


@pytest.mark.filterwarnings("ignore:CUDA_VISIBLE_DEVICES entry")
@pytest.mark.parametrize(
    ("cvd", "expected"),
    [
        (None, ["gpu0", "gpu1", "gpu2"]),
        ("", []),
        ("2,0", ["gpu2", "gpu0"]),
        ("1, 2", ["gpu1", "gpu2"]),
        ("GPU-2222", ["gpu2"]),  # unique UUID prefix
        ("0,7,1", ["gpu0"]),  # CUDA stops at the first invalid entry
        ("-1,1", []),
        ("1,1", ["gpu1"]),
    ],
)
def test_cuda_visible_devices(make_nvml, cvd, expected):
    env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
    nvml = make_nvml(3)
    if not expected:
        with pytest.raises(MeterUnavailableError, match="no visible GPU"):
            NvmlMeter(nvml, environ=env)
        return
    meter = NvmlMeter(nvml, environ=env)
    assert [c.id for c in meter.channels] == expected


def test_invalid_cuda_visible_devices_entry_warns(make_nvml):
    with pytest.warns(UserWarning, match="'7' matches no GPU"):
        NvmlMeter(make_nvml(2), environ={"CUDA_VISIBLE_DEVICES": "0,7"})


def test_gpu_indices_select_among_visible(make_nvml):
    meter = NvmlMeter(make_nvml(4), gpu_indices=[1], environ={"CUDA_VISIBLE_DEVICES": "3,2"})
    assert [c.id for c in meter.channels] == ["gpu2"]
    with pytest.raises(MeterUnavailableError, match=r"gpu_indices \[5\] out of range.*sees 2"):
        NvmlMeter(make_nvml(4), gpu_indices=[5], environ={"CUDA_VISIBLE_DEVICES": "3,2"})


def a100_with_two_slices(**kw: object) -> FakeGpu:
    """An A100 in MIG mode with two MIG devices: 3g.20gb (3 of 7 compute slices) and
    4g.20gb (4 of 7), drawing 350 W as a whole."""
    spec: dict[str, object] = {
        "name": "NVIDIA A100-SXM4-40GB",
        "uuid": "GPU-aaaa",
        "trace": PowerTrace.constant(350.0),
        "mig_enabled": True,
        "mig_devices": (
            FakeMigDevice("MIG-3333", "NVIDIA A100-SXM4-40GB MIG 3g.20gb", 3, 3),
            FakeMigDevice("MIG-4444", "NVIDIA A100-SXM4-40GB MIG 4g.20gb", 4, 4),
        ),
        "power_limit_mw": 400_000,
    }
    return FakeGpu(**{**spec, **kw})  # type: ignore[arg-type]


def test_mig_slice_counts_its_share_of_the_gpu_labelled_as_attribution(clock):
    gpus = [a100_with_two_slices(), FakeGpu(uuid="GPU-bbbb")]
    meter = NvmlMeter(FakeNvml(gpus, clock), environ={"CUDA_VISIBLE_DEVICES": "MIG-3333"})
    (ch,) = meter.channels
    assert ch.id == "gpu0" and ch.name == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    assert ch.energy_method == ENERGY_COUNTER + MIG_SHARE
    assert ch.power_method == POWER_INSTANT + MIG_SHARE
    mig = ch.details["mig"]
    assert (mig["compute_slices"], mig["gpu_slices"]) == (3, 7)
    assert mig["share"] == pytest.approx(3 / 7) and "attribution" in mig["note"]
    assert ch.details["uuid"] == "MIG-3333" and ch.details["gpu_uuid"] == "GPU-aaaa"
    assert ch.details["power_limit_w"] == pytest.approx(400 * 3 / 7)
    clock.advance(7.0)
    assert meter.read_energy_j()["gpu0"] == pytest.approx(350.0 * 7 * 3 / 7)  # never the GPU
    assert meter.read_power_w()["gpu0"] == pytest.approx(150.0)
    assert meter.device_counters_j()["gpu0"][0] == "MIG-3333"


def test_two_slices_of_one_gpu_add_up_to_the_gpu_once(clock):
    nvml = FakeNvml([a100_with_two_slices()], clock)
    a = NvmlMeter(nvml, environ={"CUDA_VISIBLE_DEVICES": "MIG-3333"})
    b = NvmlMeter(nvml, environ={"CUDA_VISIBLE_DEVICES": "MIG-4444"})
    both = NvmlMeter(nvml, environ={"CUDA_VISIBLE_DEVICES": "MIG-4444,MIG-3333"})
    clock.advance(2.0)
    ea, eb = a.read_energy_j()["gpu0"], b.read_energy_j()["gpu0"]
    assert ea + eb == pytest.approx(700.0)
    assert both.read_energy_j()["gpu0"] == pytest.approx(700.0)
    assert both.channels[0].details["uuid"] == "MIG-4444,MIG-3333"
    assert "+" in both.channels[0].name


def test_mig_gpu_addressed_without_its_slice_is_not_counted_with_the_fix(clock, make_nvml):
    nvml = FakeNvml([a100_with_two_slices(), FakeGpu(uuid="GPU-bbbb")], clock)
    meter = NvmlMeter(nvml, environ={})
    assert [c.id for c in meter.channels] == ["gpu1"]
    why = meter.not_counted["gpu0"]
    assert "2 MIG devices" in why and "CUDA_VISIBLE_DEVICES=MIG-<uuid>" in why


def test_mig_gpu_with_one_slice_is_that_slice(clock):
    gpu = a100_with_two_slices()
    gpu.mig_devices = gpu.mig_devices[1:]
    meter = NvmlMeter(FakeNvml([gpu], clock), environ={"CUDA_VISIBLE_DEVICES": "0"})
    (ch,) = meter.channels
    assert ch.details["mig"]["share"] == pytest.approx(4 / 7)


def test_mig_share_unknown_is_never_zero_or_whole(clock):
    gpu = FakeGpu(uuid="GPU-aaaa", mig_enabled=True, mig_uuids=("MIG-1111",))
    with pytest.raises(MeterUnavailableError, match="no attributes for MIG device MIG-1111"):
        NvmlMeter(FakeNvml([gpu], clock), environ={"CUDA_VISIBLE_DEVICES": "MIG-1111"})
    empty = FakeGpu(uuid="GPU-aaaa", mig_enabled=True)
    with pytest.raises(MeterUnavailableError, match="no MIG device"):
        NvmlMeter(FakeNvml([empty], clock), environ={})


def test_a30_has_four_slices(clock):
    gpu = a100_with_two_slices(name="NVIDIA A30", mig_slices=4)
    gpu.mig_devices = (FakeMigDevice("MIG-1c", "NVIDIA A30 MIG 1g.6gb", 1, 1),)
    meter = NvmlMeter(FakeNvml([gpu], clock), environ={"CUDA_VISIBLE_DEVICES": "MIG-1c"})
    assert meter.channels[0].details["mig"]["share"] == pytest.approx(1 / 4)
