"""``greentrack calibrate RUN --meter readings.csv``: a wall meter against each tier of a run,
and the correction its later summaries and reports apply.

The run is measured by the real tracker over a fake NVML (a GPU whose power is scripted); the
truth is that GPU plus a residual (fans, power supplies, idle) only the wall sees; the meter
file is that truth read by a meter with a stated bias within its accuracy, at 1 Hz."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greentrack
from greentrack.account import AccountOptions, account_run
from greentrack.account.calibration import MeterReadings, compare
from greentrack.cli import main
from greentrack.meters.fake import FakeGpu, FakeNvml, ManualClock, PowerTrace
from greentrack.rundir.format import CALIBRATION
from greentrack.rundir.reader import load_run
from greentrack.units import J_PER_KWH
from tests.helpers import run_for

SECONDS = 100.0
RESIDUAL_W = 150.0
START = 1_700_000_000.0  # ManualClock's Unix time at 0
# the GPU: 30 s at 300 W, 20 s at 150 W, repeated: 240 W on average over 100 s
GPU = PowerTrace([(30.0, 300.0), (20.0, 150.0)], repeat=True)
ROOT = Path(__file__).resolve().parents[1]


def _run(path: Path) -> Path:
    clock = ManualClock(START)
    tracker = greentrack.track(
        path,
        clock=clock,
        background=False,
        sync="none",
        rank=None,
        nvml=FakeNvml([FakeGpu(trace=GPU)], clock),
        cpu=False,
        environ={},
        region="DE",
        pue=1.5,
    )
    with tracker:
        run_for(tracker, clock, SECONDS, step=1.0)
    return path


def truth_w(t_unix_s: float) -> float:
    """What the wall supplies at a time: the GPU and the residual."""
    return GPU.power_w(t_unix_s - START) + RESIDUAL_W


TRUTH_J = GPU.energy_j(SECONDS) + RESIDUAL_W * SECONDS


def _meter(
    path: Path,
    *,
    bias: float = 0.01,
    start: float = -10.0,
    end: float = SECONDS + 10.0,
    step: float = 0.5,
    iso: bool = False,
    header: bool = True,
) -> Path:
    """A meter file read at ``step`` seconds from ``start`` to ``end`` (run seconds): the truth
    x (1 + ``bias``), with a zero-mean +/-2 W ripple."""
    from datetime import datetime, timezone

    rows = ["time,watts"] if header else []
    n = round((end - start) / step)
    for i in range(n + 1):
        t = START + start + i * step
        w = truth_w(t) * (1 + bias) + (2.0 if i % 2 else -2.0)
        stamp = datetime.fromtimestamp(t, timezone.utc).isoformat() if iso else f"{t:.3f}"
        rows.append(f"{stamp},{w:.3f}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("shared") / "run")


def _cli(*args: str | Path) -> tuple[int, str, str]:
    p = subprocess.run(
        [sys.executable, "-m", "greentrack", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return p.returncode, p.stdout, p.stderr


def test_each_tier_against_the_meter(tmp_path, capsys):
    run = _run(tmp_path / "run")
    meter = _meter(tmp_path / "m.csv")
    assert main(["calibrate", str(run), "--meter", str(meter), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["window"]["coverage"] == pytest.approx(1.0)
    meter_kwh = out["meter"]["energy_kwh"]
    assert meter_kwh["value"] * J_PER_KWH == pytest.approx(TRUTH_J * 1.01, rel=1e-3)
    assert meter_kwh["low"] == pytest.approx(meter_kwh["value"] * 0.98)
    tiers = {t["tier"]: t for t in out["tiers"]}
    assert set(tiers) == {"devices", "it"}  # no node meter: no node tier
    gpu_j = GPU.energy_j(SECONDS)
    expected = (gpu_j - TRUTH_J * 1.01) / (TRUTH_J * 1.01) * 100
    assert tiers["devices"]["error_percent"] == pytest.approx(expected, abs=0.2)
    assert tiers["it"]["meter_inside_range"] is False  # the residual is outside the devices
    assert out["factor"]["value"] == pytest.approx(TRUTH_J * 1.01 / gpu_j, rel=2e-3)
    assert out["stored"] is None and not (run / CALIBRATION).exists()
    # text: the window and its coverage, each tier, the factor
    assert main(["calibrate", str(run), "--meter", str(meter)]) == 0
    text = capsys.readouterr().out
    assert "the meter covers 100.0 s of the run's 100.0 s (100%)" in text
    assert "IT total (the devices tier)" in text and "outside its range" in text
    assert "correction factor (meter / IT total): 1.641" in text
    assert "IEC 62053-21" in text and "not stored: add --store" in text


def test_stored_correction_shows_in_summary_and_report(tmp_path, capsys):
    run = _run(tmp_path / "run")
    before = account_run(load_run(run))
    meter = _meter(tmp_path / "m.csv", iso=True)
    assert main(["calibrate", str(run), "--meter", str(meter), "--store"]) == 0
    assert "stored: " in capsys.readouterr().out
    record = json.loads((run / CALIBRATION).read_text())
    assert record["run_id"] == before.run_id and record["coverage"] == pytest.approx(1.0)
    after = account_run(load_run(run))
    truth_kwh = TRUTH_J / J_PER_KWH
    # the calibrated total is the truth within the meter's accuracy (its bias is +1 %)
    assert after.it_kwh.value == pytest.approx(truth_kwh, rel=0.02)
    assert after.it_kwh.low <= truth_kwh <= after.it_kwh.high
    assert after.it_kwh.high / after.it_kwh.value == pytest.approx(1.02, rel=1e-6)
    # every figure charged from the IT total follows it
    assert after.co2e_g is not None and before.co2e_g is not None
    ratio = after.it_kwh.value / before.it_kwh.value
    assert after.co2e_g.value == pytest.approx(before.co2e_g.value * ratio)
    assert after.facility_kwh.value == pytest.approx(after.it_kwh.value * 1.5)  # type: ignore[union-attr]
    assert sum(after.kwh_by_provenance.values()) == pytest.approx(after.it_kwh.value)
    assert after.kwh_by_provenance["measured"] == pytest.approx(after.it_kwh.value)
    # the devices stay what the devices measured
    assert after.components == before.components
    # summary text, JSON, Markdown; report
    assert main(["summary", str(run)]) == 0
    text = capsys.readouterr().out
    assert "total, calibrated against a wall meter, factor 1.641" in text
    assert "greentrack calibrate" in text and "covered 100% of the run" in text
    assert main(["summary", str(run), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calibration"]["factor"]["value"] == pytest.approx(ratio)
    assert data["energy"]["it_kwh"]["value"] == pytest.approx(after.it_kwh.value)
    assert main(["summary", str(run), "--format", "md"]) == 0
    assert "Total (calibrated against a wall meter, factor 1.641" in capsys.readouterr().out
    report = tmp_path / "report.md"
    assert main(["report", str(run), "-o", str(report), "--no-plots"]) == 0
    assert "calibrated against a wall meter, factor 1.641" in report.read_text()
    # calibrating again compares the run's own figures, never the corrected ones
    assert main(["calibrate", str(run), "--meter", str(meter), "--store", "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["factor"]["value"] == pytest.approx(ratio)
    assert account_run(load_run(run)).it_kwh == after.it_kwh


def test_a_calibrated_report_states_the_factor_and_the_corrected_total(tmp_path, capsys):
    """The report's sentence, brief and JSON state the wall meter's factor with its range and
    the corrected IT total, written as the summary writes them, in every format."""
    jsonschema = pytest.importorskip("jsonschema")
    from greentrack.views.summary import format_range

    run = _run(tmp_path / "run")
    meter = _meter(tmp_path / "m.csv")
    assert main(["calibrate", str(run), "--meter", str(meter), "--store"]) == 0
    capsys.readouterr()
    acct = account_run(load_run(run))
    assert acct.calibration is not None
    label, total = acct.calibration["label"], format_range(acct.it_kwh)
    value, spread = total[: total.index(" (")], total[total.index("(") + 1 : -1]
    assert label.startswith("calibrated against a wall meter, factor 1.64")
    assert main(["summary", str(run)]) == 0
    assert f"total, {label}: {total} of IT energy" in capsys.readouterr().out
    for fmt, suffix in (("md", "md"), ("latex", "tex")):
        for brief in ((), ("--brief",)):
            out = tmp_path / f"report{''.join(brief)}.{suffix}"
            args = ["report", str(run), "-o", str(out), "--no-plots", "--format", fmt, *brief]
            assert main(args) == 0
            text = " ".join(out.read_text().split())  # a sentence may wrap
            if fmt == "latex":
                text = text.replace("~", " ")  # a TeX non-breaking space before a unit
            assert label in text, (fmt, brief)
            # the brief writes the total as its table does: "10.9 Wh of electricity (10.7–11.2 Wh"
            assert (value in text and spread in text) if brief else total in text, (fmt, brief)
    assert main(["report", str(run), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    r, b = data["runs"][0], data["brief"]
    schema = json.loads((ROOT / "docs" / "report-schema.json").read_text())
    jsonschema.validate(r["calibration"], schema["$defs"]["run"]["properties"]["calibration"])
    jsonschema.validate(b["calibrated"], schema["properties"]["brief"]["properties"]["calibrated"])
    cal = r["calibration"]
    record = json.loads((run / CALIBRATION).read_text())
    assert (cal["factor"], cal["factor_low"], cal["factor_high"]) == tuple(
        record["factor"][k] for k in ("value", "low", "high")
    )
    assert cal["label"] == label and b["calibrated"] == [[r["label"], label]]
    assert cal["it_kwh"] == r["headline"]["energy_kwh"] == acct.it_kwh.value
    assert (cal["it_kwh_low"], cal["it_kwh_high"]) == (acct.it_kwh.low, acct.it_kwh.high)
    assert cal["uncalibrated_it_kwh"] == pytest.approx(record["it_kwh"]["value"])
    assert cal["it_kwh"] == pytest.approx(cal["factor"] * cal["uncalibrated_it_kwh"])
    assert label in r["sentence"] and total in r["sentence"], r["sentence"]
    assert label in b["sentence"] and value in b["sentence"] and spread in b["sentence"]
    # an uncalibrated run's report says nothing of a meter
    (run / CALIBRATION).unlink()
    assert main(["report", str(run), "--format", "json", "-o", str(tmp_path / "u.json")]) == 0
    plain = json.loads((tmp_path / "u.json").read_text())
    assert plain["runs"][0]["calibration"] is None and plain["brief"]["calibrated"] == []
    assert "wall meter" not in plain["runs"][0]["sentence"] + plain["brief"]["sentence"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bias=st.floats(-0.019, 0.019), step=st.sampled_from([0.25, 1.0, 2.0, 5.0]))
def test_the_calibrated_range_holds_the_truth(shared_run, tmp_path, bias, step):
    """Any meter within its stated accuracy, read at any rate: the calibrated total's range
    holds the truth, and its value is within the accuracy of it."""
    meter = MeterReadings("m", *_series(bias, step), "")
    account = account_run(load_run(shared_run), AccountOptions(calibrated=False))
    result = compare(account, [load_run(shared_run)], [meter], 2.0)
    record = result.record("2025-01-01T00:00:00Z")
    (shared_run / CALIBRATION).write_text(json.dumps(record))
    try:
        after = account_run(load_run(shared_run))
    finally:
        (shared_run / CALIBRATION).unlink()
    truth_kwh = TRUTH_J / J_PER_KWH
    assert after.it_kwh.low <= truth_kwh <= after.it_kwh.high
    # the trapezoid between readings errs where the power steps (at most one step a reading)
    assert after.it_kwh.value == pytest.approx(truth_kwh, rel=0.02 + step * 150 * 2 / TRUTH_J)


def _series(bias: float, step: float, start: float = -10.0, end: float = SECONDS + 10.0):
    n = round((end - start) / step)
    t = tuple(START + start + i * step for i in range(n + 1))
    return t, tuple(truth_w(x) * (1 + bias) for x in t)


def test_a_partial_meter_says_its_coverage_and_is_not_stored_below_half(tmp_path, capsys):
    run = _run(tmp_path / "run")
    short = _meter(tmp_path / "short.csv", start=20.0, end=50.0)  # 30 % of the run
    assert main(["calibrate", str(run), "--meter", str(short), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["window"]["coverage"] == pytest.approx(0.3, abs=1e-6)
    # over its window the devices drew the GPU's energy there, not the run's
    gpu_w = GPU.energy_j(50.0) - GPU.energy_j(20.0)
    devices = out["tiers"][0]["energy_kwh"]["value"] * J_PER_KWH
    assert devices == pytest.approx(gpu_w, rel=0.01)
    rc = main(["calibrate", str(run), "--meter", str(short), "--store"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "covers 30% of the run" in err[0]
    assert not (run / CALIBRATION).exists()
    # 60 %: stored; the rest of the run is the run's own, scaled, within a range that holds
    # either (here the power is not constant, so the ratio only approximates it)
    part = _meter(tmp_path / "part.csv", start=0.0, end=60.0)
    assert main(["calibrate", str(run), "--meter", str(part), "--store"]) == 0
    capsys.readouterr()
    after = account_run(load_run(run))
    assert after.calibration is not None and after.calibration["coverage"] == pytest.approx(0.6)
    assert after.it_kwh.low <= TRUTH_J / J_PER_KWH <= after.it_kwh.high
    assert any("covered 60% of the run" in n for n in after.notes)


def test_two_meters_add(tmp_path, capsys):
    run = _run(tmp_path / "run")
    a = _meter(tmp_path / "a.csv", bias=0.0)
    b = _meter(tmp_path / "b.csv", bias=0.0)
    assert (
        main(["calibrate", str(run), "--meter", str(a), "--meter", str(b), "--format", "json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["meter"]["energy_kwh"]["value"] * J_PER_KWH == pytest.approx(2 * TRUTH_J, rel=1e-3)
    assert [m["file"] for m in out["meter"]["files"]] == [str(a), str(b)]


def test_a_node_meter_run_compares_each_tier(tmp_path, capsys):
    run = _run(tmp_path / "run")
    # the node meter read the truth (a BMC, +/-10 %): as the tracker records it
    meta = json.loads((run / "meta.json").read_text())
    meta["node_channels"] = [
        {
            "id": "node",
            "component": "node",
            "name": "BMC",
            "source": "measured",
            "energy_method": "redfish-environmentmetrics-energykwh",
            "power_method": None,
            "method": "redfish-environmentmetrics-energykwh",
            "details": {"meter": "redfish", "scope": "node"},
        }
    ]
    (run / "meta.json").write_text(json.dumps(meta))
    summary = json.loads((run / "summary.json").read_text())
    summary["node_energy_j"] = {"node": TRUTH_J}
    summary["node"] = {"node": {"energy_j": TRUTH_J, "method": "redfish", "duration_s": SECONDS}}
    (run / "summary.json").write_text(json.dumps(summary))
    meter = _meter(tmp_path / "m.csv", bias=0.0)
    assert main(["calibrate", str(run), "--meter", str(meter), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    tiers = {t["tier"]: t for t in out["tiers"]}
    assert set(tiers) == {"devices", "node", "it"} and out["it_tier"] == "node"
    assert tiers["node"]["meter_inside_range"] is True
    assert tiers["node"]["error_percent"] == pytest.approx(0.0, abs=0.2)
    assert tiers["devices"]["meter_inside_range"] is False
    assert out["factor"]["value"] == pytest.approx(1.0, abs=0.003)


def test_a_stale_or_damaged_or_foreign_calibration_is_not_applied(tmp_path, capsys):
    run = _run(tmp_path / "run")
    assert main(["calibrate", str(run), "--meter", str(_meter(tmp_path / "m.csv")), "--store"]) == 0
    capsys.readouterr()
    own = account_run(load_run(run), AccountOptions(calibrated=False)).it_kwh
    record = json.loads((run / CALIBRATION).read_text())
    cases = {
        "made against an IT total of": {**record, "it_kwh": {"value": 1.0, "low": 1, "high": 1}},
        "is of another run": {**record, "run_id": "0" * 32},
        "is damaged": {**record, "factor": {"value": -1.0, "low": -2.0, "high": 0.0}},
    }
    for phrase, bad in cases.items():
        (run / CALIBRATION).write_text(json.dumps(bad))
        a = account_run(load_run(run))
        assert a.it_kwh == own and a.calibration is None
        assert any(phrase in n for n in a.notes), phrase
    (run / CALIBRATION).write_text("{ not json")
    assert main(["summary", str(run)]) == 0
    assert "calibration.json is damaged" in capsys.readouterr().out


BAD = {
    "unsorted.csv": ("time,watts\n1700000010,100\n1700000005,100\n", ":3: time", "sort the file"),
    "repeated.csv": ("1700000010,100\n1700000010,120\n", ":2: time", "not after"),
    "nan.csv": ("1700000000,100\n1700000001,nan\n", ":2:", "not a power from 0 to 20000 W"),
    "inf.csv": ("1700000000,inf\n1700000001,1\n", ":1:", "not a power"),
    "negative.csv": ("1700000000,100\n1700000001,-5\n", ":2:", "not a power"),
    "too_big.csv": ("1700000000,100\n1700000001,25000\n", ":2:", "kW?"),
    "fields.csv": ("1700000000,100,3\n", ":1: 3 fields", "time,watts"),
    "naive.csv": ("2023-11-14T22:13:20,100\n2023-11-14T22:13:21,100\n", ":1:", "no UTC offset"),
    "garbage.csv": ("time,watts\nyesterday,100\n", ":2:", "neither Unix seconds nor ISO"),
    "millis.csv": ("1700000000000,100\n1700000001000,100\n", ":1:", "milliseconds?"),
    "empty.csv": ("", "0 readings", "at least 2"),
    "one.csv": ("time,watts\n1700000000,100\n", "1 reading;", "at least 2"),
    "header_twice.csv": ("time,watts\ntime,watts\n", ":2:", "neither Unix seconds"),
    "bad_date.csv": ("2023-02-30T00:00:00Z,1\n", ":1:", "not a date"),
    "bad_offset.csv": ("2023-02-03T00:00:00+25:00,1\n", ":1:", "offset"),
}


def test_every_bad_meter_file_is_one_line_and_writes_nothing(tmp_path, shared_run):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in shared_run.iterdir())
    files = dict(BAD)
    (tmp_path / "latin1.csv").write_bytes(b"time,watts\n1700000000,\xe9\n")
    (tmp_path / "dir.csv").mkdir()
    cases = [(tmp_path / name, where, fix) for name, (_, where, fix) in files.items()]
    for name, (content, _, _) in files.items():
        (tmp_path / name).write_text(content)
    cases += [
        (tmp_path / "latin1.csv", "not UTF-8", "save it as UTF-8"),
        (tmp_path / "dir.csv", "is a directory", "CSV file"),
        (tmp_path / "absent.csv", "does not exist", "CSV file"),
    ]
    for path, where, fix in cases:
        rc, out, err = _cli("calibrate", shared_run, "--meter", path, "--store")
        lines = err.strip().splitlines()
        assert rc == 2, (path.name, err)
        assert len(lines) == 1 and "Traceback" not in err, (path.name, err)
        assert lines[0].startswith("greentrack: calibrate: ") and str(path) in lines[0]
        assert where in lines[0] and fix in lines[0], (path.name, lines[0])
        assert out == ""
    many = _meter(tmp_path / "many.csv")
    rc, _, err = _cli("calibrate", shared_run, "--meter", many, "--max-rows", "5")
    assert rc == 2 and "more than 5 rows (--max-rows)" in err and f"{many}:7" in err
    for option in (["--meter-accuracy-percent", "0"], ["--meter-accuracy-percent", "nan"]):
        rc, _, err = _cli("calibrate", shared_run, "--meter", many, *option)
        assert rc == 2 and len(err.strip().splitlines()) == 1
    assert sorted((p.name, p.stat().st_mtime_ns) for p in shared_run.iterdir()) == before


def test_a_meter_of_another_time_or_run_is_refused(tmp_path, shared_run):
    far = _meter(tmp_path / "far.csv", start=10_000.0, end=10_100.0)
    rc, _, err = _cli("calibrate", shared_run, "--meter", far)
    assert rc == 2 and "do not overlap the run" in err and "clocks" in err
    assert len(err.strip().splitlines()) == 1
    rc, _, err = _cli("calibrate", tmp_path / "nothing", "--meter", far)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_stated_accuracy_sets_the_range_and_a_dead_meter_is_refused(tmp_path, shared_run, capsys):
    meter = _meter(tmp_path / "m.csv")
    args = ["calibrate", str(shared_run), "--meter", str(meter), "--format", "json"]
    assert main([*args, "--meter-accuracy-percent", "0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    f = out["factor"]
    assert f["high"] / f["value"] == pytest.approx(1.005) and f["low"] / f[
        "value"
    ] == pytest.approx(0.995)
    assert out["meter"]["accuracy_basis"] == "stated by the user (--meter-accuracy-percent)"
    dead = tmp_path / "dead.csv"
    dead.write_text("".join(f"{START + t},0\n" for t in range(-5, 105)))
    rc = main(["calibrate", str(shared_run), "--meter", str(dead), "--store"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "read 0 W" in err[0]
    assert not (shared_run / CALIBRATION).exists()
