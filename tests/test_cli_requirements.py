"""What the command line promises it does: ``--require measured:cpu`` demands a measurement
(``--require cpu`` also takes an estimate), a ``--pue`` without a grid is refused rather than
dropped, and ``whatif --pue`` is checked at the door. Each refusal is one line, exit 2, before
anything runs or is written."""

from __future__ import annotations

import json

import pytest

import greentrack
from greentrack.carbon.settings import carbon_arguments, resolve_settings
from greentrack.cli import main
from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import MeterUnavailableError
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from tests.helpers import run_for


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc == 2 and out == "" and err.startswith("greentrack: "), err
    assert err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


def found(**kw: object) -> dict[str, str]:
    meters, statuses = discover(DiscoveryOptions(**kw))  # type: ignore[arg-type]
    for m in meters:
        m.close()
    return {s.component: s.status for s in statuses}


# --- --require measured:COMPONENT ---------------------------------------------------------------


def test_measured_cpu_passes_on_rapl_and_refuses_an_estimate(powercap, make_nvml):  # type: ignore[no-untyped-def]
    powercap.package(0)
    ok = found(
        nvml=make_nvml(1), powercap_root=powercap.root, environ={}, require=("measured:cpu",)
    )
    assert ok["cpu"] == "measured"
    absent = powercap.root / "none"
    kw = {"nvml": make_nvml(1), "powercap_root": absent, "environ": {}, "cpu_tdp_w": 65.0}
    assert found(**kw, require=("cpu",))["cpu"] == "estimated"  # counted: the estimate will do
    with pytest.raises(MeterUnavailableError) as e:
        found(**kw, require=("measured:cpu",))
    message = str(e.value)
    assert message.startswith("cpu energy was required measured, but here it can only be estimated")
    assert "TDP 65 W" in message and "require cpu instead of measured:cpu" in message


def test_measured_gpu_and_dram(powercap, make_nvml):  # type: ignore[no-untyped-def]
    powercap.package(0)
    kw = {"powercap_root": powercap.root, "environ": {}}
    assert found(nvml=make_nvml(1), **kw, require=("measured:gpu", "measured:dram"))["gpu"]
    with pytest.raises(MeterUnavailableError, match="gpu energy was required but no GPU"):
        found(nvml=make_nvml(0), **kw, require=("measured:gpu",))
    # DRAM estimated per GB is not a measurement
    none = {"powercap_root": powercap.root / "none", "environ": {}, "dram_w_per_gb": 0.375}
    assert found(nvml=make_nvml(0), **none, require=("dram",))["dram"] == "estimated"
    with pytest.raises(MeterUnavailableError, match="dram energy was required measured"):
        found(nvml=make_nvml(0), **none, require=("measured:dram",))
    with pytest.raises(ValueError, match="'measured:cpu'"):
        DiscoveryOptions(require=("measured:tpu",))


def test_require_at_the_command_line(tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    # a sysfs without a powercap tree: the CPU is estimated
    (tmp_path / "sysfs").mkdir()
    monkeypatch.setenv("GREENTRACK_SYSFS_ROOT", str(tmp_path / "sysfs"))
    run_dir = tmp_path / "run"
    rc, out, err = run_cli(
        ["run", "--require", "measured:cpu", "--run-dir", str(run_dir), "--quiet", "--", "true"],
        capsys,
    )
    one_line(rc, out, err, "cpu energy was required measured, but here it can only be estimated")
    assert not run_dir.exists()
    rc, out, err = run_cli(["devices", "--require", "cpu,measured:cpu"], capsys)
    one_line(rc, out, err, "required measured")
    rc, out, err = run_cli(["devices", "--require", "cpu,measured"], capsys)
    one_line(
        rc, out, err, "argument --require: takes components from gpu, cpu, dram, node, measured:gpu"
    )
    rc, out, err = run_cli(["devices", "--require", "CPU"], capsys)
    assert rc == 0, err  # counted, as an estimate


def test_require_help_documents_measured(capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "measured:gpu, measured:cpu, measured:dram accept a measurement only" in text
    assert "e.g. --require gpu,measured:cpu" in text


# --- --pue without a grid -----------------------------------------------------------------------


def test_pue_without_a_region_is_refused_not_dropped(tmp_path, capsys):  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    rc, out, err = run_cli(
        ["run", "--pue", "1.3", "--run-dir", str(run_dir), "--quiet", "--", "true"], capsys
    )
    one_line(rc, out, err, "a PUE (1.3) was given without a region or an intensity", "--region DE")
    assert not run_dir.exists()
    with pytest.raises(ValueError, match="without a region or an intensity"):
        carbon_arguments(pue=1.3)
    with pytest.raises(ValueError, match="without a region or an intensity"):
        greentrack.track(tmp_path / "r2", pue="google")
    assert not (tmp_path / "r2").exists()
    # a bad PUE is still named as such first, and a PUE with a grid applies
    with pytest.raises(ValueError, match="is not a PUE"):
        resolve_settings(pue=0.5)
    settings = carbon_arguments(region="DE", pue=1.3)
    assert settings is not None and settings.pue.value == 1.3
    explicit = carbon_arguments(intensity=300.0, intensity_source="a bill", pue=1.3)
    assert explicit is not None and explicit.pue.value == 1.3


def test_whatif_pue_is_checked_and_applied(tmp_path, capsys):  # type: ignore[no-untyped-def]
    clock = ManualClock(1_767_225_600.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(360.0))], clock)]
    with greentrack.track(
        tmp_path / "run", meters=meters, clock=clock, background=False, region="DE", pue=1.0
    ) as run:
        run_for(run, clock, 100.0, step=1.0)
    path = str(tmp_path / "run")
    for bad in ("nan", "0.5", "1e6", "nowhere"):
        rc, out, err = run_cli(["whatif", path, "--pue", bad], capsys)
        one_line(rc, out, err, "argument --pue: takes a PUE from 1 to 5", repr(bad))
    rc, out, err = run_cli(["whatif", path, "--pue", "2", "--format", "json"], capsys)
    assert rc == 0, err
    r = json.loads(out)
    assert r["carbon"]["pue"]["value"] == 2.0
    assert r["facility_kwh"]["value"] == pytest.approx(2 * r["energy_kwh_it"]["value"])
