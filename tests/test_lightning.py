"""EmissionsCallback in a real CPU Trainer with fake meters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import greentrack
from greentrack.integrations.lightning import EmissionsCallback, pl
from tests.lightning_helpers import CPU_W, GPU_W, TinyModel, fake_meters, loaders

ROOT = Path(__file__).resolve().parents[1]


def _trainer(tmp_path, callback, max_epochs=3, **kw):
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        callbacks=[callback],
        logger=pl.loggers.CSVLogger(tmp_path / "logs", name="", version=0),
        limit_train_batches=4,
        limit_val_batches=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        log_every_n_steps=1,
        **kw,
    )


def _metrics(tmp_path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")


class _AccountAtFitEnd(EmissionsCallback):
    """Takes the account of the run directory at the moment the end-of-fit figures were made
    (the same reading), to compare the live figures with it."""

    def on_fit_end(self, trainer, pl_module):  # type: ignore[no-untyped-def]
        super().on_fit_end(trainer, pl_module)
        from greentrack.account import account_run

        self.live.tracker.writer.flush()
        self.account_then = account_run(
            greentrack.load_run(self.run_dir), live_energy_j=self.live.reading
        )


def test_fit_spans_and_logged_energy(tmp_path):
    cb = _AccountAtFitEnd(
        tmp_path / "run",
        carbon=greentrack.CarbonSettings.resolve("FR", pue=1.2),
        meters_factory=fake_meters,
    )
    trainer = _trainer(tmp_path, cb, enable_checkpointing=False)
    trainer.fit(TinyModel(), *loaders())
    run = greentrack.load_run(tmp_path / "run")
    spans = run.spans.set_index("span_id")
    names = spans["name"].tolist()
    assert names.count("train_epoch") == 3 and names.count("validation") == 3
    assert names[:2] == ["fit", "sanity_check"]
    fit_id = spans.index[spans["name"] == "fit"][0]
    epochs = spans[spans["name"] == "train_epoch"]
    assert (epochs["parent_id"] == fit_id).all()
    vals = spans[spans["name"] == "validation"]
    assert set(vals["parent_id"]) <= set(epochs.index)
    # logged per-epoch measured energy equals the scripted trace over each epoch span
    m = _metrics(tmp_path).dropna(subset=["energy/epoch_kwh"])
    assert len(m) == 3
    expected = (epochs["energy_j.gpu0"] + epochs["energy_j.cpu0"]).to_numpy() / 3.6e6
    assert m["energy/epoch_kwh"].to_numpy() == pytest.approx(expected, rel=1e-9)
    # and the scripted power over each epoch: the fake meters read the wall clock, so the
    # bound allows what a loaded machine can put between a span's clock and its reading (the
    # exact check is the one above)
    power_j = (GPU_W + CPU_W) * epochs["duration_s"].to_numpy()
    assert (np.abs(expected * 3.6e6 - power_j) <= 0.02 * power_j + (GPU_W + CPU_W) * 0.25).all()
    # the running total is the run's energy so far (sanity check and setup included), not the
    # sum of the epochs; each epoch's row is at least the epochs so far
    assert (m["energy/total_kwh"].to_numpy() >= expected.cumsum() * (1 - 1e-9)).all()
    assert "energy/forecast_kwh" in m.columns
    # forecasts only while epochs remain (a forecast of a finished run is no forecast)
    assert m["energy/forecast_kwh"].notna().tolist() == [True, True, False]
    forecasts = [e for e in run.events if e["event"] == "forecast"]
    assert [f["units_remaining"] for f in forecasts] == [2.0, 1.0]
    # the figures at the end of fit are the account's of that moment, value and range
    end = _metrics(tmp_path).dropna(subset=["energy/total_kwh"]).iloc[-1]
    then = cb.account_then
    for bound in ("value", "low", "high"):
        suffix = "" if bound == "value" else f"_{bound}"
        assert end[f"energy/total_kwh{suffix}"] == pytest.approx(
            getattr(then.it_kwh, bound), rel=1e-9
        )
        assert end[f"energy/total_co2e_g{suffix}"] == pytest.approx(
            getattr(then.co2e_g, bound), rel=1e-9
        )
    assert end["energy/total_kwh"] <= greentrack.summarize(run).account.it_kwh.value
    grams = (
        end["energy/total_kwh"]
        * 1.2
        * greentrack.carbon.intensity.resolve_region("FR").gco2e_per_kwh
    )
    assert end["energy/total_co2e_g"] == pytest.approx(grams, rel=1e-9)
    assert cb.total_kwh == pytest.approx(end["energy/total_kwh"], rel=1e-9)
    assert run.complete and greentrack.summarize(run).status == "finished"
    assert run.meta["part"]["rank"] == 0 and run.meta["framework"] == pl.__name__
    # the model's own metrics are stored per epoch, for emissions-to-target in reports
    model_metrics = [e for e in run.events if e["event"] == "metrics"]
    assert [e["epoch"] for e in model_metrics] == [0, 1, 2]
    assert all("val_loss" in e["metrics"] for e in model_metrics)
    from greentrack.report.model import ReportOptions, build_report

    report = build_report([tmp_path / "run"], ReportOptions(metric="val_loss"))
    r = report.to_dict()["runs"][0]
    assert r["kind"] == "training" and r["metric"]["reached_at"] in (0, 1, 2)
    assert r["metric"]["energy_kwh_to_reach"] <= r["energy"]["it_kwh"] * (1 + 1e-9)


def test_forecast_and_budget_stop(tmp_path):
    cb = EmissionsCallback(
        tmp_path / "run",
        meters_factory=fake_meters,
        budget=greentrack.Budget(kwh=1e-9, on_budget="stop"),
        forecast_after_epochs=1,
    )
    trainer = _trainer(tmp_path, cb, max_epochs=5, enable_checkpointing=False)
    with pytest.warns(RuntimeWarning, match="budget"):
        trainer.fit(TinyModel(), *loaders())
    assert trainer.current_epoch == 1  # stopped after the first epoch
    events = greentrack.load_run(tmp_path / "run").events
    assert any(e["event"] == "budget" for e in events)


def test_exception_in_training_step_leaves_a_complete_run(tmp_path):
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, cb, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(TinyModel(fail_at=6), *loaders())
    run = greentrack.load_run(tmp_path / "run")
    assert run.complete
    assert greentrack.summarize(run).status == "failed: RuntimeError"
    statuses = run.spans.set_index("name")["status"]
    assert statuses["fit"] == "error"
    assert greentrack.summarize(run).measured_energy_j > 0


def test_resume_from_checkpoint_continues_totals(tmp_path):
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        callbacks=[cb, ckpt],
        logger=False,
        limit_train_batches=4,
        limit_val_batches=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(TinyModel(), *loaders())
    first_total = cb.total_kwh
    import torch

    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    state = next(v for k, v in saved.items() if "EmissionsCallback" in k)
    root_id = greentrack.load_run(tmp_path / "run").meta["run_id"]
    assert state["segments"] == 1 and state["run_id"] == root_id and len(state["units_j"]) == 2

    cb2 = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer2 = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        devices=1,
        callbacks=[cb2],
        logger=False,
        limit_train_batches=4,
        limit_val_batches=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer2.fit(TinyModel(), *loaders(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert cb2.segment == 1
    assert cb2.total_kwh > first_total
    assert (tmp_path / "run" / "parts" / "seg1-rank0" / "summary.json").exists()
    summary = greentrack.summarize(tmp_path / "run")
    channels = [c.channel for c in summary.components]
    assert channels == ["gpu0", "cpu0", "seg1-rank0/gpu0", "seg1-rank0/cpu0"]
    assert any("segment 1 resumed" in n for n in summary.notes)
    # the run's total is both segments: the callback's figure at the end of segment 2 holds
    # all of segment 1 and segment 2's epochs, and no more than the final account (the tracker
    # stopped after it); no wall-clock bound, so the machine's load cannot matter
    part = greentrack.load_run(tmp_path / "run" / "parts" / "seg1-rank0").spans
    epochs_j = part.loc[part["name"] == "train_epoch", ["energy_j.gpu0", "energy_j.cpu0"]]
    assert len(epochs_j) == 2
    total = summary.account.it_kwh.value
    assert first_total + epochs_j.to_numpy().sum() / 3.6e6 <= cb2.total_kwh * (1 + 1e-9)
    assert cb2.total_kwh <= total * (1 + 1e-9)


def test_a_new_training_into_a_used_directory_is_refused(tmp_path):
    """A second, unrelated training with the same run directory is not appended as later
    segments: it is refused before it trains (as track() refuses it), unless it resumes."""
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    _trainer(tmp_path, cb, max_epochs=1, enable_checkpointing=False).fit(TinyModel(), *loaders())
    again = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    with pytest.raises(greentrack.RunExistsError, match=r"already holds run .* resume=True"):
        _trainer(tmp_path, again, max_epochs=1, enable_checkpointing=False).fit(
            TinyModel(), *loaders()
        )
    assert not (tmp_path / "run" / "parts").exists()
    resumed = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters, resume=True)
    _trainer(tmp_path, resumed, max_epochs=1, enable_checkpointing=False).fit(
        TinyModel(), *loaders()
    )
    assert resumed.segment == 1
    run = greentrack.load_run(tmp_path / "run")
    assert [p.meta["part"]["segment"] for p in run.parts] == [1]


def test_bad_arguments_fail_in_init():
    with pytest.raises(ValueError, match="is not a PUE"):
        EmissionsCallback(carbon=greentrack.CarbonSettings.resolve("DE", pue=0.8))
    with pytest.raises(ValueError, match="on_budget"):
        EmissionsCallback(budget=greentrack.Budget(kwh=1.0, on_budget="explode"))
    with pytest.raises(TypeError, match="unknown argument 'hz'"):
        EmissionsCallback(options=greentrack.TrackerOptions.from_kwargs(hz=3))
    with pytest.raises(TypeError, match=r"carbon takes greentrack\.CarbonSettings"):
        EmissionsCallback(carbon="DE")  # type: ignore[arg-type]


DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from greentrack.integrations.lightning import EmissionsCallback, pl
    from tests.lightning_helpers import TinyModel, fake_meters, loaders

    if __name__ == "__main__":
        cb = EmissionsCallback(sys.argv[1], meters_factory=fake_meters)
        logger = pl.loggers.CSVLogger(sys.argv[2], name="", version=0)
        trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp",
                             callbacks=[cb], logger=logger,
                             limit_train_batches=4, limit_val_batches=2, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False,
                             use_distributed_sampler=False)
        trainer.fit(TinyModel(), *loaders())
    """
)


def test_ddp_two_processes_sum_over_ranks(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT.format(root=str(ROOT)))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(tmp_path / "logs")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = greentrack.load_run(tmp_path / "run")
    summary = greentrack.summarize(run)
    channels = {c.channel: c.energy_j for c in summary.components}
    # rank 1 measures its own GPU only: the node's CPU is counted once, by local rank 0
    assert set(channels) == {"gpu0", "cpu0", "seg0-rank1/gpu0"}
    ranks = json.loads((tmp_path / "run" / "ranks-seg0.json").read_text())["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["host"] for r in ranks)
    # ranks.json is gathered at the end of fit, a moment before each rank's final reading
    assert 0 < ranks[1]["energy_j"]["gpu0"] <= channels["seg0-rank1/gpu0"]
    assert ranks[1]["energy_j"]["gpu0"] == pytest.approx(channels["seg0-rank1/gpu0"], rel=0.05)
    # logged epoch energy is the sum over both ranks' epoch spans
    m = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv").dropna(
        subset=["energy/epoch_kwh"]
    )
    rank1 = greentrack.load_run(tmp_path / "run" / "parts" / "seg0-rank1").spans
    e0 = run.spans[run.spans["name"] == "train_epoch"]
    e1 = rank1[rank1["name"] == "train_epoch"]
    expected = (e0["energy_j"].to_numpy() + e1["energy_j"].to_numpy()) / 3.6e6
    assert m["energy/epoch_kwh"].to_numpy() == pytest.approx(expected, rel=1e-9)
    assert summary.measured_energy_j == pytest.approx(sum(channels.values()))


def test_ddp_ranks_sharing_one_gpu_log_it_once(tmp_path):
    """Two ranks on one GPU (one UUID): the account splits the device between them, and so do
    the live figures (the ranks tell each other their devices): the total logged at the end
    of fit is the account's, not the GPU counted twice."""
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT.format(root=str(ROOT)).replace("fake_meters", "one_gpu_meters"))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(tmp_path / "logs")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    account = greentrack.summarize(tmp_path / "run").account
    gpus = [c for c in account.components if c.component == "gpu"]
    assert len(gpus) == 2 and all("shared by 2 ranks" in c.method for c in gpus)
    m = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    end = m.dropna(subset=["energy/total_kwh"]).iloc[-1]["energy/total_kwh"]
    raw = sum(c.energy_kwh.value for c in gpus) * 2  # each rank's whole reading
    assert end <= account.it_kwh.value * (1 + 1e-9)
    assert end >= account.it_kwh.value * 0.9
    assert end < account.it_kwh.value - sum(c.energy_kwh.value for c in gpus) + raw * 0.75


PL_ONLY = textwrap.dedent(
    """
    import sys
    sys.modules["lightning"] = None  # as if only pytorch_lightning were installed
    sys.path.insert(0, {root!r})
    import pytorch_lightning
    from greentrack.integrations.lightning import EmissionsCallback, pl
    assert pl is pytorch_lightning, pl
    from tests.lightning_helpers import TinyModel, fake_meters, loaders
    cb = EmissionsCallback(sys.argv[1], meters_factory=fake_meters)
    trainer = pytorch_lightning.Trainer(max_epochs=1, accelerator="cpu", devices=1, callbacks=[cb],
                                        logger=False, limit_train_batches=2, limit_val_batches=1,
                                        enable_progress_bar=False, enable_checkpointing=False,
                                        default_root_dir=sys.argv[1] + "-pl")
    trainer.fit(TinyModel(), *loaders())
    print("ok", cb.total_kwh)
    """
)


def test_standalone_pytorch_lightning(tmp_path):
    pytest.importorskip("pytorch_lightning")
    proc = subprocess.run(
        [sys.executable, "-c", PL_ONLY.format(root=str(ROOT)), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1].startswith("ok ")
    assert greentrack.load_run(tmp_path / "run").meta["framework"] == "pytorch_lightning"


def test_ddp_launched_by_torchrun(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT.format(root=str(ROOT)))
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "run"),
            str(tmp_path / "logs"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = greentrack.summarize(tmp_path / "run")
    assert {c.channel for c in summary.components} == {"gpu0", "cpu0", "seg0-rank1/gpu0"}
    ranks = json.loads((tmp_path / "run" / "ranks-seg0.json").read_text())["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]


def test_default_discovery_on_a_cpu_trainer(tmp_path):
    """Without a meters factory the callback discovers this machine's meters; a CPU-only
    trainer asks for no GPU, and local rank 0 takes the CPU."""
    cb = EmissionsCallback(
        tmp_path / "run", options=greentrack.TrackerOptions.from_kwargs(cpu_tdp_w=20.0)
    )
    trainer = _trainer(tmp_path, cb, max_epochs=1, enable_checkpointing=False)
    trainer.fit(TinyModel(), *loaders())
    run = greentrack.load_run(tmp_path / "run")
    assert {b["component"] for b in run.meta["boundary"]} <= {"cpu", "dram"}
    assert greentrack.summarize(run).components  # the CPU, measured (RAPL) or estimated (TDP given)


def test_ddp_under_slurm_environment(tmp_path):
    """Two processes started as `srun` would (SLURM_* variables): Lightning's SLURM
    environment gives each its rank, and the callback splits and sums as under torchrun."""
    import os
    import socket

    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT.format(root=str(ROOT)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "SLURM_NTASKS": "2",
            "SLURM_NTASKS_PER_NODE": "2",
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank),
            "SLURM_NODEID": "0",
            "SLURM_JOB_NAME": "greentrack-test",
            "SLURM_JOB_ID": "42",
            "SLURM_NODELIST": "localhost",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path / "run"), str(tmp_path / "logs")],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    summary = greentrack.summarize(tmp_path / "run")
    assert {c.channel for c in summary.components} == {"gpu0", "cpu0", "seg0-rank1/gpu0"}
    ranks = json.loads((tmp_path / "run" / "ranks-seg0.json").read_text())["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]


def test_fit_then_test_and_predict_from_the_best_checkpoint(tmp_path):
    """Lightning's own autoencoder flow (LightningCLI: fit, then test and predict from the
    best checkpoint): each stage is its own segment, however often a checkpoint restores the
    callback's state; the report counts one process and every stage's spans."""
    from tests.lightning_helpers import TinyPredictor

    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, cb, max_epochs=2)
    model = TinyPredictor()
    train, val = loaders()
    trainer.fit(model, train, val)
    trainer.test(model, val, ckpt_path="best")
    trainer.predict(model, val, ckpt_path="best")
    trainer.test(model, val, ckpt_path="best")
    run = greentrack.load_run(tmp_path / "run")
    stages = sorted((p.meta["part"]["segment"], p.meta["part"]["stage"]) for p in [run, *run.parts])
    assert stages == [(0, "fit"), (1, "test"), (2, "predict"), (3, "test")]
    from greentrack.account import account_run
    from greentrack.report.model import build_report

    acct = account_run(run)
    names = [s["name"] for s in acct.spans]
    assert names.count("test") == 2 and names.count("predict") == 1 and "fit" in names
    report = build_report([tmp_path / "run"]).to_dict()["runs"][0]
    assert report["hardware"]["processes"] == 1 and report["status"] == "finished"
    # the forecast made during fit is compared with fit's energy, not with the test and
    # predict stages after it
    assert set(acct.kwh_by_stage) == {"fit", "test", "predict"}
    assert acct.training_kwh == pytest.approx(acct.kwh_by_stage["fit"])
    assert acct.training_kwh < acct.it_kwh.value
    assert report["forecast"]["final_kwh"] == pytest.approx(acct.kwh_by_stage["fit"])
    assert "training stages" in report["forecast"]["scope"]
    # later stages are named as stages, not as resumes
    assert any("segment 1 (test) started" in n for n in acct.notes)
    assert not any("resumed" in n for n in acct.notes)


DDP_STAGES_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from greentrack.integrations.lightning import EmissionsCallback, pl
    from tests.lightning_helpers import TinyPredictor, fake_meters, loaders

    if __name__ == "__main__":
        cb = EmissionsCallback(sys.argv[1], meters_factory=fake_meters)
        trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp",
                             callbacks=[cb], logger=False, default_root_dir=sys.argv[2],
                             limit_train_batches=4, limit_val_batches=2, limit_test_batches=2,
                             limit_predict_batches=2, enable_progress_bar=False,
                             enable_model_summary=False, use_distributed_sampler=False)
        model = TinyPredictor()
        train, val = loaders()
        trainer.fit(model, train, val)
        trainer.test(model, val, ckpt_path="best")
        trainer.predict(model, val, ckpt_path="best")
    """
)


def test_fit_test_predict_from_the_best_checkpoint_under_ddp(tmp_path):
    """The same flow on two DDP processes: every stage of every rank is its own part, no
    collision; the job reads as 2 processes, finished, with every stage's spans."""
    script = tmp_path / "ddp_stages.py"
    script.write_text(DDP_STAGES_SCRIPT.format(root=str(ROOT)))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = greentrack.load_run(tmp_path / "run")
    parts = sorted(
        (p.meta["part"]["segment"], p.meta["part"]["rank"], p.meta["part"]["stage"])
        for p in [run, *run.parts]
    )
    assert parts == [
        (0, 0, "fit"),
        (0, 1, "fit"),
        (1, 0, "test"),
        (1, 1, "test"),
        (2, 0, "predict"),
        (2, 1, "predict"),
    ]
    from greentrack.account import account_run
    from greentrack.report.model import build_report

    names = [s["name"] for s in account_run(run).spans]
    assert "fit" in names and "test" in names and "predict" in names
    report = build_report([tmp_path / "run"]).to_dict()["runs"][0]
    assert report["hardware"]["processes"] == 2 and report["status"] == "finished"


def test_fit_records_the_model_parameter_count_for_the_report(tmp_path):
    """Rank 0 records the model's parameter count once (a ``model`` event, trainable too);
    the report's brief sentence states it as the recorded count, and a given
    ``--parameters`` wins over it."""
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    model = TinyModel()
    model.layer.bias.requires_grad_(False)
    _trainer(tmp_path, cb, max_epochs=2, enable_checkpointing=False).fit(model, *loaders())
    run = greentrack.load_run(tmp_path / "run")
    expected = sum(p.numel() for p in model.parameters())
    records = [e for e in run.events if e["event"] == "model"]
    assert len(records) == 1 and expected == 9
    assert records[0]["parameters"] == expected
    assert records[0]["trainable_parameters"] == expected - 1
    assert run.parameters == expected and not run.damage
    text = greentrack.report(tmp_path / "run", format="md", brief=True)
    assert "training a model of 9 parameters (as recorded from the model trained)" in text
    given = greentrack.report(tmp_path / "run", format="md", brief=True, parameters=1.24e8)
    assert "training a model of 124 million parameters," in given
    assert "as recorded" not in given and "of 9 parameters" not in given


def test_a_model_whose_count_fails_never_fails_the_training(tmp_path):
    """The count is optional metadata: a model whose parameters() raises trains on, and the
    run records no count."""

    class Odd(TinyModel):
        def parameters(self, recurse=True):  # type: ignore[no-untyped-def]
            import inspect

            if any(f.function == "parameter_counts" for f in inspect.stack()[1:3]):
                raise RuntimeError("no count here")
            return super().parameters(recurse)

    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    _trainer(tmp_path, cb, max_epochs=1, enable_checkpointing=False).fit(Odd(), *loaders())
    run = greentrack.load_run(tmp_path / "run")
    assert run.parameters is None and run.status == "finished"
    assert "training a model of" not in greentrack.report(tmp_path / "run", format="md", brief=True)
