"""Lightning integration: :class:`EmissionsCallback`, an adapter over
:class:`greentrack.live.LiveRun`.

>>> import lightning as L  # doctest: +SKIP
>>> from greentrack.integrations.lightning import EmissionsCallback  # doctest: +SKIP
>>> cb = EmissionsCallback("runs/bert", region="DE", pue=1.1)  # doctest: +SKIP
>>> trainer = L.Trainer(callbacks=[cb])  # doctest: +SKIP

Works with ``lightning`` (``lightning.pytorch``) or the standalone ``pytorch_lightning``,
whichever is installed (``lightning`` first).

Logged (to every logger the trainer has, by rank zero, after each train epoch and at the end of
each stage; energies summed over all ranks): the live run's metrics, one set of names for every
integration (``energy/total_kwh`` with ``_low``/``_high``, ``energy/total_co2e_g``...; see
:mod:`greentrack.live` and docs/metrics.md). Each forecast is also an event in the run directory.
At the start of fit, rank zero records the model's parameter count (a ``model`` event), which
the report's brief sentence states.

Layout: every stage (fit, validate, test, predict) and every resume from a checkpoint is a
segment of one run directory; rank 0 of the first writes ``run_dir``, every other rank and
segment ``run_dir/parts/seg<S>-rank<R>``. A new training into a directory that holds another
run is refused (``resume=True``, or the callback's state in a checkpoint, continues it).
Identity (rank, job) comes from the launcher; Lightning's own only where it launched the
processes itself. CPU and DRAM belong to the node: only local rank 0 measures them.
"""

from __future__ import annotations

import dataclasses
import math
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from greentrack.analysis.budget import Budget
from greentrack.analysis.metrics import scalar_metrics
from greentrack.carbon.settings import CarbonSettings
from greentrack.integrations import require
from greentrack.launcher import RankInfo
from greentrack.live import LiveRun, Progress
from greentrack.meters.base import Meter
from greentrack.rundir.format import ranks_file
from greentrack.rundir.writer import write_json_atomic
from greentrack.tracker import TrackerOptions

pl: Any = require("lightning.pytorch", "pytorch_lightning", feature="EmissionsCallback")
MetersFactory = Callable[[Any], Sequence[Meter]]


class EmissionsCallback(pl.Callback):  # type: ignore[misc]
    """Measure energy (and CO2e) of training, per stage and per epoch, on every rank.

    Args:
        run_dir: where to write (default ``runs/<UTC time>-<id>``).
        project, name: labels for reports.
        region, pue, intensity, intensity_source, carbon: the carbon arguments of every entry
            point (``region="DE", pue=1.1``, or ``carbon=CarbonSettings...``), checked here,
            before training starts; none: energy only.
        intensity_provider, provider_region: charge the run's own hours with a provider's
            series (``"ukci"``...).
        prefix: prefix of the logged keys.
        forecast_after_epochs: log a forecast of the whole run after this many train epochs
            (``0``: never).
        budget: a :class:`greentrack.Budget` (``on_budget="stop"`` asks the trainer to stop).
        resume: add this training to the run already in ``run_dir``.
        meters_factory: ``f(trainer) -> meters`` replacing discovery (tests pass fakes).
        options: :class:`greentrack.TrackerOptions` (sampling and discovery).
        prometheus_port: serve live metrics on ``http://127.0.0.1:PORT/metrics`` while each
            stage runs (rank R: ``PORT`` + local rank; needs ``greentrack[prometheus]``;
            docs/prometheus.md). Another address or a textfile: ``options``.

    Attributes (live, for your own code): ``last_metrics`` (the latest figures), ``total_kwh``,
    ``epoch_kwh``, ``run_dir``, ``live`` (the :class:`greentrack.live.LiveRun`).
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
        carbon: CarbonSettings | None = None,
        intensity_provider: str | None = None,
        provider_region: str | None = None,
        prefix: str = "energy/",
        forecast_after_epochs: int = 1,
        budget: Budget | None = None,
        resume: bool = False,
        meters_factory: MetersFactory | None = None,
        options: TrackerOptions | None = None,
        prometheus_port: int | None = None,
    ) -> None:
        super().__init__()
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
            framework=pl.__name__,
        )
        self._meters_factory = meters_factory

    @property
    def run_dir(self) -> Path:
        return self.live.run_dir

    @property
    def carbon(self) -> CarbonSettings | None:
        return self.live.carbon

    @property
    def segment(self) -> int:
        """The segment of the run directory this process writes (or wrote last)."""
        return self.live.segment

    @property
    def last_metrics(self) -> dict[str, float]:
        return self.live.last.metrics

    @property
    def total_kwh(self) -> float:
        return self.last_metrics.get(f"{self.live.figures.prefix}total_kwh", 0.0)

    @property
    def epoch_kwh(self) -> float:
        return self.last_metrics.get(f"{self.live.figures.prefix}epoch_kwh", math.nan)

    # --- lifecycle ----------------------------------------------------------------------

    def _start(self, trainer: Any) -> None:
        if self.live.tracker is not None:
            return
        framework = RankInfo(
            rank=trainer.global_rank,
            local_rank=trainer.local_rank,
            world_size=trainer.world_size,
            local_world_size=max(1, trainer.world_size // max(1, trainer.num_nodes)),
            launcher="lightning",
            node=socket.gethostname(),
        )
        options = self.live.options
        meters: Sequence[Meter] | None = None
        if self._meters_factory is not None:
            meters = list(self._meters_factory(trainer))
        else:
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
        broadcast = None
        if trainer.world_size > 1:

            def broadcast(value: Any) -> Any:
                return trainer.strategy.broadcast(value, src=0)

        self.live.open(
            _stage(trainer),
            framework=framework,
            broadcast=broadcast,
            meters=meters,
            options=options,
            part={"node_rank": getattr(trainer, "node_rank", 0)},
        )

    def _stage_end(self, trainer: Any, pl_module: Any) -> None:
        """The figures of the run at the end of a stage, logged by rank zero."""
        self._log(trainer, self.live.step(None, reduce=self._reducer(trainer, pl_module)))

    # --- Lightning hooks ------------------------------------------------------------------

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        self.live.begin("fit", "fit", segment=self.live.segment)
        if trainer.is_global_zero:  # the model trained, for the report's brief sentence
            self.live.record_model(pl_module)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.live.end("fit")
        self._stage_end(trainer, pl_module)
        self._gather_ranks(trainer)

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self.live.begin("sanity", "sanity_check", parent="fit")

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self.live.end("sanity")

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.live.begin("epoch", "train_epoch", parent="fit", epoch=trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        record = self.live.end("epoch")
        if record is None:
            return
        progress = self.live.step(
            record,
            remaining=remaining_epochs(trainer, len(self.live.units_j) + 1),
            reduce=self._reducer(trainer, pl_module),
            leader=trainer.is_global_zero,
            where=f" after epoch {trainer.current_epoch}",
            index=trainer.current_epoch,
        )
        self._log(trainer, progress)
        if trainer.is_global_zero:
            self._record_model_metrics(trainer)
        if progress.stop:
            trainer.should_stop = True

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._start(trainer)  # trainer.validate() without fit
        live = self.live
        parent = "epoch" if live.has("epoch") else ("fit" if live.has("fit") else None)
        live.begin("validation", "validation", parent=parent, epoch=trainer.current_epoch)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self.live.end("validation")
        if not self.live.has("fit"):
            self._stage_end(trainer, pl_module)

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        self.live.begin("test", "test")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self.live.end("test")
        self._stage_end(trainer, pl_module)

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._start(trainer)
        self.live.begin("predict", "predict")

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self.live.end("predict")
        self._stage_end(trainer, pl_module)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.live.close(f"failed: {type(exception).__name__}")

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.live.close("finished")

    def state_dict(self) -> dict[str, Any]:
        return self.live.state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.live.restore(state_dict)

    # --- figures ----------------------------------------------------------------------------

    def _reducer(self, trainer: Any, pl_module: Any) -> Callable[[list[float]], list[float]]:
        """Sum over ranks through the strategy's collective (a no-op on one process)."""

        def reduce(values: list[float]) -> list[float]:
            if trainer.world_size <= 1:
                return values
            import torch

            tensor = torch.tensor(values, dtype=torch.float64, device=pl_module.device)
            return [float(v) for v in trainer.strategy.reduce(tensor, reduce_op="sum")]

        return reduce

    def _log(self, trainer: Any, progress: Progress) -> None:
        if trainer.is_global_zero and progress.metrics:
            for logger in trainer.loggers:
                logger.log_metrics(progress.metrics, step=trainer.global_step)

    def _record_model_metrics(self, trainer: Any) -> None:
        """Store the model's own scalar metrics of this epoch (loss, accuracy...) as an event,
        so a report can put emissions next to them (emissions to reach a target metric)."""
        model_metrics = scalar_metrics(trainer.callback_metrics)
        if model_metrics:
            self.live.event(
                {"event": "metrics", "epoch": trainer.current_epoch, "metrics": model_metrics}
            )

    def _gather_ranks(self, trainer: Any) -> None:
        """Write ``ranks.json`` on rank 0: every rank's host and energy per channel."""
        tracker = self.live.tracker
        if tracker is None:
            return
        record = {
            "rank": trainer.global_rank,
            "local_rank": trainer.local_rank,
            "host": socket.gethostname(),
            "run_dir": str(tracker.run_dir),
            "energy_j": tracker.energy_j(),
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
                self.run_dir / ranks_file(self.live.segment),
                {"segment": self.live.segment, "ranks": records},
            )


def _stage(trainer: Any) -> str:
    """``fit``, ``validate``, ``test`` or ``predict`` (Lightning's ``TrainerFn`` value)."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return str(getattr(fn, "value", fn) or "")


def remaining_epochs(trainer: Any, done: int) -> float | None:
    """Epochs left after the current one, from ``max_epochs``, or from ``max_steps`` with the
    steps per epoch seen so far (``done``: epochs completed, this one included); ``None`` when
    the run has no end."""
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs > 0:
        return float(max(0, max_epochs - trainer.current_epoch - 1))
    max_steps = trainer.max_steps
    if max_steps is not None and max_steps > 0 and trainer.global_step > 0 and done:
        steps_per_epoch = float(trainer.global_step) / float(trainer.current_epoch + 1)
        return max(0.0, float(max_steps - trainer.global_step) / steps_per_epoch)
    return None
