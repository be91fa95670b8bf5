from __future__ import annotations

from types import SimpleNamespace

import pytest

from greentrack.meters.estimate import (
    CCF_VCPU_MAX_W,
    CCF_VCPU_MIN_W,
    TDP_METHOD,
    VCPU_METHOD,
    EstimatedCpuMeter,
)
from greentrack.meters.tdp import cpu_model_and_packages, lookup_tdp, normalize_cpu_name


class FakeCpuTimes:
    """Per-CPU kernel times; ``busy[i]`` CPU-seconds of work on CPU i."""

    def __init__(self, n: int) -> None:
        self.busy = [100.0] * n

    def __call__(self) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(
                user=b * 0.75,
                system=b * 0.25,
                nice=0.0,
                irq=0.0,
                softirq=0.0,
                idle=1e6,
                iowait=50.0,
                steal=7.0,
            )
            for b in self.busy
        ]


def test_tdp_model_counts_only_cpus_this_process_may_use(clock):
    times = FakeCpuTimes(16)
    meter = EstimatedCpuMeter(
        tdp_w=120.0,
        cpu_model="Test CPU",
        packages=2,
        cpu_times=times,
        cpus=range(8),
        logical_cpus=16,
        clock=clock,
    )
    (ch,) = meter.channels
    assert (ch.id, ch.source, ch.energy_method) == ("cpu", "estimated", TDP_METHOD)
    times.busy[0] += 30.0
    times.busy[7] += 10.0
    times.busy[12] += 99.0  # another tenant's CPU: not ours
    clock.advance(60.0)
    # E = TDP x packages x busy / logical = 120 * 2 * 40 / 16
    assert meter.read_energy_j() == {"cpu": pytest.approx(600.0)}


def test_vcpu_model_for_unknown_cpu(clock):
    times = FakeCpuTimes(2)
    meter = EstimatedCpuMeter(
        cpu_model="AMD EPYC", cpu_times=times, cpus=[0, 1], logical_cpus=2, clock=clock
    )
    ch = meter.channels[0]
    assert ch.energy_method == VCPU_METHOD and "not in the TDP table" in ch.details["note"]
    clock.advance(10.0)
    times.busy[1] += 10.0  # one vCPU fully busy for 10 s, the other idle
    expected = CCF_VCPU_MIN_W * 2 * 10.0 + (CCF_VCPU_MAX_W - CCF_VCPU_MIN_W) * 10.0
    assert meter.read_energy_j()["cpu"] == pytest.approx(expected)
    assert expected == pytest.approx(CCF_VCPU_MAX_W * 10 + CCF_VCPU_MIN_W * 10)


def test_tdp_from_bundled_table():
    meter = EstimatedCpuMeter(
        cpu_model="Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
        packages=1,
        cpu_times=FakeCpuTimes(4),
        cpus=range(4),
        logical_cpus=4,
    )
    details = meter.channels[0].details
    assert details["tdp_w"] == 150.0 and details["tdp_table_name"] == "Intel Xeon Gold 6248"


@pytest.mark.parametrize(
    ("model", "table_name", "tdp"),
    [
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763", 280.0),
        ("11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", "Intel Core i7-1165G7", 28.0),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", "Intel Xeon E5-2690 v4", 135.0),
    ],
)
def test_lookup_tdp(model, table_name, tdp):
    match = lookup_tdp(model)
    assert match is not None and (match.table_name, match.tdp_w) == (table_name, tdp)


def test_generic_names_do_not_match_a_model():
    assert lookup_tdp("AMD EPYC") is None
    assert lookup_tdp("Intel Xeon Processor") is None


def test_dram_estimate_is_opt_in_and_constant_power(clock):
    meter = EstimatedCpuMeter(
        tdp_w=10.0,
        cpu_model="x",
        cpu_times=FakeCpuTimes(1),
        cpus=[0],
        logical_cpus=1,
        dram_w_per_gb=0.375,
        memory_bytes=64 * 10**9,
        clock=clock,
    )
    assert [c.id for c in meter.channels] == ["cpu", "dram"]
    clock.advance(10.0)
    assert meter.read_energy_j()["dram"] == pytest.approx(0.375 * 64 * 10.0)


def test_bad_values_rejected():
    with pytest.raises(ValueError, match="positive"):
        EstimatedCpuMeter(tdp_w=0.0, cpu_model="x", cpu_times=FakeCpuTimes(1), cpus=[0])
    with pytest.raises(ValueError, match="dram_w_per_gb must be positive"):
        EstimatedCpuMeter(
            tdp_w=5.0, cpu_model="x", cpu_times=FakeCpuTimes(1), cpus=[0], dram_w_per_gb=-1
        )


def test_cpuinfo_parsing(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Foo 9000\nphysical id\t: 0\n\n"
        "processor\t: 1\nmodel name\t: Foo 9000\nphysical id\t: 1\n"
    )
    assert cpu_model_and_packages(info) == ("Foo 9000", 2)
    assert normalize_cpu_name("AMD Ryzen(TM) 9 5950X 16-Core Processor") == "amd ryzen 9 5950x"
