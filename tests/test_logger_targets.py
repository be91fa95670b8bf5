"""The integrations' figures reach the frameworks' own loggers, read back with each logger's
own reader: Lightning's CSVLogger, TensorBoardLogger and MLFlowLogger, and the Transformers
Trainer's ``report_to`` (TensorBoard). docs/lightning.md and docs/transformers.md say so."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("lightning")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from greentrack.integrations.lightning import EmissionsCallback, pl
from tests.lightning_helpers import TinyModel, fake_meters, loaders

KEYS = ("energy/total_kwh", "energy/epoch_kwh", "energy/total_co2e_g", "energy/total_kwh_high")


class _Recording(EmissionsCallback):
    """Keeps every set of figures the callback logged, with the step it logged them at."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.logged: list[tuple[int, dict[str, float]]] = []

    def _log(self, trainer, progress) -> None:  # type: ignore[no-untyped-def]
        super()._log(trainer, progress)
        if progress.metrics:
            self.logged.append((trainer.global_step, dict(progress.metrics)))


def _series(cb: _Recording, key: str) -> list[tuple[int, float]]:
    return [(step, m[key]) for step, m in cb.logged if key in m]


def _scalars(logdir: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _same(
    read: list[tuple[int, float]], logged: list[tuple[int, float]], key: str, rel: float = 1e-12
) -> None:
    """The logger read back what the callback logged: the same values at the same steps."""
    read, logged = sorted(read), sorted(logged)
    assert [s for s, _ in read] == [s for s, _ in logged], key
    assert [v for _, v in read] == pytest.approx([v for _, v in logged], rel=rel), key


def _fit(tmp_path: Path, loggers: list) -> _Recording:  # type: ignore[type-arg]
    cb = _Recording(tmp_path / "run", region="FR", pue=1.2, meters_factory=fake_meters)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        callbacks=[cb],
        logger=loggers,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        default_root_dir=tmp_path,
    )
    train, val = loaders()
    trainer.fit(TinyModel(), train, val)
    return cb


def test_lightning_figures_reach_csv_and_tensorboard_loggers(tmp_path):
    csv = pl.loggers.CSVLogger(tmp_path / "csv", name="", version=0)
    tb = pl.loggers.TensorBoardLogger(tmp_path / "tb", name="", version=0)
    cb = _fit(tmp_path, [csv, tb])
    assert len(_series(cb, "energy/epoch_kwh")) == 2  # one per train epoch
    frame = pd.read_csv(tmp_path / "csv" / "version_0" / "metrics.csv")
    for key in KEYS:
        logged = _series(cb, key)
        assert logged and all(v > 0 for _, v in logged), key
        rows = frame.dropna(subset=[key])
        _same(list(zip(rows["step"], rows[key], strict=True)), logged, key)
        _same(_scalars(tmp_path / "tb" / "version_0", key), logged, key, rel=1e-6)  # float32


@pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None,
    reason="mlflow is not installed (pip install mlflow)",
)
def test_lightning_figures_reach_the_mlflow_logger(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    # a file: store, read back with MLflow's own client (MLflow 3 asks to opt in to it)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    logger = pl.loggers.MLFlowLogger(experiment_name="greentrack", tracking_uri=uri)
    cb = _fit(tmp_path, [logger])
    client = MlflowClient(tracking_uri=uri)
    for key in KEYS:
        history = client.get_metric_history(logger.run_id, key)
        _same([(m.step, m.value) for m in history], _series(cb, key), key)


def test_transformers_figures_reach_report_to_tensorboard(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    from greentrack.integrations.transformers import EmissionsCallback as HFCallback
    from greentrack.integrations.transformers import attach
    from tests.test_transformers import Data, fake_meters, tiny_bert

    logdir = tmp_path / "tb"
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(logdir))  # the Trainer's writer reads it
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        report_to=["tensorboard"],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="epoch",
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=Data(16))
    cb = attach(trainer, HFCallback(tmp_path / "run", region="FR", meters_factory=fake_meters))
    trainer.train()
    epochs = [h for h in trainer.state.log_history if "energy/epoch_kwh" in h and "epoch" in h]
    assert len(epochs) == 2
    for key in ("energy/total_kwh", "energy/epoch_kwh", "energy/total_co2e_g"):
        # the Trainer's TensorBoard writer prefixes training logs with "train/"
        read = _scalars(logdir, f"train/{key}")
        assert [v for _, v in read] == pytest.approx([h[key] for h in epochs], rel=1e-6), key
        assert [s for s, _ in read] == [h["step"] for h in epochs]
    assert cb.last_metrics["energy/total_kwh"] >= epochs[-1]["energy/total_kwh"]
