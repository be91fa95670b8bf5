"""Lightning integration: :class:`EmissionsCallback`.

>>> import lightning as L  # doctest: +SKIP
>>> from greentrack.integrations.lightning import EmissionsCallback  # doctest: +SKIP
>>> from greentrack import CarbonSettings  # doctest: +SKIP
>>> carbon = CarbonSettings.resolve("DE", pue=1.1)  # doctest: +SKIP
>>> cb = EmissionsCallback("runs/bert", carbon=carbon)  # doctest: +SKIP
>>> trainer = L.Trainer(callbacks=[cb])  # doctest: +SKIP

Works with ``lightning`` (``lightning.pytorch``) or the standalone ``pytorch_lightning``,
whichever is installed (``lightning`` first).

Logged keys (to every logger the trainer has, rank zero, once per train epoch; ``prefix``
defaults to ``"energy/"``; energies summed over all ranks):

* ``{prefix}epoch_kwh``, ``{prefix}epoch_avg_power_w``, ``{prefix}total_kwh``: measured energy
  (only when a component is measured).
* ``{prefix}epoch_estimated_kwh``, ``{prefix}total_estimated_kwh``: estimated energy, only when
  a component is estimated (kept apart from measured energy).
* ``{prefix}epoch_co2e_g``, ``{prefix}total_co2e_g`` (and ``{prefix}total_co2e_g_low`` /
  ``_high``, the range): with ``carbon`` settings (measured plus estimated energy x PUE x
  intensity, by :class:`greentrack.account.LiveAccount`, the account's own rules).
* ``{prefix}forecast_kwh``, ``{prefix}forecast_kwh_low``, ``{prefix}forecast_kwh_high``
  (measured plus estimated energy; and ``{prefix}forecast_co2e_kg``): after
  ``forecast_after_epochs`` epochs, the full run's energy from ``max_epochs`` (or
  ``max_steps``), by :func:`greentrack.analysis.predict.forecast` (recent epochs without the
  warm-up one; the interval covers their spread and trend). Each forecast is also an event in
  the run directory, for comparison with the final figure.

Layout: rank 0 of the first segment writes ``run_dir``; every other rank, and every segment
after a resume from a checkpoint, writes ``run_dir/parts/seg<S>-rank<R>``.
``greentrack.load_run(run_dir).summary()`` adds them all up. CPU and DRAM belong to the node:
only local rank 0 measures them. Each rank measures only its own GPU.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import socket
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from greentrack.account import Figure, LiveAccount
from greentrack.analysis.budget import Budget
from greentrack.analysis.metrics import scalar_metrics
from greentrack.analysis.predict import forecast
from greentrack.api import Tracker, place
from greentrack.carbon.settings import CarbonSettings
from greentrack.launcher import RankInfo, detect
from greentrack.meters.base import Meter
from greentrack.rundir.format import META, PARTS, part_name, ranks_file
from greentrack.rundir.writer import write_json_atomic
from greentrack.tracker import Span, TrackerOptions, default_run_dir
from greentrack.units import G_PER_KG, j_from_kwh, kwh_from_j


def _import_lightning() -> Any:
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(
        "EmissionsCallback needs Lightning: pip install 'greentrack[lightning]' "
        "(or pytorch-lightning)"
    )


pl = _import_lightning()
MetersFactory = Callable[[Any], Sequence[Meter]]


class EmissionsCallback(pl.Callback):  # type: ignore[misc, name-defined]
    """Measure energy (and CO2e) of training, per phase and per epoch, on every rank.

    Args:
        run_dir: where to write (default ``runs/<UTC time>-<id>``).
        project, name: labels for reports.
        carbon: :class:`greentrack.CarbonSettings` (``CarbonSettings.resolve("DE", pue=1.1)``),
            checked when you build it, before training starts; ``None``: energy only.
        prefix: prefix of the logged keys.
        forecast_after_epochs: log a forecast of the whole run after this many train epochs
            (``0``: never).
        budget: a :class:`greentrack.Budget` (kWh and/or kgCO2e; ``on_budget="warn"`` once
            or ``"stop"``: ask the trainer to stop cleanly) for the forecast and the total.
        meters_factory: ``f(trainer) -> meters`` replacing discovery (tests pass fakes).
        options: :class:`greentrack.TrackerOptions` (sampling and discovery).
        intensity_provider, provider_region: charge the run's own hours with a provider's
            series (``"ukci"``...; see :class:`greentrack.api.Tracker`).

    Attributes (live, for your own code): ``last_metrics`` (the latest logged dict),
    ``total_kwh``, ``epoch_kwh``, ``run_dir``.
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        carbon: CarbonSettings | None = None,
        prefix: str = "energy/",
        forecast_after_epochs: int = 1,
        budget: Budget | None = None,
        meters_factory: MetersFactory | None = None,
        options: TrackerOptions | None = None,
        intensity_provider: str | None = None,
        provider_region: str | None = None,
    ) -> None:
        super().__init__()
        if carbon is not None and not isinstance(carbon, CarbonSettings):
            raise TypeError(
                "carbon takes greentrack.CarbonSettings, e.g. "
                f"CarbonSettings.resolve('DE', pue=1.1); got {carbon!r}"
            )
        self.carbon = carbon
        if forecast_after_epochs < 0:
            raise ValueError(f"forecast_after_epochs must be >= 0, got {forecast_after_epochs}")
        self.budget = budget or Budget()
        self._options = options or TrackerOptions()
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.project, self.name, self.prefix = project, name, prefix
        self.forecast_after_epochs = forecast_after_epochs
        self._meters_factory = meters_factory
        self.intensity_provider, self.provider_region = intensity_provider, provider_region
        # state that survives a resume (state_dict / load_state_dict)
        self.segment = 0
        self.run_id: str | None = None
        self._prior_j = [0.0, 0.0]  # measured, estimated energy of earlier segments (all ranks)
        self._epoch_j: list[float] = []  # per completed epoch, all ranks, measured + estimated
        # per-process state, created when a stage starts (never in __init__: DDP spawn pickles)
        self._tracker: Tracker | None = None
        self._live: LiveAccount | None = None
        self._spans: dict[str, Span] = {}
        self._segment_j = [0.0, 0.0]
        self._warned_budget = False
        self.last_metrics: dict[str, float] = {}
        self.total_kwh = 0.0
        self.epoch_kwh = math.nan

    # --- lifecycle ----------------------------------------------------------------------

    def _start(self, trainer: Any) -> None:
        if self._tracker is not None:
            return
        # every fit, validate, test and predict, every resume, gets its own segment: the first
        # one free from what the checkpoint restored, chosen by rank 0 for every rank
        self.segment = self._free_segment(trainer)
        job = detect()
        info = RankInfo(
            rank=trainer.global_rank,
            local_rank=trainer.local_rank,
            world_size=trainer.world_size,
            local_world_size=max(1, trainer.world_size // max(1, trainer.num_nodes)),
            launcher=f"lightning ({job.launcher})" if job.launcher != "none" else "lightning",
            job_id=job.job_id,
            node=socket.gethostname(),
        )
        options = self._options
        if self._meters_factory is not None:
            meters: Sequence[Meter] | None = list(self._meters_factory(trainer))
        else:
            meters = None
            device = trainer.strategy.root_device
            # the GPU this rank drives (Lightning knows it); the node's CPU and DRAM once
            options = dataclasses.replace(
                options,
                discovery=dataclasses.replace(
                    options.discovery,
                    gpu=device.type == "cuda",
                    gpu_indices=[device.index or 0] if device.type == "cuda" else None,
                ),
            )
        run_dir, options, extra = place(self.run_dir, options, info, self.segment)
        part = dict((extra or {}).get("part") or {})
        part.update(
            segment=self.segment,
            rank=info.rank,
            local_rank=info.local_rank,
            world_size=info.world_size,
            host=info.node,
            node_rank=getattr(trainer, "node_rank", 0),
            stage=_stage(trainer),
        )
        if run_dir is None:
            run_dir = self.run_dir
        self._tracker = Tracker(
            run_dir,
            project=self.project,
            name=self.name,
            meters=meters,
            options=options,
            carbon=self.carbon,
            extra_meta={"part": part, "framework": pl.__name__},
            # the root run fetches the series of the job's hours; parts share it
            intensity_provider=self.intensity_provider if Path(run_dir) == self.run_dir else None,
            provider_region=self.provider_region,
        )
        self._tracker.start()
        self._live = LiveAccount(self.carbon, self._tracker.channels)
        if self.run_id is None:
            self.run_id = self._tracker.run_id

    def _free_segment(self, trainer: Any) -> int:
        """The first segment from :attr:`segment` whose run directory does not exist yet
        (rank 0 looks, every rank gets its answer)."""
        segment = self.segment
        if trainer.is_global_zero:
            while (
                self.run_dir / META
                if segment == 0
                else self.run_dir / PARTS / part_name(segment, 0) / META
            ).exists():
                segment += 1
        if trainer.world_size > 1:
            segment = int(trainer.strategy.broadcast(segment, src=0))
        return segment

    def _stop(self, status: str) -> None:
        if self._tracker is None:
            return
        for key in list(self._spans)[::-1]:
            self._end(key, status="unclosed" if status == "finished" else "error")
        tracker, self._tracker = self._tracker, None
        tracker.stop(status)

    def _begin(self, key: str, name: str, parent: str | None = None, **tags: Any) -> None:
        if self._tracker is None:
            return
        parent_span = self._spans.get(parent) if parent else None
        self._spans[key] = self._tracker.begin_span(name, parent=parent_span, **tags)

    def _end(self, key: str, status: str = "ok") -> tuple[float, float, float] | None:
        """End a span; return (measured J, estimated J, seconds) of this rank."""
        span = self._spans.pop(key, None)
        if span is None or self._tracker is None:
            return None
        rec = self._tracker.end_span(span, status=status)
        assert self._live is not None
        measured, estimated = self._live.split_kwh(rec.energy_j)
        return j_from_kwh(measured.value), j_from_kwh(estimated.value), rec.duration_s

    # --- Lightning hooks ------------------------------------------------------------------

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        self._begin("fit", "fit", segment=self.segment)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._end("fit")
        self._gather_ranks(trainer)

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin("sanity", "sanity_check", parent="fit")

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self._end("sanity")

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._begin("epoch", "train_epoch", parent="fit", epoch=trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        result = self._end("epoch")
        if result is not None:
            self._log_epoch(trainer, pl_module, result)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._start(trainer)  # trainer.validate() without fit
        parent = "epoch" if "epoch" in self._spans else ("fit" if "fit" in self._spans else None)
        self._begin("validation", "validation", parent=parent, epoch=trainer.current_epoch)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._end("validation")

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        self._begin("test", "test")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._end("test")

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        self._begin("predict", "predict")

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._end("predict")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._stop(f"failed: {type(exception).__name__}")

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._stop("finished")

    def state_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "segments": self.segment + 1,
            "measured_j": self._prior_j[0] + self._segment_j[0],
            "estimated_j": self._prior_j[1] + self._segment_j[1],
            "epoch_j": list(self._epoch_j),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.segment = int(state_dict["segments"])
        self.run_id = state_dict.get("run_id")
        self._prior_j = [float(state_dict["measured_j"]), float(state_dict["estimated_j"])]
        self._epoch_j = [float(x) for x in state_dict.get("epoch_j", [])]
        if Path(state_dict.get("run_dir", self.run_dir)) != self.run_dir:
            warnings.warn(
                f"resuming into {self.run_dir}, but the checkpoint's run wrote to "
                f"{state_dict['run_dir']}: the report of either will not include the other",
                stacklevel=2,
            )

    # --- figures ----------------------------------------------------------------------------

    def _reduce(self, trainer: Any, pl_module: Any, values: list[float]) -> list[float]:
        """Sum over ranks through the strategy's collective (a no-op on one process)."""
        if trainer.world_size <= 1:
            return values
        import torch

        tensor = torch.tensor(values, dtype=torch.float64, device=pl_module.device)
        return [float(v) for v in trainer.strategy.reduce(tensor, reduce_op="sum")]

    def _log_epoch(self, trainer: Any, pl_module: Any, result: tuple[float, float, float]) -> None:
        measured, estimated = self._reduce(trainer, pl_module, [result[0], result[1]])
        seconds = result[2]
        self._segment_j[0] += measured
        self._segment_j[1] += estimated
        self._epoch_j.append(measured + estimated)
        total_m = self._prior_j[0] + self._segment_j[0]
        total_e = self._prior_j[1] + self._segment_j[1]
        p = self.prefix
        metrics: dict[str, float] = {}
        if self._has_source("measured"):
            metrics[f"{p}epoch_kwh"] = kwh_from_j(measured)
            metrics[f"{p}epoch_avg_power_w"] = measured / seconds if seconds > 0 else math.nan
            metrics[f"{p}total_kwh"] = kwh_from_j(total_m)
        if self._has_source("estimated"):
            metrics[f"{p}epoch_estimated_kwh"] = kwh_from_j(estimated)
            metrics[f"{p}total_estimated_kwh"] = kwh_from_j(total_e)
        epoch_co2e = self._co2e_g(measured + estimated)
        total_co2e = self._co2e_g(total_m + total_e)
        if epoch_co2e is not None and total_co2e is not None:
            metrics[f"{p}epoch_co2e_g"] = epoch_co2e.value
            metrics[f"{p}total_co2e_g"] = total_co2e.value
            metrics[f"{p}total_co2e_g_low"] = total_co2e.low
            metrics[f"{p}total_co2e_g_high"] = total_co2e.high
        metrics.update(self._forecast(trainer))
        self.epoch_kwh, self.total_kwh = kwh_from_j(measured), kwh_from_j(total_m)
        self.last_metrics = metrics
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            self._record_model_metrics(trainer)
        self._check_budget(trainer, metrics)

    def _co2e_g(self, joules: float) -> Figure | None:
        """CO2e of ``joules`` of this run's energy, by the account's rules (ranges included)."""
        if self._live is None:
            return None
        return self._live.co2e_g(Figure.exact(kwh_from_j(joules)))

    def _record_model_metrics(self, trainer: Any) -> None:
        """Store the model's own scalar metrics of this epoch (loss, accuracy...) as an event,
        so a report can put emissions next to them (emissions to reach a target metric)."""
        if self._tracker is None:
            return
        model_metrics = scalar_metrics(trainer.callback_metrics)
        if model_metrics:
            self._tracker.event(
                {"event": "metrics", "epoch": trainer.current_epoch, "metrics": model_metrics}
            )

    def _has_source(self, source: str) -> bool:
        return self._live is not None and self._live.has(source)

    def _forecast(self, trainer: Any) -> dict[str, float]:
        done = len(self._epoch_j)
        if not self.forecast_after_epochs or done < self.forecast_after_epochs:
            return {}
        remaining = remaining_epochs(trainer, done)
        if remaining is None:
            return {}
        # the epochs of earlier segments are in _epoch_j too
        f = forecast(self._epoch_j, remaining)
        p = self.prefix
        out = {
            f"{p}forecast_kwh": kwh_from_j(f.point),
            f"{p}forecast_kwh_low": kwh_from_j(f.low),
            f"{p}forecast_kwh_high": kwh_from_j(f.high),
        }
        co2e = self._co2e_g(f.point)
        if co2e is not None:
            out[f"{p}forecast_co2e_kg"] = co2e.value / G_PER_KG
        if self._tracker is not None:
            self._tracker.event(
                {
                    "event": "forecast",
                    "epoch": trainer.current_epoch,
                    **f.to_dict("j"),
                    "forecast_co2e_g": co2e.value if co2e else None,
                }
            )
        return out

    def _check_budget(self, trainer: Any, metrics: dict[str, float]) -> None:
        p = self.prefix
        over = self.budget.check(
            total_kwh=metrics.get(f"{p}total_kwh", 0.0)
            + metrics.get(f"{p}total_estimated_kwh", 0.0),
            forecast_kwh=metrics.get(f"{p}forecast_kwh"),
            total_kg=metrics.get(f"{p}total_co2e_g", 0.0) / G_PER_KG,
            forecast_kg=metrics.get(f"{p}forecast_co2e_kg"),
        )
        if over is None:
            return
        message = f"greentrack energy budget: {over}"
        if self.budget.on_budget == "stop":
            trainer.should_stop = True
            message += ": stopping after this epoch"
        if not self._warned_budget or self.budget.on_budget == "stop":
            if trainer.is_global_zero:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            self._warned_budget = True
        if self._tracker is not None:
            self._tracker.event({"event": "budget", "message": message})

    def _gather_ranks(self, trainer: Any) -> None:
        """Write ``ranks.json`` on rank 0: every rank's host and energy per channel."""
        if self._tracker is None:
            return
        record = {
            "rank": trainer.global_rank,
            "local_rank": trainer.local_rank,
            "host": socket.gethostname(),
            "run_dir": str(self._tracker.run_dir),
            "energy_j": self._tracker.energy_j(),
        }
        records = [record]
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
                gathered: list[Any] = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, record)
                records = gathered
        except ImportError:
            pass
        if trainer.is_global_zero:
            write_json_atomic(
                self.run_dir / ranks_file(self.segment),
                {"segment": self.segment, "ranks": records},
            )


def _stage(trainer: Any) -> str:
    """``fit``, ``validate``, ``test`` or ``predict`` (Lightning's ``TrainerFn`` value)."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return str(getattr(fn, "value", fn) or "")


def remaining_epochs(trainer: Any, done: int) -> float | None:
    """Epochs left from ``max_epochs``, or from ``max_steps`` with the steps per epoch seen so
    far; ``None`` when the run has no end."""
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs > 0:
        return float(max(0, max_epochs - trainer.current_epoch - 1))
    max_steps = trainer.max_steps
    if max_steps is not None and max_steps > 0 and trainer.global_step > 0 and done:
        steps_per_epoch = float(trainer.global_step) / float(trainer.current_epoch + 1)
        return max(0.0, float(max_steps - trainer.global_step) / steps_per_epoch)
    return None
