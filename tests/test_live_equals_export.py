"""Two views of one run never disagree: the total a callback logs live at an epoch's end is the
account's cumulative energy at that epoch's end, and so the exported series' (docs/metrics.md).

Both read the same snapshot: the live figure reads the reading the epoch's span ended on
(``SpanRecord.end_total_j``), and the account's energy curve passes through the exact reading
at every span's edge (``Run.span_readings``), however coarse the timeline between them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import greentrack  # noqa: E402
from greentrack.account import account_run  # noqa: E402
from greentrack.account.curve import run_curve  # noqa: E402
from greentrack.export.record import record_of  # noqa: E402
from greentrack.live import LiveRun  # noqa: E402
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace  # noqa: E402
from greentrack.tracker import Span, SpanRecord, Tracker, TrackerOptions  # noqa: E402
from tests.helpers import gpu_cpu_meters, run_for  # noqa: E402

COARSE = TrackerOptions.from_kwargs(row_interval_s=60.0, counter_interval_s=60.0)
"""A timeline row a minute: no row falls inside a tiny run's epochs."""


def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


# --- a real CPU Trainer ---------------------------------------------------------------------


def test_live_total_at_each_epoch_end_is_the_accounts_and_the_exports(tmp_path: Path) -> None:
    from greentrack.integrations.lightning import EmissionsCallback, pl
    from tests.lightning_helpers import TinyModel, fake_meters, loaders

    cb = EmissionsCallback(
        tmp_path / "run",
        carbon=greentrack.CarbonSettings.resolve("FR", pue=1.2),
        meters_factory=fake_meters,
        options=COARSE,
    )
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        callbacks=[cb],
        logger=pl.loggers.CSVLogger(tmp_path / "logs", name="", version=0),
        limit_train_batches=4,
        limit_val_batches=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        log_every_n_steps=1,
    )
    trainer.fit(TinyModel(), *loaders())
    run = greentrack.load_run(tmp_path / "run")
    epochs = run.spans[run.spans["name"] == "train_epoch"]
    first, last = float(epochs["start_unix_s"].min()), float(epochs["end_unix_s"].max())
    rows = run.timeline["time"].map(lambda t: t.timestamp())
    assert not ((rows > first) & (rows < last)).any()  # the timeline says nothing in there
    logged = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    logged = logged.dropna(subset=["energy/epoch_kwh"]).reset_index(drop=True)
    account = account_run(run)
    assert account.units is not None and account.units["unit"] == "epoch"
    units = account.units["rows"]
    series = record_of(account, "tiny").series  # no export target needed to build it
    assert len(logged) == len(units) == len(series["energy/total_kwh"]) == 3
    for k, row in enumerate(units):
        live = logged.loc[k]
        assert row["index"] == k
        assert live["energy/total_kwh"] == pytest.approx(row["cumulative_kwh"], rel=1e-9)
        assert live["energy/total_co2e_g"] == pytest.approx(row["cumulative_co2e_g"], rel=1e-9)
        assert live["energy/epoch_kwh"] == pytest.approx(row["energy_kwh"], rel=1e-9)
        for name in ("total_kwh", "total_co2e_g", "epoch_kwh"):
            point = series[f"energy/{name}"][k]
            assert point.step == k
            assert point.value == pytest.approx(live[f"energy/{name}"], rel=1e-9)


# --- the curve: exact at every span's edge ----------------------------------------------------

# a power trace that rises and falls, so that a row's power integral runs ahead of the counter
# that later sets it back (the rows disagree with the exact readings around them)
TRACE = st.lists(st.tuples(st.floats(0.1, 4.0), st.floats(0.0, 500.0)), min_size=1, max_size=5)
STEP = st.one_of(st.just(0.0), st.floats(0.01, 3.0))  # 0: two edges at one instant
OPS = st.lists(st.tuples(st.sampled_from(["begin", "end", "wait"]), STEP), min_size=2, max_size=25)
"""Begin a span, end one of those open (spans overlap) or wait; what is open at the stop ends
there (``unclosed``)."""


def _meters(gpu: list[tuple[float, float]], cpu: list[tuple[float, float]], clock: ManualClock):
    return [
        FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace(gpu, repeat=True))], clock),
        FakeMeter(
            [FakeChannelSpec("cpu0", "cpu", PowerTrace(cpu, repeat=True), has_power=False)], clock
        ),
    ]


def _advance(tracker: Tracker, clock: ManualClock, seconds: float) -> None:
    """Move the clock by ``seconds`` in steps of at most 0.1 s, ticking the sampler."""
    while seconds > 1e-12:
        dt = min(0.1, seconds)
        clock.advance(dt)
        tracker.sampler.tick()
        seconds -= dt


def _edges_in_file(path: Path) -> list[tuple[float, float]]:
    """(UTC s, J) of every span edge, read from spans.jsonl itself: a begin line holds the
    cumulative reading, an end line the span's energy."""
    begins: dict[str, dict] = {}
    out = []
    for line in (path / "spans.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == "begin":
            begins[rec["span_id"]] = rec
            out.append((rec["t_unix_s"], sum(rec["energy_j"].values())))
        else:
            b = begins[rec["span_id"]]
            at = sum(b["energy_j"][c] + rec["energy_j"][c] for c in rec["energy_j"])
            out.append((max(rec["t_unix_s"], b["t_unix_s"]), at))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gpu=TRACE,
    cpu=TRACE,
    row_s=st.sampled_from([0.1, 0.5, 2.0, 30.0]),
    counter_rows=st.integers(1, 5),
    ops=OPS,
)
def test_the_run_curve_passes_through_every_span_edges_reading(
    gpu: list[tuple[float, float]],
    cpu: list[tuple[float, float]],
    row_s: float,
    counter_rows: int,
    ops: list[tuple[str, float]],
) -> None:
    root = Path(tempfile.mkdtemp()) / "run"
    clock = ManualClock(1_700_000_000.0)
    options = TrackerOptions.from_kwargs(
        row_interval_s=row_s, counter_interval_s=row_s * counter_rows
    )
    tracker = Tracker(
        root, meters=_meters(gpu, cpu, clock), options=options, clock=clock, background=False
    )
    records: list[SpanRecord] = []
    with tracker:
        open_spans: list[Span] = []
        for i, (op, seconds) in enumerate(ops):
            _advance(tracker, clock, seconds)
            if op == "begin":
                open_spans.append(tracker.begin_span(f"s{i}", parent=None))
            elif op == "end" and open_spans:  # spans overlap: end any of them
                records.append(tracker.end_span(open_spans.pop(i % len(open_spans))))
        _advance(tracker, clock, 0.5)
    run = greentrack.load_run(root)
    curve = run_curve(run)
    t, e = curve.t_unix_s, curve.energy_j
    assert (np.diff(t) > 0).all() and (np.diff(e) >= 0).all()
    assert e[0] == 0.0 and e[-1] == pytest.approx(sum(run.totals_j().values()), rel=1e-12)
    for at, reading in _edges_in_file(root):
        assert float(np.interp(at, t, e)) == pytest.approx(reading, rel=1e-12, abs=1e-9)
    for r in records:  # what a live figure reads at a span's end is the curve's value there
        assert _close(float(np.interp(r.end_unix_s, t, e)), sum(r.end_total_j.values()), 1e-12)


# --- the live run: every unit's total is the account's ---------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gpu=TRACE,
    cpu=TRACE,
    row_s=st.sampled_from([0.1, 1.0, 60.0]),
    units=st.integers(1, 4),
    unit_s=st.floats(0.05, 5.0),
    segments=st.integers(1, 2),
)
def test_the_total_logged_after_each_unit_is_the_accounts_cumulative(
    gpu: list[tuple[float, float]],
    cpu: list[tuple[float, float]],
    row_s: float,
    units: int,
    unit_s: float,
    segments: int,
) -> None:
    root = Path(tempfile.mkdtemp()) / "run"
    clock = ManualClock(1_700_000_000.0)
    options = TrackerOptions.from_kwargs(row_interval_s=row_s, counter_interval_s=row_s)
    live = LiveRun(root, region="DE", pue=1.3, clock=clock, options=options)
    logged = []
    for _ in range(segments):
        live.open("fit", meters=_meters(gpu, cpu, clock))
        assert live.tracker is not None
        _advance(live.tracker, clock, 0.7)  # set-up: inside the run, outside epochs
        for k in range(units):
            live.begin("epoch", "train_epoch", epoch=k)
            _advance(live.tracker, clock, unit_s)
            logged.append(live.step(live.end("epoch"), remaining=units - k - 1).metrics)
            _advance(live.tracker, clock, 0.3)  # validation and the like, between epochs
        live.close()
    account = account_run(greentrack.load_run(root))
    assert account.units is not None
    rows = account.units["rows"]
    assert len(rows) == len(logged) == units * segments
    for m, row in zip(logged, rows, strict=True):
        assert _close(m["energy/total_kwh"], row["cumulative_kwh"])
        assert _close(m["energy/total_co2e_g"], row["cumulative_co2e_g"])
        assert _close(m["energy/epoch_kwh"], row["energy_kwh"])


def test_a_span_edge_above_the_runs_total_is_left_out_and_said(tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = Tracker(tmp_path, meters=gpu_cpu_meters(clock), clock=clock, background=False)
    with tracker:
        run_for(tracker, clock, 8.0)
        span = tracker.begin_span("late")
        run_for(tracker, clock, 1.0)
        tracker.end_span(span)
        run_for(tracker, clock, 1.0)
    lines = [json.loads(x) for x in (tmp_path / "spans.jsonl").read_text().splitlines()]
    total = sum(greentrack.load_run(tmp_path).totals_j().values())
    # an edited end line: the span's energy is possible, but begin + energy is not
    lines[1]["energy_j"]["gpu0"] = 2000.0
    (tmp_path / "spans.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = greentrack.load_run(tmp_path)
    readings = run.span_readings
    assert readings["edge"].tolist() == ["begin"]
    assert readings["gpu0_energy_j"].iloc[0] == lines[0]["energy_j"]["gpu0"]
    said = [d for d in run.damage if "span edge" in d]
    assert len(said) == 1 and "gpu0 at its end" in said[0] and "more than the run's" in said[0]
    curve = run_curve(run)
    assert float(curve.energy_j[-1]) == pytest.approx(total, rel=1e-12)
    assert float(np.interp(lines[0]["t_unix_s"], curve.t_unix_s, curve.energy_j)) == (
        pytest.approx(sum(lines[0]["energy_j"].values()), rel=1e-12)
    )
    _ = run.spans  # the spans' own damage is said once, however many readers of the lines
    assert len(run.damage) == len(set(run.damage))
