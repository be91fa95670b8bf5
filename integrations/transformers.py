"""Hugging Face ``transformers.Trainer`` integration: :class:`EmissionsCallback`.

>>> from transformers import Trainer  # doctest: +SKIP
>>> from greentrack import CarbonSettings  # doctest: +SKIP
>>> from greentrack.integrations.transformers import EmissionsCallback  # doctest: +SKIP
>>> carbon = CarbonSettings.resolve("DE", pue=1.1)  # doctest: +SKIP
>>> cb = EmissionsCallback("runs/bert", carbon=carbon)  # doctest: +SKIP
>>> trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[cb])  # doctest: +SKIP

What it records: spans ``train`` > ``train_epoch`` (tag ``epoch``), and ``inference`` for each
run of the Trainer's prediction loop (``evaluate()`` and ``predict()``, inside the epoch when
evaluation runs during training); under DDP (``torchrun``,
``accelerate launch``) every rank writes its part of one run directory through greentrack's
rank-aware core, each measuring its own GPU and the node's CPU once.

Logged keys (added to the Trainer's logs after each epoch, so every ``report_to`` that comes
after this callback receives them, and appended to ``trainer.state.log_history``; energies
summed over all ranks; ``prefix`` defaults to ``"energy/"``):

* ``{prefix}epoch_kwh``, ``{prefix}total_kwh``: measured and estimated energy of the epoch and
  of the run so far (across resumes), ``{prefix}epoch_measured_kwh`` the measured part;
* ``{prefix}epoch_co2e_g``, ``{prefix}total_co2e_g`` (with ``_low``/``_high``, the range):
  with ``carbon``, by the account's rules;
* ``{prefix}forecast_kwh`` (``_low``, ``_high``): the whole run's energy from the epochs so
  far and the epochs left.

Reporters registered before this callback (the Trainer adds ``report_to`` integrations before
the callbacks you pass) see the keys from the next log on; :func:`attach` puts the callback
first, so that every reporter sees every key. Resuming from a checkpoint continues the totals
(the callback is an ``ExportableState``: Trainer's stateful callbacks).
"""

from __future__ import annotations

import importlib
import math
import socket
import warnings
from pathlib import Path
from typing import Any

from greentrack.account import Figure, LiveAccount
from greentrack.analysis.budget import Budget
from greentrack.analysis.metrics import scalar_metrics
from greentrack.analysis.predict import forecast
from greentrack.api import Tracker, place
from greentrack.carbon.settings import CarbonSettings, settings_from_meta
from greentrack.launcher import RankInfo, detect
from greentrack.rundir.format import META, PARTS, part_name
from greentrack.tracker import Span, TrackerOptions, default_run_dir
from greentrack.units import G_PER_KG, j_from_kwh, kwh_from_j


def _import_transformers() -> Any:
    try:
        return importlib.import_module("transformers.trainer_callback")
    except ImportError as e:
        raise ImportError(
            "greentrack's Trainer callback needs transformers: pip install transformers"
        ) from e


tc = _import_transformers()


class EmissionsCallback(tc.TrainerCallback, tc.ExportableState):  # type: ignore[misc, name-defined]
    """Measure energy (and CO2e) of a ``transformers.Trainer`` run, per epoch, on every rank.

    Args:
        run_dir: where to write (default ``runs/<UTC time>-<id>``; the same on every rank).
        project, name: labels for reports.
        carbon: :class:`greentrack.CarbonSettings` (or the dict it records), checked when you
            build it; ``None``: energy only.
        budget: a :class:`greentrack.Budget`; ``on_budget="stop"`` ends training cleanly.
        prefix: prefix of the logged keys.
        meters_factory: ``f() -> meters`` replacing discovery (tests pass fakes).
        options: :class:`greentrack.TrackerOptions`.
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        carbon: CarbonSettings | dict[str, Any] | None = None,
        budget: Budget | None = None,
        prefix: str = "energy/",
        meters_factory: Any = None,
        options: TrackerOptions | None = None,
    ) -> None:
        if isinstance(carbon, dict):  # restored from a checkpoint's trainer_state.json
            carbon = settings_from_meta({"carbon": carbon})
        if carbon is not None and not isinstance(carbon, CarbonSettings):
            raise TypeError(
                "carbon takes greentrack.CarbonSettings, e.g. "
                f"CarbonSettings.resolve('DE', pue=1.1); got {carbon!r}"
            )
        self.carbon = carbon
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.project, self.name, self.prefix = project, name, prefix
        self.budget = budget or Budget()
        self._meters_factory = meters_factory
        self._options = options or TrackerOptions()
        # state that survives a resume (ExportableState)
        self.segment = 0
        self.prior_j = 0.0
        self.epoch_j: list[float] = []
        # per-process state
        self._tracker: Tracker | None = None
        self._live: LiveAccount | None = None
        self._spans: dict[str, Span] = {}
        self._segment_j = 0.0
        self._pending: dict[str, float] = {}
        self._warned_budget = False
        self.last_metrics: dict[str, float] = {}

    # --- ExportableState ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "args": {
                "run_dir": str(self.run_dir),
                "project": self.project,
                "name": self.name,
                "carbon": self.carbon.to_dict() if self.carbon else None,
                "prefix": self.prefix,
            },
            "attributes": {
                "segment": self.segment + 1,
                "prior_j": self.prior_j + self._segment_j,
                "epoch_j": list(self.epoch_j),
            },
        }

    def _restore(self, state: Any) -> None:
        """Resuming from a checkpoint: take the totals the checkpoint saved for this callback
        (its ``trainer_state.json``), whether or not the Trainer was asked to restore callback
        states (``restore_callback_states_from_checkpoint``)."""
        if self.prior_j or self.epoch_j or not getattr(state, "global_step", 0):
            return
        saved = (getattr(state, "stateful_callbacks", None) or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[0] if saved else None
        attributes = (saved or {}).get("attributes") if isinstance(saved, dict) else None
        if not isinstance(attributes, dict):
            return
        self.segment = max(self.segment, int(attributes.get("segment", 0)))
        self.prior_j = float(attributes.get("prior_j", 0.0))
        self.epoch_j = [float(x) for x in attributes.get("epoch_j", [])]

    # --- lifecycle -----------------------------------------------------------------------------

    def _rank(self, args: Any) -> RankInfo:
        job = detect()
        world = int(getattr(args, "world_size", 1) or 1)
        return RankInfo(
            rank=int(getattr(args, "process_index", 0) or 0),
            local_rank=int(getattr(args, "local_process_index", 0) or 0),
            world_size=world,
            local_world_size=job.local_world_size if job.distributed else world,
            launcher=job.launcher,
            job_id=job.job_id,
            node=socket.gethostname(),
        )

    def _start(self, args: Any) -> None:
        if self._tracker is not None:
            return
        info = self._rank(args)
        while (
            self.run_dir / META
            if self.segment == 0 and info.rank == 0
            else self.run_dir / PARTS / part_name(self.segment, info.rank) / META
        ).exists():
            self.segment += 1  # a later train() in this process, or a resume: a new segment
        run_dir, options, extra = place(self.run_dir, self._options, info, self.segment)
        extra = dict(extra or {})
        extra["framework"] = "transformers"
        meters = list(self._meters_factory()) if self._meters_factory else None
        self._tracker = Tracker(
            run_dir or self.run_dir,
            project=self.project,
            name=self.name,
            meters=meters,
            options=options,
            carbon=self.carbon,
            extra_meta=extra,
        )
        self._tracker.start()
        self._live = LiveAccount(self.carbon, self._tracker.channels)

    def _stop(self, status: str = "finished") -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            return
        for key in list(self._spans)[::-1]:
            span = self._spans.pop(key)
            if span.record is None and tracker.running:
                tracker.end_span(span, status="unclosed")
        tracker.stop(status)

    def _begin(self, key: str, name: str, parent: str | None = None, **tags: Any) -> None:
        if self._tracker is None or key in self._spans:
            return
        self._spans[key] = self._tracker.begin_span(
            name, parent=self._spans.get(parent) if parent else None, **tags
        )

    def _end(self, key: str) -> float | None:
        span = self._spans.pop(key, None)
        if span is None or self._tracker is None:
            return None
        record = self._tracker.end_span(span)
        assert self._live is not None
        measured, estimated = self._live.split_kwh(record.energy_j)
        return j_from_kwh(measured.value + estimated.value)

    # --- Trainer events ------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._restore(state)
        self._start(args)
        self._begin("train", "train", segment=self.segment)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._begin("epoch", "train_epoch", parent="train", epoch=int(state.epoch or 0))

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        joules = self._end("epoch")
        if joules is None:
            return
        joules = _sum_over_ranks(joules)
        self._segment_j += joules
        self.epoch_j.append(joules)
        self._figures(args, state, control, joules)

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        parent = (
            "epoch" if "epoch" in self._spans else ("train" if "train" in self._spans else None)
        )
        if self._tracker is None:
            self._start(args)  # trainer.evaluate() or predict() without train()
        self._begin("eval", "inference", parent=parent, epoch=state.epoch)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._end("eval")
        if self._tracker is not None and kwargs.get("metrics"):
            values = scalar_metrics(kwargs["metrics"])
            if values:
                self._tracker.event(
                    {"event": "metrics", "epoch": int(state.epoch or 0), "metrics": values}
                )

    def on_predict(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._end("eval")
        if "train" not in self._spans:
            self._stop("finished")  # predict() on its own: its run ends with it

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        logs = kwargs.get("logs")
        if self._pending and isinstance(logs, dict):
            logs.update(self._pending)
            self._pending = {}

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._end("train")
        self._stop("finished")

    # --- figures -------------------------------------------------------------------------------

    def _figures(self, args: Any, state: Any, control: Any, epoch_j: float) -> None:
        p = self.prefix
        total_j = self.prior_j + self._segment_j
        metrics: dict[str, float] = {
            f"{p}epoch_kwh": kwh_from_j(epoch_j),
            f"{p}total_kwh": kwh_from_j(total_j),
        }
        assert self._live is not None
        epoch_co2e = self._live.co2e_g(Figure.exact(kwh_from_j(epoch_j)))
        total_co2e = self._live.co2e_g(Figure.exact(kwh_from_j(total_j)))
        if epoch_co2e is not None and total_co2e is not None:
            metrics[f"{p}epoch_co2e_g"] = epoch_co2e.value
            metrics[f"{p}total_co2e_g"] = total_co2e.value
            metrics[f"{p}total_co2e_g_low"] = total_co2e.low
            metrics[f"{p}total_co2e_g_high"] = total_co2e.high
        remaining = _remaining_epochs(args, state, len(self.epoch_j))
        if remaining is not None:
            f = forecast(self.epoch_j, remaining)
            metrics.update(
                {
                    f"{p}forecast_kwh": kwh_from_j(f.point),
                    f"{p}forecast_kwh_low": kwh_from_j(f.low),
                    f"{p}forecast_kwh_high": kwh_from_j(f.high),
                }
            )
            if self._tracker is not None:
                self._tracker.event(
                    {"event": "forecast", "epoch": len(self.epoch_j) - 1, **f.to_dict("j")}
                )
        self.last_metrics = metrics
        self._pending = dict(metrics)
        control.should_log = True  # the Trainer logs at this step: on_log adds the figures
        state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})
        over = self.budget.check(
            total_kwh=metrics[f"{p}total_kwh"],
            forecast_kwh=metrics.get(f"{p}forecast_kwh"),
            total_kg=metrics.get(f"{p}total_co2e_g", 0.0) / G_PER_KG,
        )
        if over is not None:
            message = f"greentrack energy budget: {over}"
            if self.budget.on_budget == "stop":
                control.should_training_stop = True
                message += ": stopping after this epoch"
            if not self._warned_budget or self.budget.on_budget == "stop":
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                self._warned_budget = True
            if self._tracker is not None:
                self._tracker.event({"event": "budget", "message": message})


def _sum_over_ranks(joules: float) -> float:
    """Sum over the ranks of a torch.distributed job (a no-op in one process)."""
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        return joules
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return joules
    tensor = torch.tensor([joules], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return float(tensor.item())


def _remaining_epochs(args: Any, state: Any, done: int) -> float | None:
    """Epochs left, from ``num_train_epochs`` or ``max_steps`` (``None`` when unknown)."""
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
