"""A run killed with SIGKILL is still reportable and loses at most ~2 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import greentrack

CHILD = textwrap.dedent(
    """
    import sys, time
    import greentrack
    from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace

    t0 = time.monotonic()
    meter = FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(200.0))],
                      lambda: time.monotonic() - t0)
    with greentrack.track(sys.argv[1], meters=[meter], name="killed") as run:
        with run.span("epoch", epoch=0):
            time.sleep(1.2)
        run.begin_span("epoch", epoch=1)
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_run_is_reportable(tmp_path):
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(4.0)
    os.kill(child.pid, signal.SIGKILL)
    killed_at = time.time()
    child.wait()
    assert child.returncode == -signal.SIGKILL

    run = greentrack.load_run(run_dir)
    assert not run.complete
    summary = greentrack.summarize(run)
    assert summary.status == "incomplete" and "killed or crashed" in summary.notes[0]
    last_row = run.timeline["time"].max().timestamp()
    assert killed_at - last_row <= 2.0  # at most ~1 row interval lost
    spans = run.spans.set_index("span_id")
    assert spans["status"].tolist() == ["ok", "open"]
    open_span = spans.iloc[1]
    assert open_span["tags"] == {"epoch": 1}
    # the open span's energy comes from the timeline: 200 W over its observed duration
    assert open_span["energy_j"] == pytest.approx(200.0 * open_span["duration_s"], rel=0.05)
    # the run's total counts from the run's start: 200 W up to the last row
    last_mono = run.timeline["t_mono_s"].max()
    assert summary.components[0].energy_j == pytest.approx(200.0 * last_mono, rel=0.01)


def test_torn_last_lines_are_ignored(tmp_path, clock):
    from tests.helpers import gpu_cpu_meters, run_for

    run_dir = tmp_path / "run"
    with greentrack.track(
        run_dir, meters=gpu_cpu_meters(clock), clock=clock, background=False
    ) as run:
        with run.span("a"):
            run_for(run, clock, 2.0)
    (run_dir / "summary.json").unlink()
    with (run_dir / "timeline.csv").open("a") as f:
        f.write("1700000003.0,3.0,25")  # a row cut by SIGKILL mid-write
    with (run_dir / "spans.jsonl").open("a") as f:
        f.write('{"event": "begin", "span_id": "s9", "na')
    loaded = greentrack.load_run(run_dir)
    assert loaded.spans["span_id"].tolist() == ["s1"]
    assert loaded.timeline["t_mono_s"].max() == pytest.approx(2.0)
    assert greentrack.summarize(loaded).components[0].energy_j == pytest.approx(500.0)


def test_not_a_run_dir_and_newer_format(tmp_path):
    with pytest.raises(greentrack.RunFormatError, match="not a greentrack run directory"):
        greentrack.load_run(tmp_path)
    (tmp_path / "meta.json").write_text('{"format_version": 99}')
    with pytest.raises(greentrack.RunFormatError, match=r"version 99.*Upgrade"):
        greentrack.load_run(tmp_path)


def test_summary_command_formats(tmp_path, clock):
    import json
    import subprocess
    import sys

    from tests.helpers import gpu_cpu_meters, run_for

    run_dir = tmp_path / "run"
    with greentrack.track(
        run_dir, meters=gpu_cpu_meters(clock), clock=clock, background=False, name="a|b"
    ) as run:
        run_for(run, clock, 3.6)
    base = [sys.executable, "-m", "greentrack", "summary", str(run_dir)]
    out = subprocess.run([*base, "--format", "json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["energy"]["measured_kwh"] == pytest.approx(290.0 * 3.6 / 3.6e6)
    md = subprocess.run([*base, "--format", "md"], capture_output=True, text=True, check=True)
    assert "## Energy of run a\\|b (finished)" in md.stdout
    assert "| gpu0 | gpu |" in md.stdout and "| 250 mWh (" in md.stdout
    text = subprocess.run(base, capture_output=True, text=True, check=True).stdout
    assert "gpu0" in text and "measured 290 mWh" in text
    bad = subprocess.run([*base[:-1], str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a greentrack run directory" in bad.stderr
