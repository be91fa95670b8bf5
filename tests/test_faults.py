"""Tracking never harms training: every file-system call and every meter read of a
representative run fails in turn (each errno, each exception type, once or for good), and
each time the training finishes, the run loads, the loss is labelled and the energy outside
the failure is exact. Two trackers racing for one directory: exactly one wins."""

from __future__ import annotations

import errno
import multiprocessing
import threading
import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.errors import MeterError, RunExistsError
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.tracker import Tracker
from tests.faults import ERRNOS, FaultyFileSystem, FaultyMeter
from tests.helpers import run_for

GPU_W, CPU_W, EPOCHS, EPOCH_S = 200.0, 40.0, 3, 2.0
SECONDS = EPOCHS * EPOCH_S


def meters(clock: ManualClock) -> list[FakeMeter]:
    return [
        FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(GPU_W))], clock),
        FakeMeter(
            [FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(CPU_W), has_power=False)], clock
        ),
    ]


def representative_run(path: Path, *, fs=None, wrap=None) -> tuple[Tracker, int]:  # type: ignore[no-untyped-def]
    """Three epochs of two seconds in spans, under -W error: greentrack's warnings must not
    become exceptions in training. Returns the tracker and the epochs the training finished."""
    clock = ManualClock()
    ms = meters(clock)
    if wrap is not None:
        ms = wrap(ms)
    tracker = Tracker(path, meters=ms, clock=clock, background=False, fs=fs)
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tracker:
            for epoch in range(EPOCHS):
                with tracker.span("epoch", epoch=epoch):
                    run_for(tracker, clock, EPOCH_S, step=0.5)
                done += 1
    return tracker, done


def _fault_free_calls(tmp_path: Path) -> int:
    fs = FaultyFileSystem(fail_at=10**9)
    representative_run(tmp_path / "count", fs=fs)
    return fs.calls


def _check_io_case(path: Path, fs: FaultyFileSystem) -> None:
    tracker, done = representative_run(path, fs=fs)
    assert done == EPOCHS  # the training finished
    totals = tracker.energy_j()  # the energy outside the failure is exact: readings in memory
    assert totals["gpu0"] == pytest.approx(GPU_W * SECONDS, rel=1e-9)
    assert totals["cpu0"] == pytest.approx(CPU_W * SECONDS, rel=1e-9)
    if tracker.unwritten:  # the directory itself could not be claimed: nothing to load
        assert not (path / "meta.json").exists() or fs.failed
        return
    run = greentrack.load_run(path)  # the run loads
    acct = account_run(run)
    if fs.failed:  # the loss is labelled: in the summary, or the run reads as incomplete
        assert any("could not be written" in n for n in acct.notes) or not run.complete
    if run.complete:
        assert acct.it_kwh.value == pytest.approx((GPU_W + CPU_W) * SECONDS / 3.6e6, rel=1e-9)


@pytest.mark.parametrize("code", ERRNOS, ids=[errno.errorcode[c] for c in ERRNOS])
def test_every_file_system_call_fails_once(tmp_path: Path, code: int) -> None:
    n = _fault_free_calls(tmp_path)
    assert n > 20
    for k in range(1, n + 1):
        _check_io_case(tmp_path / f"r{k}", FaultyFileSystem(k, code))


@pytest.mark.parametrize("code", (errno.ENOSPC, errno.EROFS), ids=["ENOSPC", "EROFS"])
def test_the_disk_fills_up_and_stays_full(tmp_path: Path, code: int) -> None:
    n = _fault_free_calls(tmp_path)
    for k in range(1, n + 1, 3):
        _check_io_case(tmp_path / f"r{k}", FaultyFileSystem(k, code, sticky=True))


ERRORS = (
    MeterError("NVML_ERROR_GPU_IS_LOST"),
    RuntimeError("binding raised RuntimeError"),
    OSError(errno.EIO, "read failed"),
    ValueError("garbage"),
    ZeroDivisionError("bug in a meter"),
)


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
@pytest.mark.parametrize("operation", ["read_energy_j", "read_power_w"])
def test_every_meter_read_fails_once(tmp_path: Path, error: BaseException, operation: str) -> None:
    """A meter read that fails once leaves no trace on the totals: counters re-anchor."""
    for channel in (0, 1):
        for k in range(1, 16):

            def wrap(ms, channel=channel, k=k):  # type: ignore[no-untyped-def]
                ms[channel] = FaultyMeter(ms[channel], operation, k, error)
                return ms

            tracker, done = representative_run(tmp_path / f"c{channel}-{k}", wrap=wrap)
            assert done == EPOCHS
            totals = tracker.energy_j()
            assert totals["gpu0"] == pytest.approx(GPU_W * SECONDS, rel=1e-9)
            assert totals["cpu0"] == pytest.approx(CPU_W * SECONDS, rel=1e-9)
            assert greentrack.load_run(tmp_path / f"c{channel}-{k}").complete


@pytest.mark.parametrize("error", ERRORS[:3], ids=[type(e).__name__ for e in ERRORS[:3]])
def test_a_counter_that_stays_failed_is_bridged_or_marked_missing(
    tmp_path: Path, error: BaseException
) -> None:
    """The GPU's counter fails for good from its 2nd read while its power readings work: the
    total is bridged from power, exactly (constant power), and labelled so. The CPU's
    counter-only channel failing for good: its energy after the last good read is missing,
    and the summary says for how long."""

    def gpu_counter(ms):  # type: ignore[no-untyped-def]
        ms[0] = FaultyMeter(ms[0], "read_energy_j", 2, error, sticky=True)
        return ms

    tracker, done = representative_run(tmp_path / "gpu", wrap=gpu_counter)
    assert done == EPOCHS
    assert tracker.energy_j()["gpu0"] == pytest.approx(GPU_W * SECONDS, rel=1e-9)
    acct = account_run(greentrack.load_run(tmp_path / "gpu"))
    assert any("gpu0: the energy counter failed" in n and "bridged" in n for n in acct.notes)
    events = [
        e for e in greentrack.load_run(tmp_path / "gpu").events if e["event"] == "meter_error"
    ]
    assert 1 <= len(events) <= 2  # rate-limited: not one per failed read

    def cpu_counter(ms):  # type: ignore[no-untyped-def]
        ms[1] = FaultyMeter(ms[1], "read_energy_j", 5, error, sticky=True)
        return ms

    tracker, done = representative_run(tmp_path / "cpu", wrap=cpu_counter)
    assert done == EPOCHS
    assert tracker.energy_j()["cpu0"] < CPU_W * SECONDS
    acct = account_run(greentrack.load_run(tmp_path / "cpu"))
    assert any("cpu0: the energy counter failed" in n and "missing" in n for n in acct.notes)


def test_greentrack_run_passes_the_exit_code_through_a_full_disk(tmp_path: Path) -> None:
    import sys

    from greentrack.runner import run_command

    for k in (1, 5, 12, 30):
        tracker = Tracker(
            tmp_path / f"r{k}",
            meters=[],
            background=False,
            sync="none",
            fs=FaultyFileSystem(k, errno.ENOSPC, sticky=True),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = run_command(tracker, [sys.executable, "-c", "import sys; sys.exit(5)"])
        assert code == 5


# --- races ---------------------------------------------------------------------------------


def _claim(path: Path, barrier: threading.Barrier, out: list[str]) -> None:
    tracker = Tracker(path, meters=[], background=False)
    barrier.wait()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracker.start()
    except RunExistsError:
        out.append("refused")
        return
    out.append(tracker.run_id)
    tracker.stop()


def _check_race(path: Path, results: list[str]) -> None:
    winners = [r for r in results if r != "refused"]
    assert len(winners) == 1 and results.count("refused") == 1, results
    run = greentrack.load_run(path)
    assert run.meta["run_id"] == winners[0] and run.complete
    assert not [p.name for p in path.iterdir() if p.name.endswith(".tmp")]
    header = (path / "timeline.csv").read_text().splitlines()
    assert sum(1 for line in header if line.startswith("t_unix_s")) == 1


def test_two_threads_race_for_one_run_dir(tmp_path: Path) -> None:
    for trial in range(200):
        path = tmp_path / f"t{trial}"
        barrier = threading.Barrier(2)
        results: list[str] = []
        threads = [threading.Thread(target=_claim, args=(path, barrier, results)) for _ in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _check_race(path, results)


def _claim_in_process(path: str, barrier: object, queue: object) -> None:
    results: list[str] = []
    _claim(Path(path), barrier, results)  # type: ignore[arg-type]
    queue.put(results[0])  # type: ignore[attr-defined]


def test_two_processes_race_for_one_run_dir(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for trial in range(100):
        path = tmp_path / f"p{trial}"
        barrier, queue = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_claim_in_process, args=(str(path), barrier, queue)) for _ in "ab"
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        _check_race(path, [queue.get(timeout=5) for _ in procs])


def test_meta_json_that_cannot_be_completed_stays_as_first_written(tmp_path: Path) -> None:
    """The background rewrite of meta.json (pending package versions and git) hits a full
    disk: the first meta.json stays whole and says what is pending, the loss is counted, the
    run loads."""
    import json

    from greentrack import metadata
    from greentrack.rundir.fs import FileSystem

    class FullForMeta(FileSystem):
        def replace_atomic(self, path: Path, text: str) -> None:
            if path.name == "meta.json":
                raise OSError(errno.ENOSPC, "No space left on device")
            super().replace_atomic(path, text)

    metadata.clear_cache()
    try:
        clock = ManualClock()
        tracker = Tracker(tmp_path / "r", meters=meters(clock), clock=clock, fs=FullForMeta())
        with pytest.warns(RuntimeWarning, match="cannot write"):
            tracker.start()
            assert tracker._meta_thread is not None
            tracker._meta_thread.join(timeout=30)
        run_for(tracker, clock, 1.0, step=0.5)
        tracker.stop()
        meta = json.loads((tmp_path / "r" / "meta.json").read_text())
        assert meta["pending"] == ["software", "git"] and meta["software"] is None
        assert tracker.writer.trouble is not None and tracker.writer.trouble.records_lost >= 1
        assert greentrack.load_run(tmp_path / "r").complete
    finally:
        metadata.clear_cache()
