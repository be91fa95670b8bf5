"""Hugging Face ``transformers.Trainer`` integration: :class:`EmissionsCallback`, an adapter
over :class:`greentrack.live.LiveRun`.

>>> from transformers import Trainer  # doctest: +SKIP
>>> from greentrack.integrations.transformers import EmissionsCallback  # doctest: +SKIP
>>> cb = EmissionsCallback("runs/bert", region="DE", pue=1.1)  # doctest: +SKIP
>>> trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[cb])  # doctest: +SKIP

What it records: spans ``train`` > ``train_epoch`` (tag ``epoch``), and ``inference`` for each
run of the Trainer's prediction loop (inside the epoch when evaluation runs during training).
``train()``, and each ``evaluate()`` or ``predict()`` called on its own (as most Hugging Face
scripts do after training), is a stage (``train``; ``inference``: the Trainer's prediction
loop): a segment of the same run directory, closed when the stage ends. Under ``torchrun`` or
``accelerate launch`` every rank writes its part of one run directory; rank and job come from
the launcher, never from ``TrainingArguments`` (which calls every CPU process rank 0 when it
does not initialise a process group).

Logged (added to the Trainer's logs after each epoch, so every ``report_to`` that comes after
this callback receives them, and appended to ``trainer.state.log_history``; energies summed over
all ranks): the live run's metrics, one set of names for every integration
(``energy/total_kwh`` with ``_low``/``_high``, ``energy/total_co2e_g``, ``energy/epoch_kwh``,
``energy/forecast_kwh``...; see :mod:`greentrack.live` and docs/metrics.md).

At the start of ``train()``, rank 0 records the model's parameter count (a ``model`` event),
which the report's brief sentence states.

Reporters registered before this callback (the Trainer adds ``report_to`` integrations before
the callbacks you pass) see the keys from the next log on; :func:`attach` puts the callback
first, so that every reporter sees every key. Resuming from a checkpoint continues the run
(the callback is an ``ExportableState``: Trainer's stateful callbacks).
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

from greentrack.analysis.budget import Budget
from greentrack.analysis.metrics import scalar_metrics
from greentrack.carbon.settings import CarbonSettings
from greentrack.integrations import require
from greentrack.launcher import RankInfo, process_group
from greentrack.live import LiveRun
from greentrack.tracker import TrackerOptions

tc: Any = require("transformers.trainer_callback", feature="greentrack's Trainer callback")


class EmissionsCallback(tc.TrainerCallback, tc.ExportableState):  # type: ignore[misc]
    """Measure energy (and CO2e) of a ``transformers.Trainer`` run, per epoch, on every rank.

    Args:
        run_dir: where to write (default ``runs/<UTC time>-<id>``; the same on every rank).
        project, name: labels for reports.
        region, pue, intensity, intensity_source, carbon: the carbon arguments of every entry
            point (``region="DE", pue=1.1``, or ``carbon=CarbonSettings...`` or the dict it
            records), checked here; none: energy only.
        intensity_provider, provider_region: charge the run's own hours from a provider.
        budget: a :class:`greentrack.Budget`; ``on_budget="stop"`` ends training cleanly.
        prefix: prefix of the logged keys.
        forecast_after_epochs: forecast the whole run after this many epochs (``0``: never).
        resume: add this training to the run already in ``run_dir``.
        meters_factory: ``f() -> meters`` replacing discovery (tests pass fakes).
        options: :class:`greentrack.TrackerOptions`.
        prometheus_port: serve live metrics on ``http://127.0.0.1:PORT/metrics`` while each
            stage runs (rank R: ``PORT`` + local rank; needs ``greentrack[prometheus]``;
            docs/prometheus.md). Another address or a textfile: ``options``.
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        region: str | None = None,
        pue: float | str | None = None,
        intensity: float | None = None,
        intensity_source: str | None = None,
        carbon: CarbonSettings | dict[str, Any] | None = None,
        intensity_provider: str | None = None,
        provider_region: str | None = None,
        budget: Budget | None = None,
        prefix: str = "energy/",
        forecast_after_epochs: int = 1,
        resume: bool = False,
        meters_factory: Any = None,
        options: TrackerOptions | None = None,
        prometheus_port: int | None = None,
    ) -> None:
        self.live = LiveRun(
            run_dir,
            project=project,
            name=name,
            region=region,
            pue=pue,
            intensity=intensity,
            intensity_source=intensity_source,
            carbon=carbon,
            intensity_provider=intensity_provider,
            provider_region=provider_region,
            budget=budget,
            prefix=prefix,
            forecast_after=forecast_after_epochs,
            options=options,
            prometheus_port=prometheus_port,
            resume=resume,
            framework="transformers",
        )
        self._meters_factory = meters_factory
        self._pending: dict[str, float] = {}

    @property
    def run_dir(self) -> Path:
        return self.live.run_dir

    @property
    def carbon(self) -> CarbonSettings | None:
        return self.live.carbon

    @property
    def last_metrics(self) -> dict[str, float]:
        return self.live.last.metrics

    # --- ExportableState ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "args": {
                "run_dir": str(self.run_dir),
                "project": self.live.project,
                "name": self.live.name,
                "carbon": self.carbon.to_dict() if self.carbon else None,
                "prefix": self.live.figures.prefix,
                "prometheus_port": self.live.options.prometheus.port,
            },
            "attributes": self.live.state(),
        }

    def _restore(self, state: Any) -> None:
        """Resuming from a checkpoint: take the run the checkpoint saved for this callback
        (its ``trainer_state.json``), whether or not the Trainer was asked to restore callback
        states (``restore_callback_states_from_checkpoint``)."""
        if self.live.run_id is not None or not getattr(state, "global_step", 0):
            return
        saved = (getattr(state, "stateful_callbacks", None) or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[0] if saved else None
        attributes = (saved or {}).get("attributes") if isinstance(saved, dict) else None
        if isinstance(attributes, dict):
            self.live.restore(attributes)

    # --- lifecycle -----------------------------------------------------------------------------

    def _start(self, args: Any, stage: str) -> None:
        if self.live.tracker is not None:
            return
        world = int(getattr(args, "world_size", 1) or 1)
        framework = RankInfo(
            rank=int(getattr(args, "process_index", 0) or 0),
            local_rank=int(getattr(args, "local_process_index", 0) or 0),
            world_size=world,
            local_world_size=world,
            launcher="transformers",
            node=socket.gethostname(),
        )
        self.live.open(
            stage,
            framework=framework,
            broadcast=_broadcast if process_group() is not None else None,
            meters=list(self._meters_factory()) if self._meters_factory else None,
        )

    # --- Trainer events ------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._restore(state)
        self._start(args, "train")
        self.live.begin("train", "train", segment=self.live.segment)
        if kwargs.get("model") is not None:  # the model trained, for the report's sentence
            self.live.record_model(kwargs["model"])

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.live.begin("epoch", "train_epoch", parent="train", epoch=int(state.epoch or 0))

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        record = self.live.end("epoch")
        if record is None:
            return
        done = len(self.live.units_j) + 1
        progress = self.live.step(
            record,
            remaining=_remaining_epochs(args, state, done),
            reduce=_sum_over_ranks,
            leader=self.live.identity().rank == 0,
            where=f" after epoch {done - 1}",
        )
        self._publish(state, control, progress.metrics)
        if progress.stop:
            control.should_training_stop = True

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        live = self.live
        if live.tracker is None:  # evaluate() or predict() on its own: a stage of its own
            self._start(args, "inference")
        parent = "epoch" if live.has("epoch") else ("train" if live.has("train") else None)
        live.begin("eval", "inference", parent=parent, epoch=_epoch_index(state))

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.live.end("eval")
        if kwargs.get("metrics"):
            values = scalar_metrics(kwargs["metrics"])
            if values:
                self.live.event(
                    {"event": "metrics", "epoch": _epoch_index(state), "metrics": values}
                )
        self._end_stage_alone(state)

    def on_predict(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.live.end("eval")
        self._end_stage_alone(state)

    def _end_stage_alone(self, state: Any) -> None:
        """``evaluate()``/``predict()`` outside ``train()``: the stage ends with its loop."""
        if self.live.tracker is None or self.live.has("train"):
            return
        progress = self.live.step(None, reduce=_sum_over_ranks)
        state.log_history.append({**progress.metrics, "step": state.global_step})
        self.live.close("finished")

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        logs = kwargs.get("logs")
        if self._pending and isinstance(logs, dict):
            logs.update(self._pending)
            self._pending = {}

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.live.end("train")
        progress = self.live.step(None, reduce=_sum_over_ranks)
        state.log_history.append({**progress.metrics, "step": state.global_step})
        self.live.close("finished")

    def _publish(self, state: Any, control: Any, metrics: dict[str, float]) -> None:
        self._pending = dict(metrics)
        control.should_log = True  # the Trainer logs at this step: on_log adds the figures
        state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})


def _epoch_index(state: Any) -> int:
    """The index of the epoch an evaluation belongs to (0 for the first), as the epoch spans
    and rows are numbered. The Trainer's ``state.epoch`` counts epochs done as a float: 1.0
    when it evaluates at the end of the first, 0.5 half-way through it."""
    done = float(getattr(state, "epoch", 0.0) or 0.0)
    if not math.isfinite(done) or done <= 0:
        return 0
    return max(0, math.ceil(done) - 1) if done == int(done) else int(done)


def _broadcast(value: Any) -> Any:
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _sum_over_ranks(values: list[float]) -> list[float]:
    """Sum over the ranks of a torch.distributed job (a no-op in one process)."""
    if process_group() is None:
        return values
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def _remaining_epochs(args: Any, state: Any, done: int) -> float | None:
    """Epochs left after ``done`` completed ones, from ``num_train_epochs`` (``None`` when
    unknown)."""
    total = getattr(state, "num_train_epochs", None) or getattr(args, "num_train_epochs", None)
    if total and total > 0 and math.isfinite(float(total)):
        return max(0.0, float(total) - done)
    return None


def attach(trainer: Any, callback: EmissionsCallback | None = None, **kwargs: Any) -> Any:
    """Add ``callback`` (or a new one from ``kwargs``) to ``trainer`` *first*, so that every
    ``report_to`` integration sees the energy keys; returns the callback."""
    cb = callback or EmissionsCallback(**kwargs)
    trainer.callback_handler.callbacks.insert(0, cb)
    return cb
