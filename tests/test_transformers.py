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


def test_epochs_are_logged_and_add_up(tmp_path: Path) -> None:
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
    assert epochs and logged[-1]["energy/total_kwh"] == pytest.approx(sum(epochs[:2]))
    assert logged[-1]["energy/total_co2e_g_low"] <= logged[-1]["energy/total_co2e_g"]
    run = greentrack.load_run(tmp_path / "run")
    names = list(run.spans["name"])
    assert names.count("train_epoch") == 2 and "train" in names and "inference" in names
    acct = account_run(run)
    phase = {p["name"]: p for p in acct.phases}
    assert phase["train_epoch"]["energy_kwh"] == pytest.approx(logged[-1]["energy/total_kwh"])
    assert acct.it_kwh.value >= logged[-1]["energy/total_kwh"]
    assert any(e["event"] == "metrics" for e in run.events)  # eval metrics, for to-target


def test_attach_puts_the_callback_first(tmp_path: Path) -> None:
    cb = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, EmissionsCallback(tmp_path / "other"), epochs=1)
    attach(trainer, cb)
    assert trainer.callback_handler.callbacks[0] is cb


def test_resume_continues_the_totals_and_the_model_card(tmp_path: Path) -> None:
    first = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    _trainer(tmp_path, first, epochs=1).train()
    saved = first.state()
    assert saved["attributes"]["segment"] == 1 and saved["attributes"]["prior_j"] > 0
    again = EmissionsCallback(tmp_path / "run", meters_factory=fake_meters)
    trainer = _trainer(tmp_path, again, epochs=2)
    trainer.train(resume_from_checkpoint=True)
    restored = next(
        c for c in trainer.callback_handler.callbacks if isinstance(c, EmissionsCallback)
    )
    assert restored.segment >= 1 and restored.prior_j == pytest.approx(
        saved["attributes"]["prior_j"]
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
    total = float(next(ln for ln in proc.stdout.splitlines() if ln.startswith("TOTAL")).split()[1])
    run = greentrack.load_run(tmp_path / "run")
    assert [p.path.name for p in run.parts] == ["seg0-rank1"]
    acct = account_run(run)
    epochs = next(p for p in acct.phases if p["name"] == "train_epoch")
    # the logged total is the sum over both ranks' epochs
    assert total == pytest.approx(epochs["energy_kwh"], rel=1e-6)
