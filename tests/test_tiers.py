"""The account's tiers: devices, node, residual, facility, each with its range; the IT total is
the highest tier measured, every view says which, and without a node meter nothing changes.

Runs are measured by the real tracker over fake device meters; the node meter's record is
written into the run directory as the tracker writes it (``meta.json`` ``node_channels``,
``summary.json`` ``node_energy_j`` and ``node``): the run directory is the contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greentrack
from greentrack.account import account_run
from greentrack.account.figures import Figure
from greentrack.account.tiers import COUNTER_DEFAULT, SAMPLING, node_range, residual_of
from greentrack.launcher import RankInfo
from greentrack.meters.fake import ManualClock
from greentrack.numbers import ENERGY, quantities
from greentrack.rundir.reader import load_run
from greentrack.units import J_PER_KWH
from greentrack.views.summary import Summary
from tests.helpers import gpu_cpu_meters, run_for

GPU_W, CPU_W, SECONDS = 250.0, 40.0, 100.0
DEVICES_J = (GPU_W + CPU_W) * SECONDS


def _run(path: Path, *, rank: RankInfo | None = None, stop: bool = True) -> Path:
    clock = ManualClock()
    run = greentrack.track(
        path,
        meters=gpu_cpu_meters(clock, gpu_w=GPU_W, cpu_w=CPU_W),
        clock=clock,
        background=False,
        sync="none",
        rank=rank,
        region="DE",
        pue=1.5,
    )
    run.start()
    run_for(run, clock, SECONDS, step=1.0)
    if stop:
        run.stop()
    else:
        run.writer.flush()
    return Path(run.run_dir)


def _node_channel(meter: str = "redfish", **details: object) -> dict:
    method = {
        "redfish": "redfish-environmentmetrics-energykwh",
        "slurm": "slurm-acct-gather-energy",
        "ipmi": None,
    }[meter]
    return {
        "id": "node",
        "component": "node",
        "name": "3500RX",
        "source": "measured",
        "energy_method": method,
        "power_method": "ipmi-dcmi-instantaneous-power" if meter == "ipmi" else None,
        "method": method or "integral of ipmi-dcmi-instantaneous-power",
        "details": {"meter": meter, "scope": "job" if meter == "slurm" else "node", **details},
    }


def with_node(path: Path, joules: float, meter: str = "redfish", **details: object) -> None:
    """Record a node meter in a run directory, as the tracker does."""
    meta = json.loads((path / "meta.json").read_text())
    meta["node_channels"] = [_node_channel(meter, **details)]
    (path / "meta.json").write_text(json.dumps(meta))
    summary = json.loads((path / "summary.json").read_text())
    method = meta["node_channels"][0]["method"]
    summary["node_energy_j"] = {"node": joules}
    summary["node"] = {
        "node": {
            "energy_j": joules,
            "method": method,
            "samples": 50,
            "failures": 0,
            "uncovered_s": 0.0,
            "duration_s": SECONDS,
        }
    }
    (path / "summary.json").write_text(json.dumps(summary))


def test_without_a_node_meter_nothing_changes(tmp_path):
    a = account_run(load_run(_run(tmp_path / "r")))
    assert a.tiers is None and a.to_dict()["tiers"] is None
    assert a.it_kwh.value == pytest.approx(DEVICES_J / J_PER_KWH)
    assert a.it_kwh == sum((c.energy_kwh for c in a.components), Figure.exact(0.0))
    assert "tier" not in str(Summary(a))


def test_node_above_devices_is_the_it_total_with_a_residual(tmp_path):
    path = _run(tmp_path / "r")
    node_j = DEVICES_J / 0.74  # the GPU and CPU ~74% of the server (Dodge et al. 2022)
    with_node(path, node_j)
    a = account_run(load_run(path))
    t = a.tiers
    assert t is not None and t.it_tier == "node" and t.flagged is None
    node = Figure.relative(node_j / J_PER_KWH, 1 - COUNTER_DEFAULT, 1 + COUNTER_DEFAULT)
    assert t.node_kwh == node
    dev = t.covered_devices_kwh
    assert dev.value == pytest.approx(DEVICES_J / J_PER_KWH)
    assert t.residual_kwh.value == pytest.approx(node.value - dev.value)
    assert t.residual_kwh.low == pytest.approx(max(node.low - dev.high, 0.0))
    assert t.residual_kwh.high == pytest.approx(node.high - dev.low)
    assert a.it_kwh == node  # the highest tier measured
    assert a.measured_kwh == pytest.approx(node.value) and a.estimated_kwh == 0.0
    assert a.facility_kwh is not None and a.facility_kwh.value == pytest.approx(node.value * 1.5)
    assert a.co2e_g is not None and a.co2e_g.value == pytest.approx(
        node.value * 1.5 * a.carbon.intensity.value
    )
    text = str(Summary(a))
    assert "total (the node tier)" in text and "residual" in text and "facility" in text
    # real plurals: one node, one node meter
    assert "1 of 1 node measured" in text and "measured by its node meter\n" in text
    md = Summary(a).to_markdown()
    assert "| residual |" in md and "IT total: node" in md
    assert a.to_dict()["tiers"]["residual_is"] == "fans, power supplies, networking and idle"


def test_residual_negative_within_bounds_is_zero_and_says_so(tmp_path):
    path = _run(tmp_path / "r")
    with_node(path, DEVICES_J * 0.97)  # 3% below its devices: within +/-10% and +/-5%
    a = account_run(load_run(path))
    t = a.tiers
    assert t is not None and t.flagged is None and t.it_tier == "node"
    assert t.residual_kwh.value == 0.0 and t.residual_kwh.low == 0.0 and t.residual_kwh.high > 0
    assert t.residual_raw_kwh < 0
    assert any("within the meters' combined bounds" in n for n in a.notes)


def test_node_below_its_devices_beyond_bounds_is_flagged(tmp_path):
    path = _run(tmp_path / "r")
    with_node(path, DEVICES_J * 0.5)
    a = account_run(load_run(path))
    t = a.tiers
    assert t is not None and t.flagged is not None and t.it_tier == "devices"
    assert a.it_kwh.value == pytest.approx(DEVICES_J / J_PER_KWH)  # the devices stand
    assert any("beyond both meters' bounds" in n for n in a.notes)
    # one meter, in words: "the node meter reads 1.53 Wh at most, below the 2.80 Wh ..."
    flagged = re.search(r"the node meter reads (\S+ \S+) at most, below the (\S+ \S+) ", t.flagged)
    assert flagged is not None, t.flagged
    high, low = quantities([t.node_kwh.high, t.covered_devices_kwh.low], ENERGY)
    assert flagged.groups() == (high, low)
    assert "flagged" in str(Summary(a)) and "total (the devices tier)" in str(Summary(a))


def test_node_range_from_each_sources_accuracy():
    j = 3.6e6
    f, basis = node_range(j, "redfish-environmentmetrics-energykwh", {"accuracy_percent": 2}, {})
    assert (f.low, f.high) == pytest.approx((0.98, 1.02)) and "stated sensor accuracy" in basis
    f, basis = node_range(
        j, "integral of ipmi-dcmi-instantaneous-power", {"interval_s": 1}, {"duration_s": 100}
    )
    a = COUNTER_DEFAULT + SAMPLING
    assert (f.low, f.high) == pytest.approx((1 - a, 1 + a)) and "polled every 1 s" in basis
    info = {"duration_s": 3600.0, "uncovered_s": 36.0, "counter_step_j": 3600.0}
    f, _ = node_range(j, "redfish-environmentmetrics-energykwh", {}, info)
    # +/-10%, +/- one step (1 Wh), +/- 36 s at the mean 1 kW (10 Wh)
    assert f.low == pytest.approx(0.9 - 0.001 - 0.01) and f.high == pytest.approx(1.1 + 0.011)
    f, basis = node_range(j, "slurm-acct-gather-energy", {"meter": "slurm", "interval_s": 30}, info)
    assert f.high == pytest.approx(1.1 + 0.01 + 2 * 30 / 3600) and "accounting" in basis


def test_report_has_the_tiers_in_every_format_and_in_the_brief(tmp_path):
    from greentrack.report.model import build_report
    from greentrack.report.render import render

    path = _run(tmp_path / "r")
    with_node(path, DEVICES_J * 1.4)
    report = build_report([path])
    r = report.data["runs"][0]
    assert r["tiers"]["it_tier"] == "node" and r["headline"]["it_tier"] == "node"
    sentence = r["tiers"]["sentence"]
    assert sentence.startswith("The node drew") and "fans, power supplies" in sentence
    assert "at the node" in r["sentence"]
    assert report.data["brief"]["tiers"][0][1] == sentence
    for fmt in ("md", "html", "latex"):
        text = render(report, fmt)
        assert "residual" in text and "fans, power supplies, networking and idle" in text
        text_brief = render(report, fmt, brief=True)
        assert "The node drew" in text_brief


def test_a_run_killed_before_its_summary_uses_its_last_node_reading(tmp_path):
    path = _run(tmp_path / "r", stop=False)
    meta = json.loads((path / "meta.json").read_text())
    meta["node_channels"] = [_node_channel()]
    (path / "meta.json").write_text(json.dumps(meta))
    with (path / "events.jsonl").open("a") as f:
        for j in (1000.0, 20000.0, 40000.0):
            f.write(
                json.dumps({"event": "node_reading", "t_unix_s": 1.7e9, "energy_j": {"node": j}})
            )
            f.write("\n")
    a = account_run(load_run(path))
    assert a.tiers is not None and a.tiers.node_kwh.value == pytest.approx(40000.0 / J_PER_KWH)
    assert any("last reading" in n for n in a.notes)


def _job(tmp_path: Path, nodes: int = 2) -> list[Path]:
    """A job of ``nodes`` nodes x 2 ranks, measured by the real tracker (no node meter)."""
    paths = []
    for rank in range(2 * nodes):
        node, local = divmod(rank, 2)
        info = RankInfo(rank, local, 2 * nodes, 2, "torchrun", "j1", 0, f"n{node + 1}")
        paths.append(_run(tmp_path / "job", rank=info))
    return paths


def test_a_node_without_a_node_meter_counts_its_devices(tmp_path):
    paths = _job(tmp_path)
    with_node(paths[0], DEVICES_J * 3.0)  # n1's leader read its node; n2 has no node meter
    a = account_run(load_run(tmp_path / "job"))
    t = a.tiers
    assert t is not None and (t.nodes_measured, t.nodes) == (1, 2)
    per_node_devices = 2 * DEVICES_J  # two ranks, each with its (fake) GPU and CPU meters
    assert t.covered_devices_kwh.value == pytest.approx(per_node_devices / J_PER_KWH)
    assert t.uncovered_devices_kwh.value == pytest.approx(per_node_devices / J_PER_KWH)
    assert a.it_kwh.value == pytest.approx((DEVICES_J * 3.0 + per_node_devices) / J_PER_KWH)
    assert any(n.startswith("tiers: 1 node without a node meter counts") for n in a.notes)
    text = str(Summary(a))
    assert "1 of 2 nodes measured" in text


def test_a_slurm_step_covers_every_node_of_its_segment(tmp_path):
    paths = _job(tmp_path)
    with_node(paths[0], DEVICES_J * 5.0, meter="slurm", interval_s=30)
    a = account_run(load_run(tmp_path / "job"))
    t = a.tiers
    assert t is not None and (t.nodes_measured, t.nodes) == (2, 2)
    assert t.uncovered_devices_kwh.value == 0.0
    assert a.it_kwh.value == pytest.approx(DEVICES_J * 5.0 / J_PER_KWH)


@settings(max_examples=200, deadline=None)
@given(
    node_j=st.floats(0.0, 1e9),
    dev=st.lists(
        st.tuples(st.floats(0.0, 1e8), st.sampled_from([(0.95, 1.05), (0.9, 1.1), (0.5, 1.5)])),
        min_size=1,
        max_size=6,
    ),
)
def test_residual_bounds_hold_for_any_readings(node_j, dev):
    """The residual is never negative, its range holds its value, it is flagged exactly when
    the node's high bound is below the devices' low one, and the IT total is then the
    devices', else the node's."""
    node = Figure.relative(node_j, 0.9, 1.1)
    devices = sum((Figure.relative(j, lo, hi) for j, (lo, hi) in dev), Figure.exact(0.0))
    residual, flagged = residual_of(node, devices)
    assert 0.0 <= residual.low <= residual.value <= residual.high
    assert flagged == (node.high < devices.low)
    if not flagged:
        assert residual.high == pytest.approx(node.high - devices.low)
        assert residual.value == pytest.approx(max(node.value - devices.value, 0.0))


@pytest.mark.skipif(
    not (shutil.which("pdflatex") and shutil.which("pdftotext")),
    reason="no TeX engine: apt-get install texlive-latex-recommended poppler-utils",
)
def test_the_tiers_table_compiles_in_latex(tmp_path):
    pytest.importorskip("matplotlib")
    path = _run(tmp_path / "r")
    with_node(path, DEVICES_J * 1.4)
    out = tmp_path / "paper"
    out.mkdir()
    gt = [sys.executable, "-m", "greentrack", "report", str(path), "--format", "latex"]
    done = subprocess.run(
        [*gt, "--standalone", "-o", str(out / "appendix.tex")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    tex = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "appendix.tex"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tex.returncode == 0, tex.stdout[-3000:]
    text = subprocess.run(
        ["pdftotext", "-layout", "appendix.pdf", "-"],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Energy by tier" in text and "residual" in text


@pytest.mark.parametrize("joules", [1e300, 2e6 * SECONDS])
def test_a_node_reading_beyond_a_megawatt_is_damage_not_energy(tmp_path, joules):
    path = _run(tmp_path / "r")
    with_node(path, joules)
    a = account_run(load_run(path))
    assert a.tiers is None or a.tiers.it_tier != "node"
    assert a.it_kwh.value == pytest.approx(DEVICES_J / J_PER_KWH)
    assert any("damaged" in n and "node" in n for n in a.notes)
