"""Flower at scale (issue 16): meters opened once per process and shared correctly, buffered
``fl.jsonl``, ``Run.fl_messages``, metadata cached per process. No timed assertions here:
timing belongs in benchmarks/fl_scale.py and benchmarks/fl_fedjax.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest

pytest.importorskip("flwr")

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.task_identity import TaskIdentity

import greentrack
from greentrack import metadata
from greentrack.integrations.flower import EmissionsStrategy, EnergyMod, client_record
from greentrack.integrations.flower import mod as mod_module
from greentrack.integrations.flower import recorder as recorder_module
from greentrack.integrations.flower.recorder import RoundRecorder
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace
from greentrack.rundir.reader import FL_MESSAGE_COLUMNS


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def handler(msg: Message, context: object) -> Message:
    if msg.metadata.message_type == "evaluate":
        content = RecordDict({"metrics": MetricRecord({"num-examples": 10, "loss": 0.5})})
    else:
        arrays = msg.content["arrays"]
        content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": 10})})
    return Message(content, reply_to=msg)


class Grid1(Grid):  # type: ignore[misc]
    def __init__(self, nodes: int, mod: Any) -> None:
        self.nodes, self.mod = nodes, mod

    def get_node_ids(self) -> list[int]:
        return list(range(1, self.nodes + 1))

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
        return [self.mod(m, None, handler) for m in messages]

    def create_message(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def push_messages(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def pull_messages(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def run(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def set_run(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


def _server_meter() -> FakeMeter:
    spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(80.0), has_power=False)
    return FakeMeter([spec], time.monotonic)


def _run(tmp_path: Any, mod: Any, nodes: int = 4, rounds: int = 3) -> Any:
    strategy = EmissionsStrategy(
        FedAvg(min_train_nodes=nodes, min_evaluate_nodes=nodes, min_available_nodes=nodes),
        tmp_path / "fl",
        meters=[_server_meter()],
    )
    strategy.start(Grid1(nodes, mod), ArrayRecord([np.zeros(100, dtype=np.float32)]), rounds)
    return strategy


def _message(node: int = 7) -> Message:
    arrays = ArrayRecord([np.arange(10, dtype=np.float32)])
    return Message(
        RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": 1})}),
        dst_node_id=node,
        message_type="train",
    )


# --- meters opened once per process ---------------------------------------------------------


def test_factory_meters_are_opened_once_and_read_at_window_edges(tmp_path):
    opened: list[FakeMeter] = []

    def factory() -> list[FakeMeter]:
        spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(50.0), has_power=False)
        opened.append(FakeMeter([spec], time.monotonic))
        return opened[-1:]

    mod = EnergyMod(meters_factory=factory)
    _run(tmp_path, mod, nodes=4, rounds=3)
    assert len(opened) == 1  # 24 messages, one set of meters
    shared = mod._shared()
    assert shared.reads == 2 * 24  # one reading per window edge
    rows = greentrack.load_run(tmp_path / "fl").fl_messages
    assert len(rows) == 24 and (rows["client_measured_j"] > 0).all()


def test_discovery_runs_once_per_process_for_equal_options(monkeypatch):
    calls: list[Any] = []

    def fake_discover(options: Any) -> tuple[list[Any], list[Any]]:
        calls.append(options)
        spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(5.0), has_power=False)
        return [FakeMeter([spec], time.monotonic)], []

    monkeypatch.setattr(mod_module, "discover", fake_discover)
    monkeypatch.setattr(mod_module, "_SHARED", {})
    first, second = EnergyMod(), EnergyMod()  # e.g. two ClientApps in one simulation worker
    for mod in (first, second, first):
        for _ in range(5):
            reply = mod(_message(), None, handler)
            assert client_record(reply)["measured_j"] >= 0.0
    assert len(calls) == 1


def test_overlapping_windows_share_what_the_counters_counted():
    """Two concurrent clients (threads) in one process: between consecutive window edges the
    counted energy is split among the open windows, so the windows add up to the counter."""
    now = [0.0]
    spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(10.0), has_power=False)
    shared = mod_module.SharedMeters([FakeMeter([spec], lambda: now[0])])
    a = shared.open()[0]
    now[0] = 1.0
    b = shared.open()[0]
    now[0] = 2.0
    ea = shared.close(a)[2]["cpu0"]
    now[0] = 4.0
    eb = shared.close(b)[2]["cpu0"]
    assert ea == pytest.approx(10.0 + 10.0 / 2)  # alone for 1 s, shared for 1 s
    assert eb == pytest.approx(10.0 / 2 + 20.0)
    assert ea + eb == pytest.approx(40.0)  # the counter over the union
    now[0] = 10.0  # idle: charged to no window
    c = shared.open()[0]
    now[0] = 11.0
    assert shared.close(c)[2]["cpu0"] == pytest.approx(10.0)  # alone: its own reading


def test_fast_process_busy_matches_psutil():
    from greentrack.meters import estimate

    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<0.4: pass"]
    )
    try:
        time.sleep(0.3)
        fast = estimate.process_busy_s()
        t = os.times()
        slow = t.user + t.system + t.children_user + t.children_system
        slow += estimate._psutil_children_cpu_s()  # the scan the /proc lists replace
        assert fast == pytest.approx(slow, abs=0.05)
        assert fast > 0.1  # the busy child's CPU time is in it
    finally:
        child.wait()


# --- fl.jsonl: buffered, flushed within about a second, complete at stop ---------------------


def _reply_record() -> dict[str, Any]:
    return {"measured_j": 1.0, "estimated_j": 0.0, "duration_s": 0.1, "methods": "cpu:x"}


def test_fl_jsonl_is_buffered_then_flushed_within_a_second(tmp_path):
    rec = RoundRecorder(tmp_path / "fl", meters=[_server_meter()])
    rec.start(1)
    rec.open_round(1)
    for node in range(100):
        rec.note_download("train", node, 1000)
        rec.note_reply("train", 1, node, 900, False, _reply_record())
    rec.flush_replies("train", 1)
    path = tmp_path / "fl" / "fl.jsonl"
    timer = rec._fl_timer
    assert timer is not None  # flushed less than a second ago: a timer flushes the rest
    assert path.read_text() == ""  # buffered, not written row by row
    timer.join(timeout=2 * recorder_module.FL_FLUSH_S + 5)
    assert len(path.read_text().splitlines()) == 100
    for node in range(5):
        rec.note_download("evaluate", node, 1000)
        rec.note_reply("evaluate", 1, node, 100, False, None)
    rec.flush_replies("evaluate", 1)
    rec.stop()
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(rows) == 105 and rows[-1]["phase"] == "evaluate"


def test_fl_jsonl_is_flushed_at_the_end_of_each_round(tmp_path):
    rec = RoundRecorder(tmp_path / "fl", meters=[_server_meter()])
    rec.start(2)
    rec.open_round(1)
    rec.note_download("train", 1, 10)
    rec.note_reply("train", 1, 1, 10, False, _reply_record())
    rec.flush_replies("train", 1)
    rec.open_round(2)  # closes round 1
    path = tmp_path / "fl" / "fl.jsonl"
    assert len(path.read_text().splitlines()) == 1
    rec.stop()


# --- Run.fl_messages ------------------------------------------------------------------------


def test_fl_messages_columns_and_types(tmp_path):
    def factory() -> list[FakeMeter]:
        spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(50.0), has_power=False)
        return [FakeMeter([spec], time.monotonic)]

    _run(tmp_path, EnergyMod(meters_factory=factory), nodes=3, rounds=2)
    frame = greentrack.load_run(tmp_path / "fl").fl_messages
    assert list(frame.columns) == list(FL_MESSAGE_COLUMNS)
    assert len(frame) == 2 * 2 * 3
    assert {c: str(frame[c].dtype) for c in frame} == {
        c: dtype for c, (_, dtype) in FL_MESSAGE_COLUMNS.items()
    }
    assert set(frame["phase"]) == {"train", "evaluate"}
    assert sorted(set(frame["round"])) == [1, 2]
    assert (frame["download_bytes"] > 0).all() and (frame["upload_bytes"] > 0).all()
    assert not frame["failed"].any() and frame["failure"].isna().all()
    assert (frame["client_basis"] == "measured").all()
    assert (frame["client_pid"] > 0).all() and frame["client_host"].notna().all()


def test_fl_messages_failures_and_missing_values(tmp_path):
    rec = RoundRecorder(tmp_path / "fl", meters=[_server_meter()])
    rec.start(1)
    rec.open_round(1)
    for node in (1, 2, 3):
        rec.note_download("train", node, 10)
    rec.note_reply("train", 1, 1, 10, False, _reply_record())
    rec.note_reply("train", 1, 2, None, True, None)
    rec.flush_replies("train", 1)  # node 3 never replied
    rec.stop()
    frame = greentrack.load_run(tmp_path / "fl").fl_messages.set_index("node_id")
    assert frame["failure"].isna().tolist() == [True, False, False]
    assert list(frame["failed"]) == [False, True, True]
    assert frame.loc[2, "failure"] == "error" and frame.loc[3, "failure"] == "no reply"
    assert frame["client_measured_j"].isna().tolist() == [False, True, True]
    assert frame["upload_bytes"].isna().tolist() == [False, True, True]


def test_fl_messages_of_a_run_without_flower_is_empty_with_columns(tmp_path):
    with greentrack.track(tmp_path / "plain", meters=[_server_meter()]):
        pass
    frame = greentrack.load_run(tmp_path / "plain").fl_messages
    assert frame.empty and list(frame.columns) == list(FL_MESSAGE_COLUMNS)
    assert {c: str(frame[c].dtype) for c in frame} == {
        c: dtype for c, (_, dtype) in FL_MESSAGE_COLUMNS.items()
    }


# --- metadata gathered once per process ------------------------------------------------------


def test_metadata_is_cached_per_process(monkeypatch, tmp_path):
    runs: list[Any] = []
    versions: list[str] = []
    real_run, real_version = subprocess.run, metadata.importlib_metadata.version

    def counting_run(*a: Any, **k: Any) -> Any:
        runs.append(a)
        return real_run(*a, **k)

    def counting_version(name: str) -> str:
        versions.append(name)
        return real_version(name)

    monkeypatch.setattr(metadata.subprocess, "run", counting_run)
    monkeypatch.setattr(metadata.importlib_metadata, "version", counting_version)
    metadata.clear_cache()
    try:
        for i in range(3):
            with greentrack.track(tmp_path / f"r{i}", meters=[_server_meter()]):
                pass
        git_calls, version_calls = len(runs), len(versions)
        assert git_calls <= 3  # rev-parse x2 + status, for the first start only
        assert version_calls == len(metadata.FRAMEWORKS)
        metas = [json.loads((tmp_path / f"r{i}" / "meta.json").read_text()) for i in range(3)]
        assert metas[0]["software"] == metas[2]["software"] and metas[0]["software"]
        assert metas[0]["git"] == metas[2]["git"]
        assert metas[0]["host"] == metas[2]["host"]
    finally:
        metadata.clear_cache()


def test_prefetch_fills_the_cache_and_collect_waits_for_it(monkeypatch):
    metadata.clear_cache()
    try:
        metadata.prefetch().join(timeout=60)
        calls: list[Any] = []
        monkeypatch.setattr(metadata.subprocess, "run", lambda *a, **k: calls.append(a))
        meta = metadata.collect(
            run_id="x", project=None, name=None, config=None, command=[], start_unix_s=0.0
        )
        assert calls == []  # nothing gathered again
        assert meta["software"] and meta["host"]["hostname"]
    finally:
        metadata.clear_cache()


def test_start_does_not_wait_for_git_and_meta_json_is_completed(monkeypatch, tmp_path):
    """git and package versions are gathered off the start's path: the first meta.json names
    them pending, the tracker rewrites it whole when they arrive, and stop waits for them only
    up to META_WAIT_S (a hung git never holds the run)."""
    import threading

    from greentrack import tracker as tracker_module

    release = threading.Event()
    real_git = metadata._git_info

    def slow_git(cwd: Any) -> Any:
        assert release.wait(timeout=30)
        return real_git(cwd)

    monkeypatch.setattr(metadata, "_git_info", slow_git)
    monkeypatch.setattr(tracker_module, "META_WAIT_S", 0.05)
    metadata.clear_cache()
    try:
        tracker = greentrack.Tracker(tmp_path / "r", meters=[_server_meter()]).start()
        first = json.loads((tmp_path / "r" / "meta.json").read_text())
        assert first["git"] is None and "git" in first["pending"]
        tracker.stop()  # git still running: stop waited 0.05 s, not for git
        waiting = json.loads((tmp_path / "r" / "meta.json").read_text())
        assert waiting["pending"] == ["git"]  # the package versions did not wait for git
        assert waiting["software"] == metadata.package_versions()
        summary = json.loads((tmp_path / "r" / "summary.json").read_text())
        assert summary["duration_s"] < 5  # the final reading did not wait for git either
        release.set()
        assert tracker._meta_thread is not None
        tracker._meta_thread.join(timeout=30)
        done = json.loads((tmp_path / "r" / "meta.json").read_text())
        assert "pending" not in done and done["software"] == metadata.package_versions()
        assert done["git"] == metadata.git_info() and done["run_id"] == first["run_id"]
        assert done["channels"] == first["channels"]  # the rest is as it was written
    finally:
        release.set()
        metadata.clear_cache()


def test_live_children_found_at_rescans_and_reused_pids_not_counted(monkeypatch):
    from greentrack.meters import estimate

    monkeypatch.setattr(estimate, "CHILDREN_RESCAN_S", 3600.0)
    estimate._CHILDREN.clear()
    before = estimate.process_busy_s()  # scans now: no child yet
    # the child spins until it has had 0.5 s of CPU of its own (however loaded the machine),
    # then says so and sleeps: the test waits for that, never for a wall-clock time
    spin = (
        "import sys, time\nwhile time.process_time() < 0.5: pass\n"
        "print('ready', flush=True)\ntime.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        unseen = estimate.process_busy_s()  # the known children only: not this one yet
        assert unseen - before < 0.2
        monkeypatch.setattr(estimate, "CHILDREN_RESCAN_S", 0.0)
        seen = estimate.process_busy_s()  # a rescan finds it, with all its CPU time so far
        assert seen - unseen > 0.3
        # a pid that is no longer our child's (reused) is not counted
        known = estimate._CHILDREN[0]
        me = os.readlink("/proc/self")  # our pid as /proc numbers it
        # other children of this test process (an earlier test's, still exiting) may be there
        assert (str(child.pid), me) in known.pids
        assert all(parent == me for _, parent in known.pids)
        assert estimate._stat_cpu_s(str(child.pid), "1") == 0.0
        assert estimate._stat_cpu_s(str(child.pid), me) > 0.3
    finally:
        child.kill()
        child.wait()
        estimate._CHILDREN.clear()


def test_client_records_a_server_cannot_read_count_as_unmeasured(tmp_path):
    """A reply whose record is damaged or from another version never fails the round: the
    client is counted unmeasured, its bytes still counted, and the inner strategy never sees
    the record."""
    from greentrack.integrations.flower.keys import FIELD, RECORD, decode_record

    assert decode_record({FIELD: "{not json"}) is None
    assert decode_record({FIELD: "[1, 2]"}) is None and decode_record({}) is None
    assert decode_record({FIELD: "[" * 100_000}) is None  # past the recursion limit
    good = {"measured_j": 1.0, "estimated_j": 0.0, "duration_s": 0.1, "methods": "cpu:x"}
    damaged = iter(
        [
            "{not json",
            json.dumps({"measured_j": "lots"}),
            json.dumps({"pid": 3}),
            '{"measured_j": 1' + "0" * 400 + ', "estimated_j": 0, "duration_s": 1, "methods": ""}',
            json.dumps({**good, "estimated_j": float("nan")}),
            json.dumps({**good, "measured_j": -5000.0}),  # would make the total negative
            json.dumps({**good, "windows": [{"device": "g", "t0": "x", "t1": 1, "e0_j": 0}]}),
        ]
    )

    def bad_mod(msg: Any, context: Any, call_next: Any) -> Any:
        reply = call_next(msg, context)
        reply.content[RECORD] = ConfigRecord({FIELD: next(damaged, "{}")})
        return reply

    with pytest.warns(RuntimeWarning, match="energy record in round 1 could not be read"):
        strategy = _run(tmp_path, bad_mod, nodes=4, rounds=1)
    run = greentrack.load_run(strategy.run_dir)
    frame = run.fl_messages
    assert len(frame) == 8 and not frame["failed"].any()
    # six damaged records and the eighth reply's empty one ("{}"): unmeasured; the seventh's
    # bad windows are only left out
    assert frame["client_measured_j"].isna().sum() == 7
    assert (frame["client_measured_j"].dropna() >= 0).all()
    assert (frame["upload_bytes"] > 0).all()
    # the summary says what the report says about them
    text = str(greentrack.summarize(run))
    assert "7 without an energy record" in text and "record the server could not read" in text
    total = text.split("federated total")[1].split("\n")[0]
    assert not re.search(r"(?<![\d.e])-\d", total), total  # never negative


def test_a_message_wire_cannot_size_is_recorded_with_unknown_bytes(tmp_path):
    from greentrack.integrations.flower.wire import bytes_or_none

    def unknown(message: Any) -> int:
        raise TypeError("wire_size: unsupported Flower object Tensor")

    with pytest.warns(RuntimeWarning, match="could not size a Flower message.*Tensor"):
        assert bytes_or_none(unknown, object()) is None


def test_no_channel_no_record_and_numpy_totals_are_encoded():
    nothing = EnergyMod(meters_factory=list)  # no meter at all: nothing to report
    assert client_record(nothing(_message(), None, handler)) is None

    class NumpyMeter(FakeMeter):
        def read_energy_j(self) -> dict[str, Any]:
            return {k: np.float32(v) for k, v in super().read_energy_j().items()}

    spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(5.0), has_power=False)
    mod = EnergyMod(meters_factory=lambda: [NumpyMeter([spec], time.monotonic)])
    record = client_record(mod(_message(), None, handler))
    assert record is not None and record["measured_j"] >= 0.0


def test_legacy_metrics_carry_the_record_as_one_entry():
    from greentrack.integrations.flower import LEGACY_PREFIX, pop_legacy_record
    from greentrack.integrations.flower.keys import FIELD, encode_record

    metrics: dict[str, Any] = {"accuracy": 0.9}
    metrics[LEGACY_PREFIX + FIELD] = encode_record({"measured_j": 2.0, "windows": []})
    assert pop_legacy_record(metrics) == {"measured_j": 2.0, "windows": []}
    assert metrics == {"accuracy": 0.9}  # what the inner strategy aggregates
    assert pop_legacy_record(metrics) is None
    metrics[LEGACY_PREFIX + FIELD] = "{damaged"  # present, unreadable: counted unmeasured
    assert pop_legacy_record(metrics) == {} and metrics == {"accuracy": 0.9}


def test_without_children_lists_psutil_answers(monkeypatch):
    from greentrack.meters import estimate

    monkeypatch.setattr(estimate, "_children_of", lambda pid: None)  # an old or odd kernel
    monkeypatch.setattr(estimate, "_psutil_children_cpu_s", lambda: 100.0)
    estimate._CHILDREN.clear()
    try:
        assert estimate.process_busy_s() >= 100.0
        assert not estimate._CHILDREN[0].lists
    finally:
        estimate._CHILDREN.clear()


def test_basis_follows_the_channels_not_what_a_window_counted():
    """A window too short for the CPU estimate to count anything is still an estimate."""
    idle = FakeChannelSpec("cpu", "cpu", PowerTrace.constant(0.0), source="estimated")
    mod = EnergyMod(meters_factory=lambda: [FakeMeter([idle], time.monotonic)])
    record = client_record(mod(_message(), None, handler))
    assert record is not None and record["estimated_j"] == 0.0
    assert record["basis"] == "estimated"


def test_process_cpu_time_is_finer_than_clock_ticks():
    from greentrack.meters import estimate

    t0 = estimate.process_busy_s()
    end = time.process_time() + 0.002
    while time.process_time() < end:  # 2 ms of CPU: less than one 10 ms clock tick
        pass
    assert 0.001 < estimate.process_busy_s() - t0 < 0.5
