"""What a new user met following README and docs/ into a fresh environment, each fixed and kept
fixed: every command's ``--help`` renders (``calibrate --help`` crashed on a bare ``%``);
``greentrack calibrate`` names what its devices tier holds, measured or estimated, with real
plurals; the calibrated summary's note writes the run's own total in the unit it reads in;
the command line shows greentrack's warnings as one line, not as Python's
``file.py:N: RuntimeWarning``; the CPU estimate's unit and its fix name the CLI flag; the
BoAmps description writes energies with units; a newer run format names an upgrade that works
for a package installed from a clone."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.cli import _warning_line, build_parser, main
from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import RunFormatError
from greentrack.meters import estimate
from greentrack.rundir.reader import load_run
from tests.report_helpers import training_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 epochs on two fake H100s (measured) and a CPU estimate, DE."""
    return training_run(tmp_path_factory.mktemp("runs") / "resnet")


def _meter_file(path: Path, run_dir: Path, watts: float = 900.0) -> Path:
    """A wall meter read every second from 5 s before the run to 5 s after it."""
    run = load_run(run_dir)
    t, end = run.start_unix_s - 5.0, run.end_unix_s + 5.0
    rows = ["time,watts"]
    while t <= end:
        rows.append(f"{t:.3f},{watts:g}")
        t += 1.0
    path.write_text("\n".join(rows) + "\n")
    return path


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_help_renders() -> None:
    """argparse %-formats each help text: a bare ``%`` (``50% of the run``, ``+/-2 %``) was a
    ``TypeError`` traceback for ``greentrack calibrate --help``."""
    parser = build_parser()
    assert "calibrate" in parser.format_help()
    for name, sub in _subparsers(parser).items():
        text = sub.format_help()
        assert f"greentrack {name}" in text, name


def test_calibrate_help_states_the_coverage_and_the_meter_class(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["calibrate", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "less than 50% of the run" in text
    assert "IEC 62053-21 accuracy class 2 (active energy within +/-2 % over" in text
    assert "%%" not in text


def test_calibrate_names_the_devices_tier_and_its_provenance(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meter = _meter_file(tmp_path / "pdu.csv", run_dir)
    assert main(["calibrate", str(run_dir), "--meter", str(meter)]) == 0
    text = capsys.readouterr().out
    assert "against 1 wall meter (" in text and "(s)" not in text
    # two fake GPUs measured and a CPU estimate, no DRAM: said as such, not "GPU + CPU + DRAM"
    assert "devices (GPU measured, CPU estimated)" in text and "DRAM" not in text
    assert "; apart" not in text
    assert "the two ranges" in text or "the meter is inside its range" in text
    # two meter files: a real plural
    second = _meter_file(tmp_path / "psu2.csv", run_dir, watts=100.0)
    assert main(["calibrate", str(run_dir), "--meter", str(meter), "--meter", str(second)]) == 0
    assert "against 2 wall meters (" in capsys.readouterr().out


def test_the_calibrated_note_writes_the_run_total_in_its_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The note said ``the run's own devices total was 0.03347 Wh`` beside a summary in mWh:
    a short run (3 s, the CPU estimate's 40 W and two GPUs at 1 W) reads in mWh."""
    run = training_run(tmp_path / "short", epoch_s=1.0, gpu_w=1.0)
    before = account_run(load_run(run))
    own_mwh = before.it_kwh.value * 1e6
    assert 1.0 <= own_mwh < 1000.0
    meter = _meter_file(tmp_path / "pdu.csv", run, watts=60.0)
    assert main(["calibrate", str(run), "--meter", str(meter), "--store"]) == 0
    capsys.readouterr()
    after = account_run(load_run(run))
    (note,) = [n for n in after.notes if "calibrated against a wall meter" in n]
    match = re.search(r"the run's own devices total was ([0-9.]+) (\S+), (.+?) \(", note)
    assert match is not None, note
    value, unit, provenance = match.groups()
    assert unit == "mWh" and float(value) == pytest.approx(own_mwh, rel=1e-3)
    assert provenance == "estimated and measured"


def test_cpu_estimate_line_states_its_unit_and_the_cli_flag(
    tmp_path: Path, make_nvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CPU missing from the TDP table (as /proc/cpuinfo would name it) and no RAPL: the
    per-vCPU estimate. It said ``3.5 W per busy vCPU-second`` (a power per time) and ``Pass
    cpu_tdp_w`` (a Python name) in ``greentrack devices``."""
    monkeypatch.setattr(estimate, "cpu_model_and_packages", lambda: ("Imaginary CPU 9000", 1))
    meters, statuses = discover(
        DiscoveryOptions(
            nvml=make_nvml(0), powercap_root=tmp_path / "absent", environ={}, cpu_tdp_w=None
        )
    )
    for m in meters:
        m.close()
    (cpu,) = [s.detail for s in statuses if s.component == "cpu"]
    assert "3.5 W per busy vCPU, over the CPU time of this process and its children" in cpu
    assert "vCPU-second" not in cpu
    assert "--cpu-tdp-w W (cpu_tdp_w=W in Python)" in cpu


def test_greentrack_warnings_are_one_line_on_the_command_line() -> None:
    mine = _warning_line(
        RuntimeWarning("greentrack cannot serve Prometheus metrics on 127.0.0.1:9464 (busy)"),
        RuntimeWarning,
        str(ROOT / "greentrack" / "prometheus.py"),
        252,
        "self._serve(self._want_port)",
    )
    assert mine == "greentrack cannot serve Prometheus metrics on 127.0.0.1:9464 (busy)\n"
    inside = _warning_line(
        "CUDA_VISIBLE_DEVICES entry 'x' matches no GPU",
        UserWarning,
        str(ROOT / "greentrack" / "meters" / "nvml.py"),
        130,
    )
    assert inside == "greentrack: CUDA_VISIBLE_DEVICES entry 'x' matches no GPU\n"
    theirs = _warning_line("deprecated", FutureWarning, "/elsewhere/mlflow/x.py", 3, "call()")
    assert theirs == warnings.formatwarning(
        "deprecated", FutureWarning, "/elsewhere/mlflow/x.py", 3, "call()"
    )


def test_a_taken_prometheus_port_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    try:
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "greentrack",
                "run",
                "--run-dir",
                str(tmp_path / "run"),
                "--quiet",
                "--prometheus-port",
                str(port),
                "--",
                sys.executable,
                "-c",
                "pass",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": ""},
        )
    finally:
        held.close()
    assert p.returncode == 0, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    ours = [x for x in lines if "Prometheus" in x]
    assert len(ours) == 1, p.stderr
    assert ours[0].startswith(f"greentrack cannot serve Prometheus metrics on 127.0.0.1:{port}")
    assert "--prometheus-port" in ours[0] and "OSError" not in ours[0]
    assert "RuntimeWarning" not in p.stderr and ".py:" not in p.stderr
    assert "self._serve" not in p.stderr


def test_boamps_description_writes_energies_with_units(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    done = greentrack.export(
        run_dir,
        to="boamps",
        output=tmp_path / "b.json",
        task_family="image classification",
        data_type="image",
    )
    text = json.loads(Path(done.location).read_text())["task"]["taskDescription"]
    head = text.split(";")[0]
    assert "e-0" not in head and " 0 kWh" not in head, head
    measured = head.split("(measured ")[1].split(",")[0]
    estimated = head.split("estimated ")[1].rstrip(")")
    # as the summary writes them: one unit for the pair, in which the larger reads 1 to 999
    # (two fake GPUs' 10 Wh read "0.0104167 kWh")
    (m_value, unit), (e_value, e_unit) = measured.split(), estimated.split()
    assert unit in ("kWh", "Wh", "mWh", "\u00b5Wh") and e_unit == unit
    assert 1.0 <= max(float(m_value), float(e_value)) < 1000.0, head
    assert len(m_value.replace(".", "").lstrip("0")) <= 3, head


def test_a_newer_run_format_names_an_upgrade_that_works(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    run = Path(shutil.copytree(run_dir, tmp_path / "run"))
    meta = json.loads((run / "meta.json").read_text())
    meta["format_version"] = 99
    (run / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError) as e:
        load_run(run)
    assert "pip install -U greentrack" not in str(e.value)
    assert "pip install /path/to/greentrack" in str(e.value)
