"""Issue 22, "One source of truth": figures a user checked by hand.

Each test builds a run directory with fake meters on a manual clock and checks one figure of
the account against arithmetic done here: a stored provider series is charged by every view,
an override changes only what it names, a federated client's components keep their own
ranges, a federated series weights the whole federated energy, GPU-hours are device time,
phase durations are wall time and the cumulative energy never falls below the epochs'.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import greentrack
from greentrack.account import AccountOptions, account_run
from greentrack.account.accuracy import CPU_MODEL, DRAM_MODEL, NVML
from greentrack.carbon.intensity import resolve_region
from greentrack.carbon.providers.base import ProviderQuery, ProviderResult, parse_raw
from greentrack.carbon.settings import resolve_settings
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.report.model import ReportOptions, build_report
from greentrack.rundir.format import INTENSITY
from greentrack.rundir.writer import write_json_atomic
from greentrack.tracker import Tracker
from greentrack.units import J_PER_KWH
from tests.helpers import run_for
from tests.report_helpers import whatif

GB_START = 1_678_795_200.0  # 2023-03-14T12:00Z, on a half hour


def step_value(t: float) -> float:
    """A known series: 100 gCO2/kWh in the first half hour of the run, 300 after."""
    return 100.0 if t < GB_START + 1800 else 300.0


def store_ukci(path: Path, start: float, end: float, value: Callable[[float], float]) -> None:
    """Store a UK Carbon Intensity response for ``[start, end]`` in a run directory, as the
    tracker does after fetching it (offline: the body is built here)."""
    a = math.floor((start - 3600) / 1800) * 1800
    b = math.ceil((end + 3600) / 1800) * 1800
    rows = []
    t = a
    while t < b:
        from datetime import datetime, timezone

        def fmt(s: float) -> str:
            return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")

        v = value(t)
        rows.append(
            {"from": fmt(t), "to": fmt(t + 1800), "intensity": {"forecast": v, "actual": v}}
        )
        t += 1800
    query = ProviderQuery("GB", a, b, "history", "https://api.carbonintensity.org.uk")
    raw = ({"data": rows},)
    result = ProviderResult(
        series=parse_raw("ukci", query, raw),
        provider="ukci",
        query=query,
        fetched_at="2023-03-15T00:00:00Z",
        licence="CC BY 4.0",
        attribution="NESO",
        kind="average",
        factor_type=None,
        raw=raw,
    )
    write_json_atomic(path / INTENSITY, result.to_json())


def tracked(
    path: Path,
    start: float,
    seconds: float,
    *,
    gpu_w: float = 300.0,
    cpu_w: float | None = None,
    region: str | None = "GB",
    pue: float | None = 1.25,
    extra: dict[str, Any] | None = None,
    epochs: int = 0,
    trace: PowerTrace | None = None,
    step: float = 1.0,
) -> float:
    """A tracked process: a measured GPU (and an estimated CPU), ``epochs`` train_epoch
    spans over ``seconds``. Returns when it stopped (UTC)."""
    clock = ManualClock(start)
    specs = [FakeChannelSpec("gpu0", "gpu", trace or PowerTrace.constant(gpu_w))]
    if cpu_w is not None:
        specs.append(
            FakeChannelSpec(
                "cpu", "cpu", PowerTrace.constant(cpu_w), source="estimated", has_power=False
            )
        )
    tracker = Tracker(
        path,
        meters=[FakeMeter([s], clock) for s in specs],
        clock=clock,
        background=False,
        carbon=resolve_settings(region, pue=pue) if region else None,
        extra_meta=extra or {"framework": "lightning"},
    )
    with tracker:
        if epochs:
            for k in range(epochs):
                span = tracker.begin_span("train_epoch", parent=None, epoch=k)
                run_for(tracker, clock, seconds / epochs, step=step)
                tracker.end_span(span)
        else:
            run_for(tracker, clock, seconds, step=step)
    return clock.time()


def report_run(path: Path, **kw: Any) -> dict[str, Any]:
    return build_report([path], ReportOptions(**kw)).to_dict()["runs"][0]  # type: ignore[no-any-return]


# --- 1. a stored series is the run's series in every view ---------------------------------------


def test_a_stored_series_is_charged_by_summary_report_and_whatif(tmp_path: Path) -> None:
    path = tmp_path / "run"
    end = tracked(path, GB_START + 1500, 600.0)  # 12:25-12:35: half at 100, half at 300
    store_ukci(path, GB_START + 1500, end, step_value)
    acct = account_run(greentrack.load_run(path))
    assert acct.carbon is not None and acct.carbon.method == "series"
    assert acct.carbon.intensity.value == pytest.approx(200.0, rel=1e-3)
    assert acct.co2e_g is not None
    assert acct.co2e_g.value == pytest.approx(acct.it_kwh.value * 1.25 * 200.0, rel=1e-3)
    summary = greentrack.summarize(path).to_dict()
    assert summary["co2e_g"] == acct.co2e_g.to_dict()
    assert report_run(path)["headline"]["co2e_g"] == acct.co2e_g.value
    assert whatif(path)["co2e_g"] == acct.co2e_g.to_dict()


# --- 2. an override changes only what it names --------------------------------------------------


def test_region_override_keeps_the_runs_pue(tmp_path: Path) -> None:
    path = tmp_path / "run"
    tracked(path, GB_START, 60.0)
    acct = account_run(greentrack.load_run(path))
    assert acct.carbon is not None and acct.co2e_g is not None
    w = whatif(path, region="GB")
    assert w["carbon"]["pue"]["value"] == 1.25
    assert w["co2e_g"] == acct.co2e_g.to_dict()  # the run's own region: the run's figure
    r = report_run(path, region="GB")
    assert r["headline"]["co2e_g"] == acct.co2e_g.value and r["headline"]["pue"] == 1.25
    fr = account_run(greentrack.load_run(path), AccountOptions(region="FR"))
    assert fr.carbon is not None and fr.co2e_g is not None
    assert fr.carbon.pue.value == 1.25
    gco2e = resolve_region("FR").gco2e_per_kwh
    assert fr.co2e_g.value == pytest.approx(acct.it_kwh.value * 1.25 * gco2e, rel=1e-12)


def test_overrides_and_a_stored_series(tmp_path: Path) -> None:
    path = tmp_path / "run"
    end = tracked(path, GB_START + 1500, 600.0)
    store_ukci(path, GB_START + 1500, end, step_value)
    run = greentrack.load_run(path)
    it = account_run(run).it_kwh.value
    same = account_run(run, AccountOptions(region="GB"))  # the series' own region: kept
    assert same.carbon is not None and same.carbon.method == "series"
    assert same.carbon.pue.value == 1.25
    other = account_run(run, AccountOptions(region="FR"))  # another region: its annual figure
    assert other.carbon is not None and other.carbon.method == "annual"
    assert other.carbon.region == "FR" and other.carbon.pue.value == 1.25
    assert any("intensity.json" in n and "FR" in n for n in other.notes)
    pue = account_run(run, AccountOptions(pue=1.5))  # another PUE: the series is kept
    assert pue.carbon is not None and pue.carbon.method == "series"
    assert pue.co2e_g is not None
    assert pue.co2e_g.value == pytest.approx(it * 1.5 * 200.0, rel=1e-3)
    r = report_run(path, region="FR")
    assert r["headline"]["co2e_g"] == other.co2e_g.value if other.co2e_g else False


# --- 3. federated: each component's own range; the whole energy weighted in time ---------------


def _server(path: Path, start: float, rounds: Sequence[tuple[float, float]], **kw: Any) -> float:
    """A Flower server run with ``round`` spans at ``(start offset, seconds)``; returns its
    end. Its own power is small (2% of a deployment's energy, as the issue says)."""
    clock = ManualClock(start)
    tracker = Tracker(
        path,
        meters=[FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(5.0))], clock)],
        clock=clock,
        background=False,
        carbon=resolve_settings("GB", pue=1.0),
        extra_meta={"framework": "flwr", "fl_role": "server", "fl": {"api": "message"}},
    )
    with tracker:
        for i, (offset, seconds) in enumerate(rounds, start=1):
            run_for(tracker, clock, start + offset - clock.time(), step=10.0)
            span = tracker.begin_span("round", parent=None, round=i)
            run_for(tracker, clock, seconds, step=10.0)
            tracker.end_span(span)
        run_for(tracker, clock, kw.get("tail", 10.0), step=10.0)
    return clock.time()


def _fl(path: Path, rows: list[dict[str, Any]]) -> None:
    (path / "fl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_federated_client_components_keep_their_own_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "run"
    _server(path, GB_START, [(10.0, 60.0)])
    gpu_j, cpu_j, dram_j = 3.6e6, 1.8e6, 0.36e6
    _fl(
        path,
        [
            {
                "round": 1,
                "node_id": 1,
                "download_bytes": 0,
                "upload_bytes": 0,
                "error": False,
                "client_host": "elsewhere",
                "client_measured_j": gpu_j,
                "client_estimated_j": cpu_j + dram_j,
                "client_duration_s": 60.0,
                "client_methods": "cpu:tdp-x-utilisation;dram:w-per-gb-x-installed-memory;"
                "gpu:nvml-total-energy-counter",
                "client_basis": "measured",
                "client_components": {
                    "cpu": [0.0, cpu_j],
                    "dram": [0.0, dram_j],
                    "gpu": [gpu_j, 0.0],
                },
            }
        ],
    )
    acct = account_run(greentrack.load_run(path))
    client = next(p for p in acct.parts if p.key == "client_compute").energy_kwh
    low = (gpu_j * NVML.low + cpu_j * CPU_MODEL.low + dram_j * DRAM_MODEL.low) / J_PER_KWH
    high = (gpu_j * NVML.high + cpu_j * CPU_MODEL.high + dram_j * DRAM_MODEL.high) / J_PER_KWH
    assert client.value == pytest.approx((gpu_j + cpu_j + dram_j) / J_PER_KWH, rel=1e-12)
    assert client.low == pytest.approx(low) and client.high == pytest.approx(high)


def test_a_federated_series_weights_the_clients_energy_in_their_rounds(tmp_path: Path) -> None:
    """The server runs 12:00-13:00 at a few watts; the clients' energy (98% of the total) is
    all in a round from 12:40 to 12:50, at 300 g/kWh: the run-weighted intensity is close to
    300, not the server's 200 (its energy is spread evenly over 100 and 300)."""
    path = tmp_path / "run"
    end = _server(path, GB_START, [(2400.0, 600.0)], tail=1190.0)
    store_ukci(path, GB_START, end, step_value)
    _fl(
        path,
        [
            {
                "round": 1,
                "node_id": 1,
                "download_bytes": 0,
                "upload_bytes": 0,
                "error": False,
                "client_host": "elsewhere",
                "client_measured_j": 882_000.0,  # 49 x the server's 18 kJ
                "client_estimated_j": 0.0,
                "client_duration_s": 600.0,
                "client_methods": "gpu:nvml-total-energy-counter",
                "client_basis": "measured",
                "client_components": {"gpu": [882_000.0, 0.0]},
            }
        ],
    )
    acct = account_run(greentrack.load_run(path))
    assert acct.carbon is not None and acct.carbon.method == "series"
    seconds = end - GB_START
    server_j, client_j = 5.0 * seconds, 882_000.0
    server_g = (1800.0 * 100.0 + (seconds - 1800.0) * 300.0) / seconds  # evenly over its hours
    expected = (server_j * server_g + client_j * 300.0) / (server_j + client_j)
    assert acct.carbon.intensity.value == pytest.approx(expected, rel=1e-3)
    assert report_run(path)["headline"]["co2e_g"] == acct.co2e_g.value if acct.co2e_g else False


# --- 4. resumed on another GPU: device time, not GPUs x duration --------------------------------


def test_resumed_on_another_gpu_counts_each_gpus_own_hour(tmp_path: Path) -> None:
    path = tmp_path / "run"
    end = tracked(
        path, GB_START, 3600.0, extra={"framework": "x", "part": {"segment": 0, "rank": 0}}, step=60
    )
    tracked(
        path / "parts" / "seg1-rank0",
        end + 300.0,
        3600.0,
        extra={"framework": "x", "part": {"segment": 1, "rank": 0}},
        step=60,
    )
    meta = json.loads((path / "parts" / "seg1-rank0" / "meta.json").read_text())
    meta["channels"][0]["name"] = "another board"
    (path / "parts" / "seg1-rank0" / "meta.json").write_text(json.dumps(meta))
    acct = account_run(greentrack.load_run(path))
    assert acct.gpu_hours == pytest.approx(2.0, rel=1e-9)
    from greentrack.account.embodied import embodied_of

    share = embodied_of(acct)
    assert share is not None
    assert share.co2e_g.value == pytest.approx(18.14, abs=0.005)
    assert acct.to_dict()["gpu_hours"] == acct.gpu_hours


def test_ranks_on_their_own_gpus_add_their_hours(tmp_path: Path) -> None:
    path = tmp_path / "run"
    tracked(
        path, GB_START, 1800.0, extra={"framework": "x", "part": {"segment": 0, "rank": 0}}, step=60
    )
    rank1 = path / "parts" / "seg0-rank1"
    tracked(
        rank1,
        GB_START,
        1800.0,
        extra={"framework": "x", "part": {"segment": 0, "rank": 1}},
        step=60,
    )
    meta = json.loads((rank1 / "meta.json").read_text())
    meta["channels"][0]["details"] = {"uuid": "GPU-rank1"}
    (rank1 / "meta.json").write_text(json.dumps(meta))
    assert account_run(greentrack.load_run(path)).gpu_hours == pytest.approx(1.0, rel=1e-9)


# --- 5. phase durations are wall time -----------------------------------------------------------


def test_phase_duration_is_wall_time_over_ranks(tmp_path: Path) -> None:
    path = tmp_path / "run"
    tracked(
        path, GB_START, 2.0, epochs=1, extra={"framework": "x", "part": {"segment": 0, "rank": 0}}
    )
    tracked(
        path / "parts" / "seg0-rank1",
        GB_START + 0.1,
        2.0,
        epochs=1,
        extra={"framework": "x", "part": {"segment": 0, "rank": 1}},
    )
    acct = account_run(greentrack.load_run(path))
    phase = next(p for p in acct.phases if p["name"] == "train_epoch")
    assert phase["duration_s"] == pytest.approx(2.1, abs=1e-6)
    assert phase["rank_s"] == pytest.approx(4.0, abs=1e-6)
    assert phase["duration_s"] <= acct.duration_s + 1e-9


# --- 6. the cumulative energy never falls below the epochs' own --------------------------------


def test_cumulative_energy_covers_the_epochs_with_a_missing_row(tmp_path: Path) -> None:
    path = tmp_path / "run"
    # 10 W, then 1 kW in the last second of epoch 0, then 10 W again
    trace = PowerTrace([(9.0, 10.0), (1.0, 1000.0), (20.0, 10.0)])
    tracked(path, GB_START, 20.0, epochs=2, trace=trace, step=0.5)
    timeline = path / "timeline.csv"
    lines = timeline.read_text().splitlines(keepends=True)
    kept = [lines[0]] + [
        ln for ln in lines[1:] if not (GB_START + 9.5 <= float(ln.split(",")[0]) <= GB_START + 11.5)
    ]
    assert len(kept) < len(lines)
    timeline.write_text("".join(kept))
    acct = account_run(greentrack.load_run(path))
    assert acct.units is not None
    so_far = 0.0
    for row in acct.units["rows"]:
        so_far += row["energy_kwh"]
        assert row["cumulative_kwh"] >= so_far * (1 - 1e-9)
    from greentrack.account.build import cumulative

    t, kwh, _ = cumulative(acct)
    ends = [row["end_unix_s"] for row in acct.units["rows"]]
    import numpy as np

    at_end = np.interp(ends[0], t, kwh)
    assert at_end >= acct.units["rows"][0]["energy_kwh"] * (1 - 1e-9)
