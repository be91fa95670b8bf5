"""One run, one set of figures: every view of a run shows the account's totals and ranges.

Hypothesis builds run directories of every shape: one process; several ranks (parts); a
resumed segment; a federated server run with client replies measured, estimated, modeled or
missing, from the server's host or from others; measured and/or estimated channels; with an
annual region, a time series or no carbon at all. For each, the total energy, the total CO2e
and their ranges must be the same in the summary (text, JSON, Markdown), in every report
section and format (sentence, carbon, counterfactual "as run", Flexible Start and Pause &
Resume baselines, equivalences, forecast comparison, emissions to reach the last unit, the
cumulative figure's final values, the model card) and in ``greentrack whatif``.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import greentrack  # noqa: E402
from greentrack.account import AccountOptions, account_run  # noqa: E402
from greentrack.analysis.predict import forecast  # noqa: E402
from greentrack.carbon.settings import resolve_settings  # noqa: E402
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace  # noqa: E402
from greentrack.report import plots  # noqa: E402
from greentrack.report.model import ReportOptions, build_report  # noqa: E402
from greentrack.report.numbers import energy_range, mass_range  # noqa: E402
from greentrack.report.render import render, tex_escape  # noqa: E402
from greentrack.tracker import Tracker  # noqa: E402
from greentrack.views.summary import format_range  # noqa: E402
from tests.helpers import run_for  # noqa: E402
from tests.report_helpers import whatif  # noqa: E402

GB_START = 1_678_795_200.0  # 2023-03-14T12:00Z, inside the bundled GB series
SERIES_CSV = (
    Path(greentrack.__file__).parent
    / "carbon"
    / "data"
    / ("gb_carbon_intensity_2023-03-14_to_19.csv")
)


@dataclass(frozen=True)
class Shape:
    kind: str  # single | ranks | resumed | federated
    channels: str  # measured | estimated | both
    carbon: str  # none | annual | series
    seconds: float
    gpu_w: float
    cpu_w: float
    epochs: int
    clients: tuple[tuple[str, str, float, int], ...]  # (basis, where, joules, bytes)


CLIENT = st.tuples(
    st.sampled_from(["measured", "estimated", "modeled", "none", "error"]),
    st.sampled_from(["same-process", "same-host", "other-host"]),
    st.floats(0.5, 500.0),
    st.integers(0, 5_000_000),
)
SHAPES = st.builds(
    Shape,
    kind=st.sampled_from(["single", "ranks", "resumed", "federated"]),
    channels=st.sampled_from(["measured", "estimated", "both"]),
    carbon=st.sampled_from(["none", "annual", "series"]),
    seconds=st.floats(2.0, 30.0),
    gpu_w=st.floats(10.0, 700.0),
    cpu_w=st.floats(1.0, 200.0),
    epochs=st.integers(1, 4),
    clients=st.lists(CLIENT, min_size=1, max_size=6).map(tuple),
)


def _meters(shape: Shape, clock: ManualClock) -> list[FakeMeter]:
    specs = []
    if shape.channels in ("measured", "both"):
        specs.append(FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(shape.gpu_w)))
    if shape.channels in ("estimated", "both"):
        specs.append(
            FakeChannelSpec(
                "cpu", "cpu", PowerTrace.constant(shape.cpu_w), source="estimated", has_power=False
            )
        )
    return [FakeMeter([s], clock) for s in specs]


def _process(
    path: Path,
    shape: Shape,
    start: float,
    *,
    part: dict[str, object] | None,
    carbon: object,
    federated: bool,
) -> float:
    """One process of the run: epochs of train_epoch spans (or rounds), metrics and forecast
    events. Returns when it ended (UTC)."""
    clock = ManualClock(start)
    extra: dict[str, object] = {"framework": "lightning"}
    if part is not None:
        extra["part"] = part
    if federated:
        extra = {"framework": "flwr", "fl_role": "server", "fl": {"api": "message", "grid": ""}}
    tracker = Tracker(
        path,
        name=f"run {shape.kind}",
        meters=_meters(shape, clock),
        clock=clock,
        background=False,
        carbon=carbon,  # type: ignore[arg-type]
        extra_meta=extra,
    )
    per_unit: list[float] = []
    with tracker:
        unit = "round" if federated else "train_epoch"
        for k in range(shape.epochs):
            index = k + 1 if federated else k
            tags = {"round": index} if federated else {"epoch": index}
            span = tracker.begin_span(unit, parent=None, **tags)
            run_for(tracker, clock, shape.seconds / shape.epochs, step=0.5)
            per_unit.append(tracker.end_span(span).total_energy_j)
            key = "round" if federated else "epoch"
            tracker.event({"event": "metrics", key: index, "metrics": {"val_acc": 0.5 + 0.1 * k}})
            f = forecast(per_unit, shape.epochs - k - 1)
            tracker.event({"event": "forecast", key: index, **f.to_dict("j")})
        run_for(tracker, clock, 1.0, step=0.5)
    return clock.time()


def _fl_rows(shape: Shape, host: str, pid: int) -> list[dict[str, object]]:
    rows = []
    for i, (basis, where, joules, nbytes) in enumerate(shape.clients):
        r: dict[str, object] = {
            "round": 1 + i % shape.epochs,
            "phase": "train",
            "node_id": 100 + i,
            "download_bytes": nbytes,
            "upload_bytes": nbytes // 2,
            "error": basis == "error",
            "client_host": host if where != "other-host" else "elsewhere",
            "client_pid": pid if where == "same-process" else pid + 1,
        }
        if basis in ("measured", "estimated", "modeled"):
            measured = joules if basis == "measured" else 0.0
            estimated = joules if basis != "measured" else 0.0
            r.update(
                client_measured_j=measured,
                client_estimated_j=estimated,
                client_duration_s=1.0,
                client_methods="cpu:tdp-x-utilisation" if basis != "measured" else "gpu:x",
                client_basis=basis,
                client_components={"cpu" if basis != "measured" else "gpu": [measured, estimated]},
            )
        else:
            r.update(client_measured_j=None, client_estimated_j=None)
        rows.append(r)
    return rows


def build(shape: Shape, root: Path) -> Path:
    path = root / "run"
    carbon = resolve_settings("GB", pue=1.2) if shape.carbon != "none" else None
    federated = shape.kind == "federated"
    end = _process(path, shape, GB_START, part=None, carbon=carbon, federated=federated)
    if shape.kind == "ranks":
        for rank in (1, 2):
            _process(
                path / "parts" / f"seg0-rank{rank}",
                shape,
                GB_START + 0.25 * rank,
                part={"segment": 0, "rank": rank},
                carbon=carbon,
                federated=False,
            )
    if shape.kind == "resumed":
        _process(
            path / "parts" / "seg1-rank0",
            shape,
            end + 120.0,
            part={"segment": 1, "rank": 0},
            carbon=carbon,
            federated=False,
        )
    if federated:
        meta = json.loads((path / "meta.json").read_text())
        host, pid = meta["host"]["hostname"], meta["pid"]
        rows = _fl_rows(shape, host, pid)
        (path / "fl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def _whatif(path: Path, shape: Shape, **override: object) -> dict[str, object]:
    csv = SERIES_CSV if shape.carbon == "series" else None
    return whatif(path, **{"regions": "FR,PL", "intensity_csv": csv, **override})


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(SHAPES)
def test_every_view_shows_the_accounts_totals(shape: Shape) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = build(shape, Path(tmp))
        series = SERIES_CSV if shape.carbon == "series" else None
        from greentrack.account import AccountOptions
        from greentrack.carbon.series import IntensitySeries

        opts = AccountOptions(
            series=IntensitySeries.from_csv(series, value_column="gco2_per_kwh_actual")
            if series
            else None,
            regions=("FR", "PL"),
        )
        acct = account_run(greentrack.load_run(path), opts)
        it, co2e = acct.it_kwh, acct.co2e_g

        # the account is internally consistent: items add up, bounds hold
        assert it.low <= it.value <= it.high
        assert math.isclose(
            sum(i.energy_kwh.value for i in acct.items if i.in_total), it.value, rel_tol=1e-9
        )
        assert math.isclose(
            sum(acct.kwh_by_provenance.values()), it.value, rel_tol=1e-9, abs_tol=1e-15
        )
        if co2e is not None:
            assert co2e.low <= co2e.value <= co2e.high
        assert (co2e is None) == (shape.carbon == "none")

        # summary: JSON, text, Markdown
        summary = greentrack.summarize(greentrack.load_run(path), opts)
        data = summary.to_dict()
        assert data["energy"]["it_kwh"] == it.to_dict()
        assert data["co2e_g"] == (co2e.to_dict() if co2e else None)
        text, md = str(summary), summary.to_markdown()
        assert format_range(it) in text and format_range(it) in md
        if co2e is not None:
            assert format_range(co2e, "mass") in text and format_range(co2e, "mass") in md

        # the report: every section, every format
        report = build_report(
            [path],
            ReportOptions(
                intensity_csv=series,
                regions=["FR", "PL"],
                flexible_start_s=3600.0 if series else None,
                pause_resume=2.0 if series else None,
                metric="val_acc",
            ),
        )
        r = report.to_dict()["runs"][0]
        h = r["headline"]
        assert (h["energy_kwh"], h["energy_kwh_low"], h["energy_kwh_high"]) == (
            it.value,
            it.low,
            it.high,
        )
        assert r["energy"]["it_kwh"] == it.value
        if co2e is None:
            assert h["co2e_g"] is None and r["carbon"] is None
        else:
            assert (h["co2e_g"], h["co2e_g_low"], h["co2e_g_high"]) == (
                co2e.value,
                co2e.low,
                co2e.high,
            )
            assert r["carbon"]["co2e_g"] == co2e.value
            assert mass_range(co2e.value, co2e.low, co2e.high) in r["sentence"]
            cf = r["counterfactuals"]
            assert cf["baseline_co2e_g"] == co2e.value
            for row in cf["regions"]:
                if row["actual"]:
                    assert row["co2e_g"] == co2e.value
            if series is not None:
                assert _close(cf["flexible_start"]["actual_co2e_g"], co2e.value)
                assert _close(cf["pause_resume"]["actual_co2e_g"], co2e.value)
            car = next(e for e in r["equivalences"] if e["key"] == "car_km")
            assert math.isclose(car["amount"] * (404.0 / 1.609344), co2e.value, rel_tol=1e-9)
        assert energy_range(it.value, it.low, it.high) in r["sentence"]
        if r["federated"]:
            assert r["federated"]["total_kwh"] == it.value
            # the summary says what the report says about replies without a record
            unmeasured = r["federated"]["unmeasured_replies"]
            assert unmeasured == data["federated"]["unmeasured_replies"]
            assert (f"({unmeasured} without an energy record)" in text) == (unmeasured > 0)
            for note in r["federated"]["notes"]:
                assert f"note: {note}" in text
        if r["forecast"]:
            assert r["forecast"]["final_kwh"] == it.value
        m = r["metric"]
        if m and m["energy_kwh_to_reach"] is not None:
            assert m["energy_kwh_to_reach"] <= it.value * (1 + 1e-9)
            if r["federated"]:  # the best is reached in the last round: the whole total
                assert _close(m["energy_kwh_to_reach"], r["units"]["rows"][-1]["cumulative_kwh"])

        # the cumulative figure ends at the totals
        _, kwh, grams = plots.cumulative_data(report, report.runs[0])
        assert math.isclose(float(kwh[-1]), it.value, rel_tol=1e-9, abs_tol=1e-15)
        if co2e is not None and grams is not None and co2e.value > 0:
            assert math.isclose(float(grams[-1]), co2e.value, rel_tol=1e-9)

        # every format carries the same numbers; the model card its front matter
        for fmt in ("md", "html", "latex"):
            out = render(report, fmt)
            needle = energy_range(it.value, it.low, it.high)
            if fmt == "latex":
                needle = tex_escape(needle)
            assert needle in out, fmt
        assert json.loads(render(report, "json"))["runs"][0]["headline"] == h
        card = render(report, "model-card")
        import yaml

        front = yaml.safe_load(card.split("---")[1])
        if co2e is not None:
            emissions = front["co2_eq_emissions"]["emissions"]
            assert math.isclose(emissions, co2e.value, rel_tol=1e-3)
            assert emissions > 0 or co2e.value == 0
        assert front["greentrack"]["runs"][0]["energy_kwh"] == pytest.approx(it.value, rel=1e-3)

        # whatif: the same baseline
        w = _whatif(path, shape)
        assert w["energy_kwh_it"] == it.to_dict()
        assert w["co2e_g"] == (co2e.to_dict() if co2e else None)


@settings(max_examples=200, deadline=None)
@given(
    totals=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=400),
    max_rows=st.integers(1, 120),
)
def test_binned_rounds_keep_every_round_and_the_total(totals: list[float], max_rows: int) -> None:
    """A long federated run's table and figure group rounds; no round is lost or counted
    twice, the bins keep the order and the cumulative, and short runs are left as they are."""
    from greentrack.account.federated import binned_rounds

    rows, cumulative = [], 0.0
    for i, t in enumerate(totals, start=1):
        cumulative += t
        parts = {"client_kwh": t / 2, "upload_kwh": t / 8, "download_kwh": t / 8}
        parts["server_kwh"] = t - sum(parts.values())
        rows.append(
            {"round": i, "clients": 3, "failures": i % 2, "total_kwh": t, **parts}
            | {"cumulative_kwh": cumulative}
        )
    bins = binned_rounds(rows, max_rows)
    assert len(bins) <= max_rows
    assert sum(b["rounds"] for b in bins) == len(rows)
    assert [b["first"] for b in bins] == sorted(b["first"] for b in bins)
    assert all(b["last"] - b["first"] + 1 == b["rounds"] for b in bins)
    assert math.isclose(sum(b["total_kwh"] for b in bins), cumulative, abs_tol=1e-9)
    assert bins[-1]["cumulative_kwh"] == cumulative
    assert sum(b["failures"] for b in bins) == sum(r["failures"] for r in rows)
    if len(rows) <= max_rows:
        assert all(b["rounds"] == 1 for b in bins)


_DECLARED_RUN: list[Path] = []


def _declared_run() -> Path:
    """One tracked run, made once for the declared-work property (its figures are fixed)."""
    if not _DECLARED_RUN:
        from tests.report_helpers import training_run

        _DECLARED_RUN.append(training_run(Path(tempfile.mkdtemp()) / "run"))
    return _DECLARED_RUN[0]


_entry = st.fixed_dictionaries(
    {
        "count": st.integers(1, 64),
        "hours": st.floats(0.01, 5000, allow_nan=False),
        "watts": st.floats(1, 1500, allow_nan=False),
        "region": st.sampled_from([None, "DE", "US-CA", "FR"]),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(_entry, min_size=1, max_size=4),
    embodied=st.sampled_from([None, "a100-server-share", "gpu-card"]),
)
def test_declared_work_and_embodied_read_one_total(
    entries: list[dict[str, object]], embodied: str | None
) -> None:
    """Declared untracked work adds to the project total, once, in every view that shows a
    total (JSON total, brief block, model card); embodied carbon never changes an
    operational figure."""
    from greentrack.analysis.untracked import load_declared
    from greentrack.report.render import model_card_front_matter

    run = _declared_run()
    path = Path(tempfile.mkdtemp()) / "untracked.json"
    rows = [{k: v for k, v in e.items() if v is not None} for e in entries]
    path.write_text(json.dumps({"untracked": rows}))
    declared = load_declared(path)
    plain = build_report([run]).to_dict()
    data = build_report([run], ReportOptions(untracked=path, embodied=embodied)).to_dict()
    run_kwh = account_run(greentrack.load_run(run)).it_kwh.value
    total = data["total"]
    expected = run_kwh + sum(d.energy_kwh.value for d in declared)
    assert math.isclose(total["energy_kwh"], expected, rel_tol=1e-12)
    assert total["energy_kwh_low"] <= total["energy_kwh"] <= total["energy_kwh_high"]
    assert total["untracked_without_co2e"] == sum(1 for e in entries if e["region"] is None)
    brief = data["brief"]
    assert brief["total"]["energy_kwh"] == total["energy_kwh"]
    assert brief["total"]["co2e_g"] == total["co2e_g"]
    assert math.isclose(sum(r["energy_kwh"] for r in brief["rows"]), expected, rel_tol=1e-12)
    card = model_card_front_matter(data, None)
    if total["co2e_g"] is not None:
        co2e = card["co2_eq_emissions"]["emissions"]
        assert math.isclose(co2e, total["co2e_g"], rel_tol=1e-3)  # 4 significant digits
    assert data["runs"][0]["headline"] == plain["runs"][0]["headline"]  # embodied apart
    assert (data["runs"][0]["embodied"] is None) == (embodied is None)


# --- issue 22: one source of truth ------------------------------------------------------------

STORED = st.builds(
    Shape,
    kind=st.sampled_from(["single", "ranks", "resumed", "federated"]),
    channels=st.sampled_from(["measured", "estimated", "both"]),
    carbon=st.just("annual"),
    seconds=st.floats(2.0, 30.0),
    gpu_w=st.floats(10.0, 700.0),
    cpu_w=st.floats(1.0, 200.0),
    epochs=st.integers(1, 3),
    clients=st.lists(CLIENT, min_size=1, max_size=4).map(tuple),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    shape=STORED,
    values=st.lists(st.floats(20.0, 600.0), min_size=2, max_size=2),
    region=st.sampled_from([None, "GB", "FR", "DE"]),
    pue=st.sampled_from([None, 1.0, 1.5]),
)
def test_a_stored_series_and_overrides_in_every_view(
    shape: Shape, values: list[float], region: str | None, pue: float | None
) -> None:
    """A run holding a provider's series (intensity.json) is charged with it by the summary,
    the report and whatif alike; an override changes only what it names: another region keeps
    the run's PUE (and the series only for the series' own region), another PUE keeps the
    region and the series."""
    from tests.test_account_edges import store_ukci

    with tempfile.TemporaryDirectory() as tmp:
        path = build(shape, Path(tmp))
        run = greentrack.load_run(path)
        end = max(r.end_unix_s for r in [run, *run.parts])
        store_ukci(path, GB_START, end, lambda t: values[int(t // 1800) % 2])
        plain = account_run(greentrack.load_run(path))
        assert plain.carbon is not None and plain.carbon.method == "series"
        assert plain.co2e_g is not None
        assert greentrack.summarize(path).to_dict()["co2e_g"] == plain.co2e_g.to_dict()
        r = build_report([path], ReportOptions(regions=["FR"])).to_dict()["runs"][0]
        assert (r["headline"]["co2e_g"], r["headline"]["co2e_g_low"]) == (
            plain.co2e_g.value,
            plain.co2e_g.low,
        )
        w = _whatif(path, shape)
        assert w["co2e_g"] == plain.co2e_g.to_dict()

        # overrides: only what they name
        opts = AccountOptions(region=region, pue=pue, regions=())
        acct = account_run(greentrack.load_run(path), opts)
        assert acct.carbon is not None and acct.co2e_g is not None
        assert acct.carbon.pue.value == (pue if pue is not None else 1.2)
        assert acct.carbon.region == (region or "GB")
        assert acct.carbon.method == ("series" if region in (None, "GB") else "annual")
        assert math.isclose(
            acct.co2e_g.value,
            acct.it_kwh.value * acct.carbon.pue.value * acct.carbon.intensity.value,
            rel_tol=1e-9,
        )
        args = {"region": region, "pue": str(pue) if pue is not None else None}
        w = _whatif(path, shape, **args)
        assert w["co2e_g"] == acct.co2e_g.to_dict()
        r = build_report([path], ReportOptions(regions=["FR"], **args)).to_dict()["runs"][0]
        assert r["headline"]["co2e_g"] == acct.co2e_g.value


_METHODS = {
    "gpu": [("measured", "nvml-total-energy-counter"), ("measured", "x-unknown-counter")],
    "cpu": [("measured", "rapl-powercap-energy-counter"), ("estimated", "tdp-x-utilisation")],
    "dram": [
        ("measured", "rapl-powercap-energy-counter"),
        ("estimated", "w-per-gb-x-installed-memory"),
    ],
}
_COMPONENT = st.tuples(st.integers(0, 1), st.floats(1.0, 1e6))
_CLIENT_MIX = st.fixed_dictionaries({c: st.one_of(st.none(), _COMPONENT) for c in _METHODS}).filter(
    lambda d: any(v is not None for v in d.values())
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clients=st.lists(_CLIENT_MIX, min_size=1, max_size=4))
def test_federated_clients_of_mixed_methods_keep_each_components_range(
    clients: list[dict[str, tuple[int, float] | None]],
) -> None:
    """A client with a measured GPU, a modeled CPU and DRAM: each component lies within its own
    method's bounds (accuracy.py), whatever the order the methods are listed in."""
    from greentrack.account.accuracy import energy_accuracy

    shape = Shape("federated", "measured", "none", 2.0, 10.0, 1.0, 1, ())
    with tempfile.TemporaryDirectory() as tmp:
        path = build(shape, Path(tmp))
        rows, low, high, value = [], 0.0, 0.0, 0.0
        for i, mix in enumerate(clients):
            comps: dict[str, list[float]] = {}
            methods = []
            for component, pick in mix.items():
                if pick is None:
                    continue
                prov, method = _METHODS[component][pick[0]]
                comps[component] = [pick[1], 0.0] if prov == "measured" else [0.0, pick[1]]
                methods.append(f"{component}:{method}")
                a = energy_accuracy(method, prov)
                value += pick[1] / 3.6e6
                low += pick[1] * a.low / 3.6e6
                high += pick[1] * a.high / 3.6e6
            rows.append(
                {
                    "round": 1,
                    "node_id": i,
                    "download_bytes": 0,
                    "upload_bytes": 0,
                    "error": False,
                    "client_host": "elsewhere",
                    "client_measured_j": sum(v[0] for v in comps.values()),
                    "client_estimated_j": sum(v[1] for v in comps.values()),
                    # an hour: up to 1 MJ a component is then a physical draw (the reader
                    # refuses a reply above a megawatt, rundir/checks.py)
                    "client_duration_s": 3600.0,
                    "client_methods": ";".join(sorted(methods, reverse=i % 2 == 1)),
                    "client_basis": "measured",
                    "client_components": comps,
                }
            )
        (path / "fl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        acct = account_run(greentrack.load_run(path))
        client = next(p for p in acct.parts if p.key == "client_compute").energy_kwh
        assert math.isclose(client.value, value, rel_tol=1e-9)
        assert math.isclose(client.low, low, rel_tol=1e-9)
        assert math.isclose(client.high, high, rel_tol=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    segments=st.lists(
        st.tuples(st.integers(5, 120).map(float), st.floats(0.0, 600.0), st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_gpu_hours_are_device_seconds_over_resumed_segments(
    segments: list[tuple[float, float, bool]],
) -> None:
    """Segments resumed on the same or another GPU: GPU-hours are the seconds each GPU was in
    use, never GPUs x the whole duration; embodied carbon follows them."""
    from greentrack.account.embodied import SECONDS_PER_YEAR, embodied_of, preset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "run"
        start, used = GB_START, 0.0
        for seg, (seconds, gap, new_board) in enumerate(segments):
            path = root if seg == 0 else root / "parts" / f"seg{seg}-rank0"
            clock = ManualClock(start)
            tracker = Tracker(
                path,
                meters=[FakeMeter([FakeChannelSpec("gpu0", "gpu")], clock)],
                clock=clock,
                background=False,
                extra_meta={"framework": "x", "part": {"segment": seg, "rank": 0}},
            )
            with tracker:
                run_for(tracker, clock, seconds, step=1.0)
            if new_board:
                meta = json.loads((path / "meta.json").read_text())
                meta["channels"][0]["details"] = {"uuid": f"GPU-{seg}"}
                (path / "meta.json").write_text(json.dumps(meta))
            used += seconds
            start = clock.time() + gap
        acct = account_run(greentrack.load_run(root))
        assert acct.gpu_hours is not None
        assert math.isclose(acct.gpu_hours, used / 3600.0, rel_tol=1e-6)
        share = embodied_of(acct)
        assert share is not None
        p = preset("a100-server-share")
        expected = p.kg_co2e * 1000.0 * used / (4.0 * SECONDS_PER_YEAR)
        assert math.isclose(share.co2e_g.value, expected, rel_tol=1e-6)
