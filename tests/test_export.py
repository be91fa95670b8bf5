"""greentrack export: what each target holds, read back with that target's own client, equals
the run's account (values and ranges, to 1e-9; TensorBoard's float32 scalars to their 7
digits, with the exact figures in its text table); the BoAmps file follows BoAmps' published
schema; a missing extra or a bad option is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import greentrack
from greentrack.account import RunAccount
from greentrack.cli import main
from greentrack.export.record import record_of
from greentrack.report.model import build_report
from tests.paper_helpers import federated_run
from tests.report_helpers import training_run

REL = 1e-9


@pytest.fixture(autouse=True)
def _quiet_trackers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """W&B and MLflow keep their settings, caches and telemetry off the machine's home."""
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 epochs on two fake H100s (measured) and a CPU estimate, DE, PUE 1.1."""
    return training_run(tmp_path_factory.mktemp("runs") / "resnet")


@pytest.fixture(scope="module")
def account(run_dir: Path) -> RunAccount:
    return build_report([run_dir]).accounts[0]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite store for the module: MLflow creates its tables in seconds, once."""
    pytest.importorskip("mlflow")
    return "sqlite:///" + str(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


def close(a: float, b: float, rel: float = REL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def expected_totals(a: RunAccount) -> dict[str, float]:
    """The figures every target must hold, straight from the account (not from the record)."""
    assert a.carbon is not None and a.co2e_g is not None and a.facility_kwh is not None
    out = {
        "energy/total_measured_kwh": a.measured_kwh,
        "energy/total_estimated_kwh": a.estimated_kwh,
        "energy/duration_s": a.duration_s,
        "energy/gpu_hours": a.gpu_hours or 0.0,
    }
    for name, f in (
        ("total_kwh", a.it_kwh),
        ("facility_kwh", a.facility_kwh),
        ("total_co2e_g", a.co2e_g),
        ("intensity_gco2e_per_kwh", a.carbon.intensity),
        ("pue", a.carbon.pue),
    ):
        out |= {
            f"energy/{name}": f.value,
            f"energy/{name}_low": f.low,
            f"energy/{name}_high": f.high,
        }
    for c in a.components:
        out[f"energy/component/{c.key}_kwh"] = c.energy_kwh.value
        out[f"energy/component/{c.key}_kwh_low"] = c.energy_kwh.low
        out[f"energy/component/{c.key}_kwh_high"] = c.energy_kwh.high
    return out


def epochs(a: RunAccount) -> list[dict[str, Any]]:
    assert a.units is not None and a.units["unit"] == "epoch"
    return list(a.units["rows"])


# --- the record: names and values, from the account ---------------------------------------


def test_the_record_reads_the_account(account: RunAccount) -> None:
    rec = record_of(account, "resnet")
    for name, value in expected_totals(account).items():
        assert close(rec.metrics[name], value), name
    assert account.gpu_hours == pytest.approx(2 * 60 / 3600)  # two GPUs for 60 s
    provenance = {c.key: c.provenance for c in account.components}
    assert provenance == {"gpu0": "measured", "gpu1": "measured", "cpu": "estimated"}
    for key, source in provenance.items():
        assert rec.params[f"energy/component/{key}/provenance"] == source
    assert rec.params["energy/region"] == "DE" and rec.params["energy/pue_source"]
    assert rec.params["energy/intensity_source"] == account.carbon.source  # type: ignore[union-attr]
    rows = epochs(account)
    assert [p.step for p in rec.series["energy/epoch_kwh"]] == [0, 1, 2]
    assert [p.value for p in rec.series["energy/epoch_kwh"]] == [r["energy_kwh"] for r in rows]
    assert [p.value for p in rec.series["energy/total_kwh"]] == [r["cumulative_kwh"] for r in rows]
    assert rec.final_step == 3
    # the epochs' average power: 2 GPUs at 300 W for 80% and 210 W for 20% of each epoch, CPU 40 W
    assert rec.series["energy/epoch_avg_power_w"][0].value == pytest.approx(2 * 282 + 40)
    with pytest.raises(ValueError, match="prefix"):
        record_of(account, "resnet", prefix="bad|prefix")


def test_a_federated_run_is_exported_per_round(tmp_path: Path) -> None:
    run = federated_run(tmp_path / "fl", rounds=4, clients=2)
    a = build_report([run]).accounts[0]
    rec = record_of(a, "fl")
    assert a.units is not None and a.units["unit"] == "round"
    assert [p.step for p in rec.series["energy/round_kwh"]] == [1, 2, 3, 4]
    assert rec.final_step == 5
    assert sum(p.value for p in rec.series["energy/round_kwh"]) == pytest.approx(
        a.units["rows"][-1]["cumulative_kwh"]
    )
    for part in a.parts:
        assert close(rec.metrics[f"energy/part/{part.key}_kwh"], part.energy_kwh.value)
        assert rec.params[f"energy/part/{part.key}/provenance"] == part.provenance


# --- MLflow ---------------------------------------------------------------------------------


def test_mlflow_holds_the_account(run_dir: Path, account: RunAccount, mlflow_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    done = greentrack.export(run_dir, to="mlflow", tracking_uri=mlflow_uri, experiment="sweep")
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(done.location)
    assert run.info.run_name == "resnet_lr=0.1" and run.info.status == "FINISHED"
    assert run.info.start_time == round(account.start_unix_s * 1000)
    assert run.info.end_time == round(account.end_unix_s * 1000)
    assert client.get_experiment(run.info.experiment_id).name == "sweep"
    for name, value in expected_totals(account).items():
        assert close(run.data.metrics[name], value), name
    assert run.data.params["energy/component/cpu/provenance"] == "estimated"
    assert run.data.params["energy/region"] == "DE"
    rows = epochs(account)
    history = client.get_metric_history(done.location, "energy/epoch_kwh")
    assert [(m.step, m.value) for m in history] == [
        (i, r["energy_kwh"]) for i, r in enumerate(rows)
    ]
    assert [m.timestamp for m in history] == [round(r["end_unix_s"] * 1000) for r in rows]
    total = sorted(
        client.get_metric_history(done.location, "energy/total_kwh"), key=lambda m: m.step
    )
    assert [m.value for m in total] == [r["cumulative_kwh"] for r in rows] + [account.it_kwh.value]
    artifacts = {f.path for f in client.list_artifacts(done.location, "greentrack")}
    assert {"greentrack/greentrack_report.md", "greentrack/greentrack_report.html"} <= artifacts
    local = Path(client.download_artifacts(done.location, "greentrack/greentrack_report.json"))
    report = json.loads(local.read_text())
    assert close(report["runs"][0]["headline"]["energy_kwh"], account.it_kwh.value)
    assert close(report["runs"][0]["headline"]["co2e_g_high"], account.co2e_g.high)  # type: ignore[union-attr]


def test_mlflow_run_id_attaches_to_an_existing_run(
    run_dir: Path, account: RunAccount, mlflow_uri: str
) -> None:
    """A run the Lightning callback logged live (energy/total_kwh at its global steps): the
    export adds to it, and the final total is the value MLflow shows."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.create_experiment("live")
    live = client.create_run(experiment, run_name="trained with the callback")
    run_id = live.info.run_id
    for step in (100, 200, 300):
        client.log_metric(run_id, "energy/total_kwh", 0.001 * step, step=step)
    client.log_param(run_id, "lr", "0.1")
    argv = ["export", str(run_dir), "--to", "mlflow", "--tracking-uri", mlflow_uri]
    assert main([*argv, "--run-id", run_id, "--no-report"]) == 0
    after = client.get_run(run_id)
    assert after.info.status == "RUNNING"  # the run keeps its own status
    assert after.data.params["lr"] == "0.1"
    assert close(after.data.metrics["energy/total_kwh"], account.it_kwh.value)
    history = client.get_metric_history(run_id, "energy/total_kwh")
    assert sorted(m.step for m in history) == [100, 200, 300, 301]  # the series is not re-logged
    assert len(client.get_metric_history(run_id, "energy/epoch_kwh")) == 3
    assert client.list_artifacts(run_id) == []
    # once more: the params are the same, so attaching again is fine
    assert main([*argv, "--run-id", run_id, "--no-report"]) == 0


def test_mlflow_refusals_are_one_line(
    run_dir: Path, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    other = client.create_run(client.create_experiment("other"))
    client.log_param(other.info.run_id, "energy/region", "FR")
    base = ["export", str(run_dir), "--to", "mlflow", "--no-report"]
    cases = [
        ([*base, "--tracking-uri", mlflow_uri, "--run-id", other.info.run_id], "energy/region"),
        ([*base, "--tracking-uri", mlflow_uri, "--run-id", "f" * 32], "has no run"),
        ([*base, "--tracking-uri", (tmp_path / "store").as_uri()], "MLFLOW_ALLOW_FILE_STORE"),
        ([*base, "--run-id", "x", "--experiment", "y"], "do not go together"),
        (["export", str(run_dir), str(run_dir), "--to", "mlflow", "--run-id", "x"], "one at a"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert message in captured.err and captured.err.count("\n") == 1, captured.err
        assert captured.out == ""
    assert not (tmp_path / "store").exists()


# --- TensorBoard ----------------------------------------------------------------------------


def tensorboard_events(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_holds_the_account(run_dir: Path, account: RunAccount, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    import numpy as np
    from tensorboard.util import tensor_util

    done = greentrack.export(run_dir, to="tensorboard", output=tmp_path / "tb", plots=False)
    folder = Path(done.location)
    assert folder == tmp_path / "tb" / "resnet_lr=0.1"
    acc = tensorboard_events(folder)

    def values(tag: str) -> list[tuple[int, Any]]:
        return [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]

    for name, value in expected_totals(account).items():
        step, got = values(name)[-1]  # the final figure, after the epochs' points
        # TensorBoard's scalar dashboard reads float32 only: the scalars are the account's
        # figures to float32 precision
        assert step == 3 and got.dtype == np.float32 and got == np.float32(value), name
        assert close(float(got), value, rel=1e-7), name
    rows = epochs(account)
    assert values("energy/epoch_kwh") == [
        (i, np.float32(r["energy_kwh"])) for i, r in enumerate(rows)
    ]
    walls = [e.wall_time for e in acc.Tensors("energy/epoch_kwh")]
    assert walls == [r["end_unix_s"] for r in rows]
    # the exact figures: the text table, each float as repr() wrote it
    ((_, table),) = values("energy/figures")
    lines = table.item().decode().splitlines()
    assert lines[:2] == ["| name | value |", "|---|---|"]
    cells = dict(tuple(c.strip() for c in row.strip("|").split(" | ")) for row in lines[2:])
    for name, value in expected_totals(account).items():
        assert close(float(cells[name]), value), name
    assert cells["energy/component/gpu0/provenance"] == "measured"
    ((_, report),) = values("energy/report")
    assert report.item().decode().startswith("#")
    assert (folder / "greentrack" / "greentrack_report.json").is_file()
    # the same run again: beside the first (TensorBoard would merge two runs in one folder);
    # a third time: refused, nothing written
    again = greentrack.export(run_dir, to="tensorboard", output=tmp_path / "tb", artifacts=False)
    assert Path(again.location).name == f"resnet_lr=0.1-{account.run_id[:8]}"
    with pytest.raises(greentrack.GreentrackError, match="already hold files"):
        greentrack.export(run_dir, to="tensorboard", output=tmp_path / "tb")
    assert len(list((tmp_path / "tb").iterdir())) == 2


# --- Weights & Biases -----------------------------------------------------------------------


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a W&B run file, read with W&B's own protobufs: a ``:W&B`` header, then
    LevelDB-log records (32 KiB blocks; 7-byte headers: CRC-32 seeded with the type, length,
    type; FULL, FIRST, MIDDLE, LAST), every checksum checked."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if (crc, length, kind) == (0, 0, 0):
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        assert crc == zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF
        pos += 7 + length
        pending += chunk
        if kind in (1, 4):  # FULL or LAST: a record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_the_account(
    run_dir: Path, account: RunAccount, tmp_path: Path
) -> None:
    pytest.importorskip("wandb")
    done = greentrack.export(run_dir, to="wandb", output=tmp_path, plots=False)
    folder = Path(done.location)
    assert folder.parent == tmp_path / "wandb" and folder.name.startswith("offline-run-")
    (run_file,) = folder.glob("run-*.wandb")
    records = list(wandb_records(run_file))
    kinds = [r.WhichOneof("record_type") for r in records]
    assert "run" in kinds and "exit" in kinds
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == "resnet_lr=0.1" and run.project == "paper"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["energy/region"] == "DE"
    assert config["energy/component/cpu/provenance"] == "estimated"
    history = [
        {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    rows = epochs(account)
    assert [h["_step"] for h in history] == [0, 1, 2, 3]
    assert [h["energy/epoch_kwh"] for h in history[:3]] == [r["energy_kwh"] for r in rows]
    assert history[3]["energy/total_kwh"] == account.it_kwh.value
    summary: dict[str, Any] = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            for u in r.summary.update:
                summary[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    for name, value in expected_totals(account).items():
        assert close(summary[name], value), name
    saved = {
        f.path for r in records if r.WhichOneof("record_type") == "files" for f in r.files.files
    }
    assert {"greentrack/greentrack_report.md", "greentrack/greentrack_report.json"} <= saved
    report = json.loads((folder / "files" / "greentrack" / "greentrack_report.json").read_text())
    assert close(report["runs"][0]["headline"]["energy_kwh_low"], account.it_kwh.low)


# --- BoAmps ---------------------------------------------------------------------------------


def boamps_validator() -> Any:
    """BoAmps' validator as its own tool builds it (tools/schema_validator): the report
    schema with its four sub-schemas registered under their ids, read from the bundled copy."""
    from importlib import resources

    from jsonschema import Draft4Validator
    from referencing import Registry, Resource

    data = resources.files("greentrack.export") / "data"
    load = lambda name: json.loads((data / f"boamps_{name}_schema.json").read_text())  # noqa: E731
    registry = Registry().with_resources(
        (load(name)["id"], Resource.from_contents(load(name)))
        for name in ("algorithm", "dataset", "measure", "hardware")
    )
    return Draft4Validator(load("report"), registry=registry)


def test_boamps_follows_the_schema_and_holds_the_account(
    run_dir: Path, account: RunAccount, tmp_path: Path
) -> None:
    out = tmp_path / "resnet.json"
    argv = ["export", str(run_dir), "--to", "boamps", "-o", str(out)]
    assert main([*argv, "--task-family", "image classification", "--data-type", "image"]) == 0
    data = json.loads(out.read_text())
    validator = boamps_validator()
    assert list(validator.iter_errors(data)) == []
    (measure,) = data["measures"]
    assert close(measure["powerConsumption"], account.it_kwh.value)
    assert measure["measurementDuration"] == account.duration_s
    assert measure["gpuTrackingMode"] == "nvml"
    assert data["environment"]["country"] == "DE"
    assert close(data["environment"]["powerSourceCarbonIntensity"], account.carbon.intensity.value)  # type: ignore[union-attr]
    # NVML within 5% and a CPU estimate within 50%: the range is within BoAmps' 10% class
    error = max(
        account.it_kwh.high - account.it_kwh.value, account.it_kwh.value - account.it_kwh.low
    )
    assert error / account.it_kwh.value <= 0.10 and data["quality"] == "high"
    assert data["header"]["reportStatus"] == "final"
    assert data["task"]["taskFamily"] == "image classification"
    # the framework's version is the one the run recorded among its imported packages (it is
    # there when lightning was imported in the tracking process before the run started)
    (algorithm,) = data["task"]["algorithms"]
    version = (greentrack.load_run(run_dir).meta.get("software") or {}).get("lightning")
    expected = {"framework": "lightning", "epochsNumber": 3}
    assert algorithm == ({**expected, "frameworkVersion": str(version)} if version else expected)
    assert {c["componentType"]: c["nbComponent"] for c in data["infrastructure"]["components"]} == {
        "gpu": 2,
        "cpu": 1,
        "ram": 1,
    }
    # the validator is not a formality: what BoAmps requires, missing, is caught
    del data["task"]["taskFamily"]
    assert any("taskFamily" in e.message for e in validator.iter_errors(data))


def test_boamps_of_a_run_without_region_and_of_several_runs(tmp_path: Path) -> None:
    plain = training_run(tmp_path / "plain", region=None, name="plain")
    cloud = training_run(tmp_path / "cloud", region="aws:eu-west-1", name="cloud")
    (tmp_path / "out").mkdir()
    done = greentrack.export.api.export_runs(
        [plain, cloud],
        "boamps",
        output=tmp_path / "out",
        task_family="text classification",
        data_type="text",
    )
    validator = boamps_validator()
    docs = [json.loads(Path(d.location).read_text()) for d in done]
    for doc in docs:
        assert list(validator.iter_errors(doc)) == []
    assert "environment" not in docs[0] and "no CO2e" in docs[0]["task"]["taskDescription"]
    assert docs[1]["infrastructure"]["infraType"] == "publicCloud"
    assert docs[1]["infrastructure"]["cloudProvider"] == "aws"
    assert docs[1]["environment"]["country"] == "IE"


# --- doors: missing extras, bad options -----------------------------------------------------


@pytest.mark.parametrize(
    ("target", "module", "extra", "args"),
    [
        ("mlflow", "mlflow", "mlflow", []),
        ("wandb", "wandb", "wandb", []),
        ("tensorboard", "tensorboard", "tensorboard", ["-o", "tb"]),
        (
            "boamps",
            "jsonschema",
            "boamps",
            ["-o", "b.json", "--task-family", "x", "--data-type", "text"],
        ),
    ],
)
def test_a_missing_extra_is_one_line(
    target: str,
    module: str,
    extra: str,
    args: list[str],
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from greentrack.export import to_boamps

    to_boamps.validator.cache_clear()
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    before = set(tmp_path.iterdir())
    assert main(["export", str(run_dir), "--to", target, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'greentrack[{extra}]'" in err, err
    assert set(tmp_path.iterdir()) == before
    to_boamps.validator.cache_clear()


def test_bad_options_are_one_line_and_write_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["export", str(run_dir)]
    cases = [
        ([*base, "--to", "tensorboard"], "needs output= (-o)"),
        ([*base, "--to", "tensorboard", "-o", "nodir/tb"], "does not exist; create it first"),
        ([*base, "--to", "tensorboard", "-o", "tb", "--run-id", "x"], "--run-id is an option"),
        ([*base, "--to", "boamps", "-o", "b.json"], "--task-family and --data-type"),
        (
            [*base, "--to", "boamps", "-o", "b.txt", "--task-family", "x", "--data-type", "text"],
            ".json",
        ),
        ([*base, "--to", "wandb", "--timeout", "nan"], "--timeout"),
        ([*base, "--to", "wandb", "--prefix", "a|b"], "prefix"),
        ([*base, "--to", "mlflow", "--region", "Atlantis"], "Atlantis"),
        ([*base, "--to", "zenodo"], "--to"),
        (
            ["export", str(tmp_path / "missing"), "--to", "tensorboard", "-o", "tb"],
            "not a greentrack run",
        ),
    ]
    for argv, message in cases:
        assert exit_code(argv) == 2, argv
        captured = capsys.readouterr()
        assert message in captured.err and captured.err.count("\n") == 1, (argv, captured.err)
        assert list(tmp_path.iterdir()) == [], argv
    with pytest.raises(ValueError, match="option of the mlflow export, not of boamps"):
        greentrack.export(run_dir, to="boamps", run_id="x")
    with pytest.raises(ValueError, match="unknown export option 'colour'"):
        greentrack.export(run_dir, to="tensorboard", colour="green")


def exit_code(argv: list[str]) -> int | str | None:
    """The command's exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_wandb_online_without_a_login_is_one_line(
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Online uses the user's own W&B login; without one, one line says how to give it (and
    nothing is sent or written)."""
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    (tmp_path / "out").mkdir()
    argv = ["export", str(run_dir), "--to", "wandb", "--mode", "online", "-o", "out"]
    assert main([*argv, "--timeout", "10", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "wandb login" in err and "WANDB_API_KEY" in err and err.count("\n") == 1, err
    assert list((tmp_path / "out").iterdir()) == []
