from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.errors import RunExistsError, SpanError
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace
from greentrack.meters.nvml import NvmlMeter
from tests.helpers import gpu_cpu_meters, run_for


def _track(tmp_path, clock, meters, **kw):
    return greentrack.track(tmp_path / "run", meters=meters, clock=clock, background=False, **kw)


def test_spans_nest_and_add_up_to_the_run(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock), project="p", name="n") as run:
        run_for(run, clock, 1.0)
        for epoch in range(3):
            with run.span("epoch", epoch=epoch) as ep:
                for group in range(2):
                    with run.span("steps", group=group) as st:
                        run_for(run, clock, 2.0)
                    assert st.parent_id == ep.span_id
            assert ep.record is not None
            assert ep.record.energy_j["gpu0"] == pytest.approx(250.0 * 4.0)
            assert ep.record.energy_j["cpu0"] == pytest.approx(40.0 * 4.0)
            assert ep.record.tags == {"epoch": epoch} and ep.record.duration_s == pytest.approx(4.0)
        run_for(run, clock, 1.0)
    loaded = greentrack.load_run(tmp_path / "run")
    spans = loaded.spans
    assert len(spans) == 9
    epochs = spans[spans["name"] == "epoch"]
    steps = spans[spans["name"] == "steps"]
    # children add up to parents, parents to the run minus the untracked edges
    for _, ep in epochs.iterrows():
        kids = steps[steps["parent_id"] == ep["span_id"]]
        assert kids["energy_j"].sum() == pytest.approx(ep["energy_j"])
    summary = run.summary()
    total = summary.measured_energy_j
    assert total == pytest.approx(290.0 * 14.0)
    assert epochs["energy_j"].sum() == pytest.approx(total - 290.0 * 2.0)
    assert [s["depth"] for s in summary.spans[:3]] == [0, 1, 1]
    assert summary.status == "finished" and summary.complete
    text = str(summary)
    assert "gpu0" in text and "epoch [epoch=0]" in text and "total:" in text


def test_overlapping_windows_and_explicit_parent(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock)) as run:
        a = run.begin_span("a")
        run_for(run, clock, 1.0)
        b = run.begin_span("b", parent=None)
        run_for(run, clock, 1.0)
        ra = run.end_span(a)
        run_for(run, clock, 1.0)
        rb = run.end_span(b)
    assert ra.total_energy_j == pytest.approx(580.0)
    assert rb.total_energy_j == pytest.approx(580.0)
    assert rb.parent_id is None


def test_span_misuse_errors_name_the_span(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock)) as run:
        s = run.begin_span("fwd")
        run.end_span(s)
        with pytest.raises(SpanError, match=r"'fwd'.*already ended"):
            run.end_span(s)
        with pytest.raises(SpanError, match="non-empty string"):
            run.begin_span("")
        with pytest.raises(SpanError, match=r"tag lr=.*list"):
            run.begin_span("x", lr=[0.1])


def test_exception_in_span_marks_it_and_run_failed(tmp_path, clock):
    with pytest.raises(ZeroDivisionError), _track(tmp_path, clock, gpu_cpu_meters(clock)) as run:
        with run.span("epoch"):
            run_for(run, clock, 0.5)
            _ = 1 / 0
    loaded = greentrack.load_run(tmp_path / "run")
    assert loaded.spans["status"].tolist() == ["error"]
    assert greentrack.summarize(loaded).status == "failed: ZeroDivisionError"


def test_unclosed_span_is_closed_at_stop(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock)) as run:
        run.begin_span("left open")
        run_for(run, clock, 1.0)
    assert greentrack.load_run(tmp_path / "run").spans["status"].tolist() == ["unclosed"]


def test_existing_run_dir_is_never_overwritten(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock)):
        pass
    before = (tmp_path / "run" / "meta.json").read_text()
    with (
        pytest.raises(RunExistsError, match="never overwrites"),
        _track(tmp_path, clock, gpu_cpu_meters(clock)),
    ):
        pass
    assert (tmp_path / "run" / "meta.json").read_text() == before


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match=r"'power_hzz' \(did you mean 'power_hz'\?\)"):
        greentrack.track(power_hzz=3)
    with pytest.raises(ValueError, match="power_hz"):
        greentrack.track(power_hz=0)


def test_failing_meter_never_reaches_training(tmp_path, clock):
    meters = gpu_cpu_meters(clock, fail_between=(2.0, 4.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _track(tmp_path, clock, meters) as run:
            with run.span("epoch"):  # span edges inside the failure read nothing new
                run_for(run, clock, 3.0)
            run_for(run, clock, 3.0)
    assert sum("a meter failed" in str(w.message) for w in caught) == 1
    loaded = greentrack.load_run(tmp_path / "run")
    gaps = loaded.timeline.query("channel == 'gpu0' and gap")
    assert 1 <= len(gaps) <= 3
    assert any(e["event"] == "meter_error" for e in loaded.events)
    # the counter re-anchors after the gap: the run total is exact
    assert greentrack.summarize(loaded).components[0].energy_j == pytest.approx(250.0 * 6.0)
    failed = re.compile(r"(1 meter read|([02-9]|\d\d+) meter reads) failed")  # a real plural
    assert any(failed.match(n) for n in greentrack.summarize(loaded).notes)


def test_nvml_counter_is_not_read_per_step(tmp_path, clock, make_nvml):
    nvml = make_nvml(1)
    meter = NvmlMeter(nvml, environ={})
    with _track(tmp_path, clock, [meter], sync=lambda: None) as run:
        nvml.calls.clear()
        with run.span("epoch"):
            run_for(run, clock, 60.0)  # 600 sampler ticks
    counter_reads = nvml.calls["nvmlDeviceGetTotalEnergyConsumption"]
    assert counter_reads <= 60.0 / 5.0 + 3  # every 5 s plus span edges, never per tick
    assert nvml.calls["nvmlDeviceGetFieldValues"] >= 600


def test_sync_runs_only_at_span_edges(tmp_path, clock):
    calls = []
    with _track(tmp_path, clock, gpu_cpu_meters(clock), sync=lambda: calls.append(clock.t)) as run:
        with run.span("epoch"):
            run_for(run, clock, 5.0)
    assert calls == pytest.approx([0.0, 5.0])


def test_timeline_rows_and_power(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock)) as run:
        run_for(run, clock, 5.0)
    tl = greentrack.load_run(tmp_path / "run").timeline
    gpu = tl[tl["channel"] == "gpu0"]
    assert len(gpu) == 6  # 5 rows + the final one at stop
    assert gpu["power_w"].iloc[:5].tolist() == pytest.approx([250.0] * 5)
    assert gpu["energy_j"].iloc[-1] == pytest.approx(1250.0)
    assert str(tl["time"].dt.tz) == "UTC"
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["format_version"] == 1 and {c["id"] for c in meta["channels"]} == {"gpu0", "cpu0"}


def test_live_summary_while_running(tmp_path, clock):
    with _track(tmp_path, clock, gpu_cpu_meters(clock)) as run:
        run_for(run, clock, 2.0)
        live = run.summary()
        assert live.status == "running"
        assert live.measured_energy_j == pytest.approx(580.0)


def test_background_thread_real_time(tmp_path):
    import time

    meter = FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(100.0))], time.monotonic)
    with greentrack.track(
        tmp_path / "run", meters=[meter], row_interval_s=0.1, counter_interval_s=0.2
    ) as run:
        with run.span("work") as s:
            time.sleep(0.6)
    assert s.record is not None
    assert s.record.energy_j["gpu0"] == pytest.approx(100.0 * s.record.duration_s, rel=1e-3)
    assert run.sampler.rows >= 4


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/task"), reason="Linux /proc")
def test_sampler_thread_blocks_process_signals(tmp_path):
    """Process signals must reach the main thread, not the sampler (see sampler.py)."""
    import signal
    import threading
    import time

    meter = FakeMeter([FakeChannelSpec("gpu0")], time.monotonic)
    with greentrack.track(tmp_path / "run", meters=[meter]):
        time.sleep(0.3)
        (thread,) = [t for t in threading.enumerate() if t.name == "greentrack-sampler"]
        status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
        blocked = int(
            next(ln for ln in status.splitlines() if ln.startswith("SigBlk:")).split()[1], 16
        )
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            assert blocked & (1 << (sig - 1)), sig
