"""The Hugging Face Trainer callback on a tiny model built from a config (no download):
per-epoch energy in the Trainer's logs adds up to the run's total, resume continues the
totals, the README the Trainer writes receives co2_eq_emissions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

import greentrack  # noqa: E402
from greentrack.account import account_run  # noqa: E402
from greentrack.integrations.transformers import EmissionsCallback, attach  # noqa: E402
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace  # noqa: E402


def fake_meters():  # type: ignore[no-untyped-def]
    return [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(200.0))], time.monotonic)]


class Data(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 50, (n, 8), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:  # type: ignore[type-arg]
        time.sleep(0.005)  # every epoch takes measurable time
        return {
            "input_ids": self.x[i],
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": self.y[i],
        }


def tiny_bert():  # type: ignore[no-untyped-def]
    """A 1-layer BERT classifier built from a config (no download), seeded."""
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def _trainer(tmp_path: Path, cb: EmissionsCallback, epochs: int, **kwargs):  # type: ignore[no-untyped-def]
    model = tiny_bert()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=epochs,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="epoch",
        eval_strategy="epoch",
        logging_strategy="epoch",
        disable_tqdm=True,
        **kwargs,
    )
    return transformers.Trainer(
        model=model, args=args, train_dataset=Data(), eval_dataset=Data(16), callbacks=[cb]
    )


def test_epochs_are_logged_and_the_total_is_the_accounts(tmp_path: Path) -> None:
    cb = EmissionsCallback(
        tmp_path / "run",
        carbon=greentrack.CarbonSettings.resolve("FR", pue=1.1),
        meters_factory=fake_meters,
    )
    trainer = _trainer(tmp_path, cb, epochs=2)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "energy/epoch_kwh" in h]
    assert len(logged) >= 2
    epochs = [
        h["energy/epoch_kwh"]
        for h in trainer.state.log_history
        if "energy/epoch_kwh" in h and "loss" not in h and "eval_loss" not in h
    ]
    # the running total is the run so far (evaluation and set-up included), >= its epochs
    assert logged[-1]["energy/total_kwh"] >= sum(epochs[:2]) * (1 - 1e-9)
    for name in ("total_kwh", "total_co2e_g"):
        assert logged[-1][f"energy/{name}_low"] <= logged[-1][f"energy/{name}"]
        assert logged[-1][f"energy/{name}"] <= logged[-1][f"energy/{name}_high"]
    # forecasts only while epochs remain
    assert "energy/forecast_kwh" in logged[0] and "energy/forecast_kwh" not in logged[-1]
    run = greentrack.load_run(tmp_path / "run")
    names = list(run.spans["name"])
    assert names.count("train_epoch") == 2 and "train" in names and "inference" in names
    acct = account_run(run)
    phase = {p["name"]: p for p in acct.phases}
    assert phase["train_epoch"]["energy_kwh"] == pytest.approx(sum(epochs[:2]))
    # the figures at the end of train() are the account's: same value (less the moments
    # before the tracker stopped) and the same range around it
    end = trainer.state.log_history[-1]
    assert end["energy/total_kwh"] <= acct.it_kwh.value
    assert end["energy/total_kwh"] == pytest.approx(acct.it_kwh.value, rel=0.05)
    for bound in ("low", "high"):
        assert end[f"energy/total_kwh_{bound}"] / end["energy/total_kwh"] == pytest.approx(
            getattr(acct.it_kwh, bound) / acct.it_kwh.value, rel=1e-9
        )
        assert acct.co2e_g is not None
        assert end[f"energy/total_co2e_g_{bound}"] / end["energy/total_co2e_g"] == pytest.approx(
            getattr(acct.co2e_g, bound) / acct.co2e_g.value, rel=1e-9
        )
    # eval metrics, for emissions-to-target: numbered as the epochs they close (the Trainer's
    # state.epoch is 1.0 when it evaluates at the end of epoch 0)
    assert [e["epoch"] for e in run.events if e["event"] == "metrics"] == [0, 1]
    from greentrack.report.model import ReportOptions, build_report

    report = build_report([tmp_path / "run"], ReportOptions(metric="eval_loss")).to_dict()
    reached = report["runs"][0]["metric"]
    assert reached["energy_kwh_to_reach"] is not None and reached["co2e_g_to_reach"] is not None


def test_train_then_evaluate_is_one_finished_run(tmp_path: Path) -> None:
    """run_clm.py's flow: train(), then evaluate() on its own: a stage of the same run,
    closed when it ends (never "exited without stop()"), one process."""
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, cb, epochs=1)
    trainer.train()
    trainer.evaluate()
    trainer.predict(Data(8))
    run = greentrack.load_run(tmp_path / "run")
    assert [p.path.name for p in run.parts] == ["seg1-rank0", "seg2-rank0"]
    assert [p.meta["part"]["stage"] for p in (run, *run.parts)] == [
        "train",
        "inference",
        "inference",
    ]
    assert run.complete and all(p.complete for p in run.parts)
    summary = greentrack.summarize(run)
    assert summary.status == "finished"
    assert not any("exited without stop" in n for n in summary.notes)
    # a later stage is named as one, not as a resume
    assert any("segment 1 (inference) started" in n for n in summary.notes)
    assert not any("resumed" in n for n in summary.notes)
    assert cb.last_metrics["energy/total_kwh"] <= summary.account.it_kwh.value
    assert cb.last_metrics["energy/total_kwh"] > summary.account.components[0].energy_kwh.value


def test_a_new_training_into_a_used_directory_is_refused(tmp_path: Path) -> None:
    _trainer(tmp_path, EmissionsCallback(tmp_path / "run", meters_factory=fake_meters), 1).train()
    again = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    with pytest.raises(greentrack.RunExistsError, match=r"already holds run .* resume=True"):
        _trainer(tmp_path / "b", again, epochs=1).train()
    assert not (tmp_path / "run" / "parts").exists()


def test_attach_puts_the_callback_first(tmp_path: Path) -> None:
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, EmissionsCallback(tmp_path / "other"), epochs=1)
    attach(trainer, cb)
    assert trainer.callback_handler.callbacks[0] is cb


def test_resume_continues_the_totals_and_the_model_card(tmp_path: Path) -> None:
    first = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    _trainer(tmp_path, first, epochs=1).train()
    saved = first.state()
    root_id = greentrack.load_run(tmp_path / "run").meta["run_id"]
    assert saved["attributes"]["segments"] == 1 and saved["attributes"]["run_id"] == root_id
    # the checkpoint's run id makes the same directory a resume, not a new job
    again = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, again, epochs=2)
    trainer.train(resume_from_checkpoint=True)
    restored = next(
        c for c in trainer.callback_handler.callbacks if isinstance(c, EmissionsCallback)
    )
    assert restored.live.segment == 1 and len(restored.live.units_j) == 2
    # the resumed segment's total starts from the account of the first
    assert (
        restored.last_metrics["energy/total_kwh"]
        <= account_run(greentrack.load_run(tmp_path / "run")).it_kwh.value
    )
    run = greentrack.load_run(tmp_path / "run")
    assert [p.path.name for p in run.parts] == ["seg1-rank0"]
    units = account_run(run).units
    assert units is not None and [u["segment"] for u in units["rows"]] == [0, 1]
    # the README the Trainer writes receives co2_eq_emissions, and keeps its own content
    trainer.create_model_card(model_name="tiny-bert")
    readme = Path(trainer.args.output_dir) / "README.md"
    before = readme.read_text()
    from greentrack.cli import main

    assert (
        main(
            [
                "report",
                str(tmp_path / "run"),
                "--region",
                "DE",
                "-f",
                "model-card",
                "-o",
                str(readme),
                "--no-plots",
            ]
        )
        == 0
    )
    after = readme.read_text()
    assert "co2_eq_emissions" in after and "tiny-bert" in after
    import yaml

    front = yaml.safe_load(after.split("---")[1])
    assert front["co2_eq_emissions"]["emissions"] > 0
    assert json.dumps(front).count("greentrack") >= 1 and len(after) > len(before)


def test_two_process_ddp_sums_the_ranks(tmp_path: Path) -> None:
    import subprocess
    import sys

    app = Path(__file__).parent / "apps" / "hf_ddp.py"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            str(app),
            str(tmp_path / "run"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(ln.split() for ln in proc.stdout.splitlines() if ln.startswith(("TOTAL", "AFTER")))
    run = greentrack.load_run(tmp_path / "run")
    # ranks from the launcher (never two processes calling themselves rank 0); evaluate() after
    # train() is a stage of the same run, closed when it ends
    assert [p.path.name for p in run.parts] == ["seg0-rank1", "seg1-rank0", "seg1-rank1"]
    assert [p.meta["part"]["rank"] for p in (run, *run.parts)] == [0, 1, 0, 1]
    assert len({p.meta["part"]["job_id"] for p in (run, *run.parts)}) == 1
    acct = account_run(run)
    assert acct.status == "finished"
    assert not any("exited without stop" in n or "did not stop" in n for n in acct.notes)
    # the logged totals are both ranks', the run's so far
    train = next(p for p in acct.phases if p["name"] == "train_epoch")
    assert float(lines["TOTAL"]) >= train["energy_kwh"] * (1 - 1e-9)
    assert float(lines["TOTAL"]) < float(lines["AFTER_EVALUATE"]) <= acct.it_kwh.value


def test_train_records_the_model_parameter_count(tmp_path: Path) -> None:
    """train() records the model's parameter count once (``num_parameters()``; trainable
    ones too), and the report's brief sentence states it as the recorded count."""
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, cb, epochs=1)
    model = trainer.model
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    trainer.train()
    trainer.evaluate()  # a stage of its own: no second count
    run = greentrack.load_run(tmp_path / "run")
    records = [e for p in (run, *run.parts) for e in p.events if e["event"] == "model"]
    assert len(records) == 1
    assert records[0]["parameters"] == model.num_parameters() == run.parameters
    assert records[0]["trainable_parameters"] == model.num_parameters(only_trainable=True)
    assert records[0]["trainable_parameters"] == model.num_parameters() - 50 * 16
    text = greentrack.report(tmp_path / "run", format="md", brief=True)
    from greentrack.report.prose import count_words

    assert (
        f"training a model of {count_words(model.num_parameters())} parameters "
        "(as recorded from the model trained)"
    ) in text
