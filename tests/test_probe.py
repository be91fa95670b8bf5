"""``greentrack devices --probe``: NVML's update intervals and averaging windows measured the
way Yang et al. (SC24) do, over a fake pynvml whose counter, power sensor and averaged power
update at scripted intervals; the probe is driven by a fake clock (its ``sleep`` advances
the clock), so it is deterministic and takes no wall time. The stored probe reaches the run's
``meta.json`` and the account's cross-check of the counter against the power samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greentrack
from greentrack.account import account_run
from greentrack.account.crosscheck import COUNTER_UPDATE_S, power_check
from greentrack.cli.probe import cmd_probe
from greentrack.errors import MeterUnavailableError
from greentrack.meters import probe as pr
from greentrack.meters.fake import FakeGpu, FakeLoad, FakeNvml, ManualClock, PowerTrace
from greentrack.rundir.fs import REAL
from greentrack.rundir.reader import load_run

# a baseline that is never flat, so every update of every reading changes its value
NOISY = PowerTrace([(0.037, 90.0), (0.051, 110.0)], repeat=True)
UUID = "GPU-11111111-2222-3333-4444-555555555555"


def _gpu(**kw: object) -> FakeGpu:
    base: dict[str, object] = {
        "uuid": UUID,
        "trace": NOISY,
        "energy_update_s": 0.05,
        "power_update_s": 0.1,
        "power_coverage": 0.25,
        "power_average_s": 1.0,
    }
    base.update(kw)
    return FakeGpu(**base)  # type: ignore[arg-type]


def _probe(gpus, *, load_w: float | None = 300.0, seconds=5.0, nvml_cls=FakeNvml, **kw):
    clock = ManualClock()
    clock.advance(100.0)  # the averaged power has a history before the probe starts
    nvml = nvml_cls(gpus, clock)
    load = FakeLoad(gpus, clock, load_w) if load_w is not None else None
    results = pr.probe(
        nvml,
        environ={},
        seconds=seconds,
        load=load,
        clock=clock,
        sleep=clock.advance,
        wall=clock.time,
        **kw,
    )
    return results, clock, load


@pytest.mark.parametrize(
    ("energy_s", "power_s", "window_s"),
    [(0.05, 0.1, 1.0), (0.1, 0.1, 0.5), (0.02, 0.05, 0.8), (0.1, 0.02, 0.3)],
)
def test_probe_recovers_the_configured_intervals_and_window(energy_s, power_s, window_s):
    gpu = _gpu(energy_update_s=energy_s, power_update_s=power_s, power_average_s=window_s)
    (r,), clock, load = _probe([gpu])
    assert load is not None and load.started == [(pytest.approx(101.0, abs=0.002), 2.0)]
    assert r.uuid == UUID and r.driver == "570.86.15" and r.load == FakeLoad.label
    assert r.poll_interval_s == pytest.approx(0.001)
    assert r.counter_update_s == pytest.approx(energy_s, abs=0.002)
    usage = r.source(pr.POWER_USAGE)
    average = r.source(pr.POWER_AVERAGE)
    for s in (usage, average):
        assert s is not None
        assert s.update_interval_s == pytest.approx(power_s, abs=0.002)
        assert s.window_s == pytest.approx(window_s, rel=0.05)
        assert s.step_w == pytest.approx(300.0, rel=0.02)
    # the instantaneous field averages 25 % of each update: at most one update, not a ramp
    instant = r.source(pr.POWER_INSTANT)
    assert instant is not None and instant.window_s is None
    assert instant.window_at_most_s == pytest.approx(power_s, abs=0.002)
    assert clock.t - 100.0 <= 5.0 + 0.001  # bounded: the probe's seconds, one poll at most


@settings(max_examples=12, deadline=None)
@given(
    energy_ms=st.integers(10, 200),
    power_ms=st.integers(10, 150),
    window_ms=st.integers(300, 1100),
)
def test_probe_recovers_any_interval_and_window(energy_ms, power_ms, window_ms):
    """Any counter interval (10-200 ms) and any window at least two updates long that fits
    the default probe (a 2 s load step) are found within 2 polls and 6 %."""
    window_ms = max(window_ms, 3 * power_ms)
    gpu = _gpu(
        energy_update_s=energy_ms / 1000,
        power_update_s=power_ms / 1000,
        power_average_s=window_ms / 1000,
    )
    (r,), _, _ = _probe([gpu])
    assert r.counter_update_s == pytest.approx(energy_ms / 1000, abs=0.002)
    usage = r.source(pr.POWER_USAGE)
    assert usage is not None
    assert usage.update_interval_s == pytest.approx(power_ms / 1000, abs=0.002)
    assert usage.window_s == pytest.approx(window_ms / 1000, rel=0.06)


class SlowNvml(FakeNvml):
    """Each NVML read costs 0.3 ms of the fake clock (reads cost real time on a GPU)."""

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.clock.advance(0.0003)  # type: ignore[attr-defined]
        return super().nvmlDeviceGetTotalEnergyConsumption(handle)

    def nvmlDeviceGetPowerUsage(self, handle):
        self.clock.advance(0.0003)  # type: ignore[attr-defined]
        return super().nvmlDeviceGetPowerUsage(handle)


def test_reads_that_cost_time_still_give_the_intervals_within_a_poll():
    (r, _), clock, _ = _probe([_gpu(), _gpu(uuid="GPU-2")], nvml_cls=SlowNvml)
    assert r.poll_interval_s > 0.001  # the reads of two GPUs slow each round
    assert r.counter_update_s == pytest.approx(0.05, abs=r.poll_interval_s * 2)
    usage = r.source(pr.POWER_USAGE)
    assert usage is not None and usage.window_s == pytest.approx(1.0, rel=0.05)
    assert clock.t - 100.0 <= 5.0 + r.poll_interval_s


def test_two_gpus_are_probed_together_within_the_seconds():
    results, clock, _ = _probe([_gpu(), _gpu(uuid="GPU-2", energy_update_s=0.1)], seconds=3.0)
    assert [r.uuid for r in results] == [UUID, "GPU-2"]
    assert results[0].counter_update_s == pytest.approx(0.05, abs=0.002)
    assert results[1].counter_update_s == pytest.approx(0.1, abs=0.002)
    assert clock.t - 100.0 <= 3.0 + 0.001


def test_without_a_load_the_windows_are_not_measured_and_it_says_why():
    (r,), _, _ = _probe([_gpu()], load_w=None, idle_reason="torch has no CUDA here")
    assert r.load is None
    assert r.counter_update_s == pytest.approx(0.05, abs=0.002)
    usage = r.source(pr.POWER_USAGE)
    assert usage is not None and usage.window_s is None and usage.window_at_most_s is None
    assert "no load step" in usage.basis
    assert any("no load step" in n and "torch has no CUDA here" in n for n in r.notes)


def test_a_load_that_does_not_move_the_power_is_no_step():
    (r,), _, _ = _probe([_gpu()], load_w=1.0)
    usage = r.source(pr.POWER_USAGE)
    assert usage is not None and usage.window_s is None
    assert "no step to time a window by" in usage.basis


def test_unsupported_readings_are_said_not_guessed():
    gpu = _gpu(has_power_instant=False, has_power_average=False)
    (r,), _, _ = _probe([gpu])
    instant = r.source(pr.POWER_INSTANT)
    assert instant is not None and instant.update_interval_s is None
    assert "not supported" in instant.basis
    assert r.source(pr.POWER_USAGE).window_s == pytest.approx(1.0, rel=0.05)  # type: ignore[union-attr]


def test_a_constant_reading_has_no_interval():
    gpu = _gpu(trace=PowerTrace.constant(100.0), power_average_s=None, power_update_s=None)
    (r,), _, _ = _probe([gpu], load_w=None)
    instant = r.source(pr.POWER_INSTANT)
    assert instant is not None and instant.update_interval_s is None
    assert "too few" in instant.basis
    assert r.counter_update_s == pytest.approx(0.05, abs=0.002)  # the counter still moves


def test_the_probe_refuses_unbounded_seconds_and_absent_gpus():
    clock = ManualClock()
    with pytest.raises(ValueError, match="1 to 60 s"):
        pr.probe(FakeNvml([_gpu()], clock), seconds=600.0, clock=clock, sleep=clock.advance)
    with pytest.raises(MeterUnavailableError, match="no GPU to probe"):
        pr.probe(FakeNvml([], clock), environ={}, clock=clock, sleep=clock.advance)
    with pytest.raises(MeterUnavailableError, match="out of range"):
        pr.probe(FakeNvml([_gpu()], clock), gpu_indices=[3], environ={}, clock=clock)


def test_update_interval_counts_missed_updates():
    # changes every 100 ms, some updates skipped (the value did not move): still 100 ms
    times = [0.1, 0.2, 0.4, 0.5, 0.8, 0.9, 1.0]
    u, _ = pr.update_interval(times, 0.001)
    assert u == pytest.approx(0.1)


# --- the store ---------------------------------------------------------------------------------


def test_store_by_uuid_and_driver(tmp_path):
    (r,), _, _ = _probe([_gpu()])
    env = {pr.PROBE_DIR_ENV: str(tmp_path / "probes")}
    path = pr.save(r, pr.probe_dir(env), REAL)
    assert path.parent == tmp_path / "probes"
    back = pr.stored_probe(UUID, "570.86.15", env)
    assert back == r
    assert pr.stored_probe(UUID, "580.1", env) is None  # another driver: probe again
    assert pr.stored_probe("GPU-other", "570.86.15", env) is None
    path.write_text("{ not json")
    assert pr.stored_probe(UUID, "570.86.15", env) is None  # damaged: ignored, never fatal
    data = r.to_dict()
    data["sources"][0]["update_interval_s"] = -1.0
    path.write_text(json.dumps(data))
    assert pr.stored_probe(UUID, "570.86.15", env) is None


def test_probe_dir_follows_xdg():
    assert pr.probe_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path(
        "/x/cache/greentrack/probe"
    )
    # a relative XDG_CACHE_HOME is ignored (the XDG spec)
    assert pr.probe_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.cache/greentrack/probe"
    )
    assert pr.probe_dir({pr.PROBE_DIR_ENV: "/p", "XDG_CACHE_HOME": "/x"}) == Path("/p")


# --- used by runs ------------------------------------------------------------------------------

SPAN_S = 2.5  # span edges fall between the counter's 2 s updates


def _run(tmp_path: Path, env: dict[str, str]):
    clock = ManualClock()
    gpu = FakeGpu(uuid=UUID, trace=PowerTrace.constant(300.0), energy_update_s=2.0)
    run = greentrack.track(
        tmp_path / "run",
        clock=clock,
        background=False,
        sync="none",
        rank=None,
        nvml=FakeNvml([gpu], clock),
        cpu=False,
        environ=env,
        row_interval_s=0.1,
    )
    with run:
        for i in range(20):
            with run.span("step", i=i):
                for _ in range(round(SPAN_S / 0.1)):
                    clock.advance(0.1)
                    run.sampler.tick()
    loaded = load_run(tmp_path / "run")
    return loaded, account_run(loaded)


def test_a_coarse_counter_flags_spans_under_the_assumed_interval(tmp_path):
    loaded, account = _run(tmp_path, {pr.PROBE_DIR_ENV: str(tmp_path / "none")})
    (ch,) = loaded.channels
    assert "probe" not in ch["details"]
    check = power_check(loaded, ch, loaded.totals_j()["gpu0"], "gpu0")
    assert check is not None and check.counter_update_s == COUNTER_UPDATE_S
    assert check.probed_utc is None and check.spans_flagged > 0
    assert any("spans the power samples disagree" in n for n in account.notes)


def test_the_probed_interval_is_recorded_and_used_and_cited(tmp_path):
    # probe the same board (10 s: its counter updates every 2 s)
    gpu = _gpu(energy_update_s=2.0)
    (r,), _, _ = _probe([gpu], seconds=10.0)
    assert r.counter_update_s == pytest.approx(2.0, abs=0.002)
    env = {pr.PROBE_DIR_ENV: str(tmp_path / "probes")}
    pr.save(r, pr.probe_dir(env), REAL)
    loaded, account = _run(tmp_path, env)
    (ch,) = loaded.channels
    recorded = ch["details"]["probe"]
    assert recorded["counter_update_interval_s"] == r.counter_update_s
    assert recorded["probed_utc"] == r.probed_utc
    assert recorded["power_usage_window_s"] == pytest.approx(1.0, rel=0.05)
    check = power_check(loaded, ch, loaded.totals_j()["gpu0"], "gpu0")
    assert check is not None and check.counter_update_s == r.counter_update_s
    assert check.spans_flagged == 0  # the edges allow the counter's own interval
    assert check.to_dict()["counter_update_probed_utc"] == r.probed_utc
    cited = [n for n in account.notes if "probed on" in n]
    assert cited == [
        f"gpu0: counter update interval 2 s, probed on {r.probed_utc[:10]} "
        "(greentrack devices --probe), used by the check of its energy counter against its "
        "power samples"
    ]
    assert not any("disagree" in n for n in account.notes)


# --- the command -------------------------------------------------------------------------------


def test_cmd_probe_prints_and_stores(tmp_path, capsys):
    clock = ManualClock()
    clock.advance(100.0)
    gpu = _gpu()
    env = {pr.PROBE_DIR_ENV: str(tmp_path / "p")}
    rc = cmd_probe(
        None,
        5.0,
        False,
        nvml=FakeNvml([gpu], clock),
        environ=env,
        load=FakeLoad([gpu], clock, 300.0),
        clock=clock,
        sleep=clock.advance,
        wall=clock.time,
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "energy counter  updates every 50 ms" in out
    assert "power usage     updates every 100 ms, averages over 999 ms" in out
    assert "averages over at most one update (100 ms)" in out
    stored = tmp_path / "p" / pr.probe_file(UUID, "570.86.15")
    assert f"stored: {stored}" in out and stored.is_file()


def test_cmd_probe_json_and_an_unwritable_store(tmp_path, capsys):
    clock = ManualClock()
    clock.advance(100.0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc = cmd_probe(
        None,
        2.0,
        True,
        nvml=FakeNvml([_gpu()], clock),
        environ={pr.PROBE_DIR_ENV: str(blocker / "sub")},
        load=None,
        clock=clock,
        sleep=clock.advance,
        wall=clock.time,
    )
    captured = capsys.readouterr()
    assert rc == 2
    data = json.loads(captured.out)
    assert data["probes"][0]["stored"] is None and data["probes"][0]["load"] is None
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "cannot store the probe" in err[0] and pr.PROBE_DIR_ENV in err[0]


def test_devices_probe_without_a_gpu_is_one_line(tmp_path):
    if Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA driver")
    env = {"PATH": "/usr/bin:/bin", pr.PROBE_DIR_ENV: str(tmp_path / "p")}
    for args in (["--probe"], ["--probe", "--probe-seconds", "0"], ["--probe-seconds", "nan"]):
        p = subprocess.run(
            [sys.executable, "-m", "greentrack", "devices", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "p").exists()


class BrokenLoad(FakeLoad):
    """A load whose CUDA work fails (out of memory) when it is prepared or started."""

    def __init__(self, *args, when: str = "start", **kw):
        super().__init__(*args, **kw)
        self.when = when
        self.closed = False

    def prepare(self, duration_s):
        if self.when == "prepare":
            raise RuntimeError("CUDA error: out of memory")

    def start(self, duration_s):
        if self.when == "start":
            raise RuntimeError("CUDA error: out of memory")

    def close(self):
        self.closed = True


@pytest.mark.parametrize("when", ["prepare", "start"])
def test_a_load_that_fails_leaves_the_probe_idle_and_says_so(when):
    clock = ManualClock()
    gpu = _gpu()
    load = BrokenLoad([gpu], clock, 300.0, when=when)
    (r,) = pr.probe(FakeNvml([gpu], clock), environ={}, load=load, clock=clock, sleep=clock.advance)
    assert r.load is None and r.counter_update_s == pytest.approx(0.05, abs=0.002)
    assert any("out of memory" in n for n in r.notes)
    assert load.closed is (when == "start")  # what was prepared is freed


def test_torch_without_cuda_gives_no_load_and_why():
    load, why = pr.TorchBurst.for_uuids([UUID])
    if load is not None:
        pytest.skip("torch has CUDA here")
    assert why and ("CUDA" in why or "torch" in why)
