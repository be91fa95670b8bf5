"""The live run: the one object every integration adapts (Lightning, Transformers, Flower).

It holds what a framework's hooks need and no framework:

* **identity**, decided once from the launcher (:func:`greentrack.launcher.decide`): rank, local
  rank, world size and job id; a framework's own idea of its rank only where no launcher is in
  charge;
* **segments**: each stage (fit, validate, test, predict; train, evaluate) and each resume of one
  job writes a segment of one run directory; a new job into a used directory is refused;
* the **tracker** and its spans;
* the **live figures** (:class:`LiveFigures`): the run's IT energy so far and its CO2e, with
  their ranges, by the account's rules (:class:`greentrack.account.LiveAccount`), per unit of
  work (an epoch, a round), the forecast of the whole run and the budget.

Metric names, one set with one meaning in every integration (``prefix`` defaults to
``"energy/"``; documented in docs/metrics.md):

=================================  ==============================================================
``{prefix}total_kwh``              the run's IT energy so far, measured plus estimated, all ranks
                                   and segments (``_low``, ``_high``: its range)
``{prefix}total_measured_kwh``     the measured part of it; ``total_estimated_kwh`` the rest
``{prefix}total_co2e_g``           its CO2e (x PUE x intensity), ``_low``, ``_high``
``{prefix}epoch_kwh``              the last epoch's (or round's: ``round_kwh``) IT energy,
                                   ``_low``, ``_high``; ``epoch_co2e_g``; ``epoch_avg_power_w``
``{prefix}forecast_kwh``           the whole run's energy: the total so far plus the units to
                                   go at the recent units' energy (``_low``, ``_high``: their
                                   spread and trend, and the sources' accuracy), and
                                   ``forecast_co2e_g`` (``_low``, ``_high``); only while units
                                   remain
=================================  ==============================================================
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greentrack.account import Figure, LiveAccount
from greentrack.analysis.budget import Budget
from greentrack.analysis.predict import Forecast, forecast
from greentrack.api import Tracker, place
from greentrack.carbon.settings import CarbonSettings, carbon_arguments
from greentrack.errors import RunExistsError
from greentrack.launcher import RankInfo, agree_job_id, decide, process_group
from greentrack.meters.base import Meter
from greentrack.rundir.format import META, segment_dir
from greentrack.rundir.parts import job_of
from greentrack.rundir.reader import peek_meta
from greentrack.tracker import Span, SpanRecord, TrackerOptions, default_run_dir
from greentrack.units import j_from_kwh, kwh_from_j

Reduce = Callable[[list[float]], list[float]]
"""Sums a vector over the ranks of the job (identity in one process)."""
Broadcast = Callable[[Any], Any]
"""Rank 0's value, on every rank (identity in one process)."""


def _same(values: list[float]) -> list[float]:
    return values


def _pack(*figures: Figure) -> list[float]:
    return [x for f in figures for x in (f.value, f.low, f.high)]


def _unpack(values: Sequence[float]) -> list[Figure]:
    return [Figure(*values[i : i + 3]) for i in range(0, len(values), 3)]


@dataclass(frozen=True)
class Progress:
    """What the live run says after a unit of work or a stage.

    Attributes:
        metrics: the figures to log, by name (see the module docstring).
        over_budget: what passed the budget (``None`` within it).
        stop: whether the budget asks the framework to stop cleanly.
    """

    metrics: dict[str, float]
    over_budget: str | None = None
    stop: bool = False


@dataclass
class LiveFigures:
    """Names, forecasts and budgets: the live figures every integration logs, computed once.

    Args:
        carbon: the run's carbon settings (``None``: energy only).
        budget: the run's budget.
        prefix: prefix of every metric name.
        forecast_after: forecast the whole run once this many units are done (``0``: never).
    """

    carbon: CarbonSettings | None = None
    budget: Budget = field(default_factory=Budget)
    prefix: str = "energy/"
    forecast_after: int = 1
    warned: bool = False

    def __post_init__(self) -> None:
        if self.forecast_after < 0:
            raise ValueError(
                f"forecast_after_epochs must be >= 0 (0: never), got {self.forecast_after}"
            )
        self._charge = LiveAccount(self.carbon, [])

    def co2e_g(self, kwh: Figure) -> Figure | None:
        """CO2e of ``kwh`` (IT energy) by the account's rules, ranges included."""
        return self._charge.co2e_g(kwh)

    def progress(
        self,
        *,
        total: Figure,
        split: tuple[float, float] | None = None,
        unit: Figure | None = None,
        unit_name: str = "epoch",
        unit_seconds: float | None = None,
        units_j: Sequence[float] = (),
        remaining: float | None = None,
        leader: bool = True,
        event: Callable[[dict[str, Any]], None] | None = None,
        where: str = "",
        index: int | None = None,
    ) -> Progress:
        """The figures after a unit of work (``unit``, kWh) or a stage (``unit=None``).

        ``total`` is the run's IT energy so far (kWh, all ranks and segments), ``split`` its
        (measured, estimated) values where known; ``units_j`` every completed unit's energy
        (J) for the forecast, made while ``remaining`` units are left (never for a run that
        is over); ``index`` numbers the unit in the forecast's event (default: its position).
        The leader (rank 0)
        warns when the budget is passed; every rank gets the same ``stop``.
        """
        p = self.prefix
        metrics = _named(f"{p}total_kwh", total)
        if split is not None:
            metrics[f"{p}total_measured_kwh"], metrics[f"{p}total_estimated_kwh"] = split
        total_co2e = self.co2e_g(total)
        if total_co2e is not None:
            metrics.update(_named(f"{p}total_co2e_g", total_co2e))
        if unit is not None:
            metrics.update(_named(f"{p}{unit_name}_kwh", unit))
            unit_co2e = self.co2e_g(unit)
            if unit_co2e is not None:
                metrics[f"{p}{unit_name}_co2e_g"] = unit_co2e.value
            if unit_seconds:
                metrics[f"{p}{unit_name}_avg_power_w"] = j_from_kwh(unit.value) / unit_seconds
        forecast_kwh = forecast_co2e = None
        if (
            self.forecast_after
            and len(units_j) >= self.forecast_after
            and remaining is not None
            and remaining > 0
        ):
            f = forecast(list(units_j), remaining)
            forecast_kwh = _whole_run(total, f)
            metrics.update(_named(f"{p}forecast_kwh", forecast_kwh))
            forecast_co2e = self.co2e_g(forecast_kwh)
            if forecast_co2e is not None:
                metrics.update(_named(f"{p}forecast_co2e_g", forecast_co2e))
            if event is not None:
                event(
                    {
                        "event": "forecast",
                        unit_name: len(units_j) - 1 if index is None else index,
                        "units_done": f.units_done,
                        "units_remaining": f.units_remaining,
                        "done_j": j_from_kwh(total.value),
                        "forecast_j": j_from_kwh(forecast_kwh.value),
                        "forecast_j_low": j_from_kwh(forecast_kwh.low),
                        "forecast_j_high": j_from_kwh(forecast_kwh.high),
                        "forecast_co2e_g": forecast_co2e.value if forecast_co2e else None,
                    }
                )
        return self._budget(
            total,
            total_co2e,
            forecast_kwh,
            forecast_co2e,
            metrics,
            leader,
            event,
            where,
            unit_name if unit is not None else "stage",
        )

    def _budget(
        self,
        total: Figure,
        total_co2e: Figure | None,
        forecast_kwh: Figure | None,
        forecast_co2e: Figure | None,
        metrics: dict[str, float],
        leader: bool,
        event: Callable[[dict[str, Any]], None] | None,
        where: str,
        unit_name: str,
    ) -> Progress:
        over = self.budget.check(
            total_kwh=total.value,
            forecast_kwh=forecast_kwh.value if forecast_kwh else None,
            total_kg=total_co2e.value / 1000.0 if total_co2e else 0.0,
            forecast_kg=forecast_co2e.value / 1000.0 if forecast_co2e else None,
        )
        if over is None:
            return Progress(metrics)
        stop = self.budget.on_budget == "stop"
        message = f"greentrack energy budget{where}: {over}"
        if stop:
            message += f": stopping after this {unit_name}"
        if leader and (not self.warned or stop):
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        self.warned = True
        if event is not None:
            event({"event": "budget", "message": message})
        return Progress(metrics, over, stop)


def with_prometheus(options: TrackerOptions | None, port: int | None) -> TrackerOptions:
    """``options`` (default: the defaults) serving live metrics on ``port`` when one is given:
    the integrations' ``prometheus_port`` argument."""
    options = options or TrackerOptions()
    return options if port is None else options.with_options({"prometheus_port": port})


def _whole_run(total: Figure, f: Forecast) -> Figure:
    """The whole run's energy (kWh): what it used so far (``total``, with its range) plus the
    units to go as :func:`greentrack.analysis.predict.forecast` sees them from the units done
    (its interval: their spread and trend), widened by the accuracy of the sources that
    measured the units so far (the same relative bounds as ``total``'s). Never below
    ``total``."""
    lo = total.low / total.value if total.value > 0 else 1.0
    hi = total.high / total.value if total.value > 0 else 1.0
    rest = [max(0.0, kwh_from_j(x - f.done)) for x in (f.point, f.low, f.high)]
    return total + Figure(rest[0], min(rest[1] * lo, rest[0]), max(rest[2] * hi, rest[0]))


def _named(name: str, figure: Figure) -> dict[str, float]:
    return {name: figure.value, f"{name}_low": figure.low, f"{name}_high": figure.high}


class LiveRun:
    """One tracked run, live: what an integration's hooks drive (see the module docstring).

    Args:
        run_dir: the run directory (default ``runs/<UTC time>-<id>``; the same on every rank).
        project, name: labels for reports.
        region, pue, intensity, intensity_source, carbon: the carbon arguments of every entry
            point (:func:`greentrack.carbon.settings.carbon_arguments`).
        intensity_provider, provider_region: charge the run's own hours from a provider.
        budget, prefix, forecast_after: see :class:`LiveFigures`.
        options: :class:`greentrack.TrackerOptions`.
        prometheus_port: serve each segment's live metrics on this port (rank R of a job:
            ``prometheus_port`` + its local rank), bound to 127.0.0.1 unless
            ``options`` names another ``prometheus_address`` (docs/prometheus.md); the same as
            ``options.prometheus.port``.
        resume: continue the run already in ``run_dir`` (otherwise a new job into a used
            directory is refused; a checkpoint's run id, restored with :meth:`restore`, also
            resumes).
        framework: what drives it (``lightning``, ``transformers``...), recorded in meta.json.
        clock: a manual clock (tests): the tracker then samples when the caller ticks it.
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
        forecast_after: int = 1,
        options: TrackerOptions | None = None,
        prometheus_port: int | None = None,
        resume: bool = False,
        framework: str = "",
        clock: Any = None,
    ) -> None:
        self.carbon = carbon_arguments(
            region=region,
            pue=pue,
            intensity=intensity,
            intensity_source=intensity_source,
            carbon=carbon,
        )
        if intensity_provider is not None:
            from greentrack.carbon.providers import check_provider_id

            check_provider_id(intensity_provider)
        self.figures = LiveFigures(self.carbon, budget or Budget(), prefix, forecast_after)
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.project, self.name, self.framework = project, name, framework
        self.options = with_prometheus(options, prometheus_port)
        self.intensity_provider, self.provider_region = intensity_provider, provider_region
        self.resume = resume
        self._clock = clock
        # the job's state (kept across stages; a checkpoint carries it across processes)
        self.run_id: str | None = None  # the root's run id: which run this job writes
        self.segment = -1  # the last segment opened (-1: none yet)
        self.units_j: list[float] = []  # each completed unit's energy, all ranks, J
        # this process's state
        self.info: RankInfo | None = None
        self.tracker: Tracker | None = None
        self.stage = ""
        self._pid = os.getpid()
        self._live: LiveAccount | None = None
        self._spans: dict[str, Span] = {}
        self._prior = (Figure.exact(0.0), Figure.exact(0.0))  # earlier segments, kWh
        self.last = Progress({})
        self.reading: dict[str, float] = {}  # this rank's J per channel behind ``last``
        self._shares: dict[str, int] | None = None  # this segment's shared GPUs
        self._model_recorded = False  # the model's parameter count is in the run directory

    # --- identity and segments ---------------------------------------------------------------

    def identity(self, framework: RankInfo | None = None) -> RankInfo:
        """This process's place in the job, decided once (per process) from the launcher."""
        if self.info is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self.info = agree_job_id(decide(framework))
        return self.info

    @property
    def running(self) -> bool:
        return self.tracker is not None and self.tracker.running

    def open(
        self,
        stage: str,
        *,
        framework: RankInfo | None = None,
        broadcast: Broadcast | None = None,
        meters: Sequence[Meter] | None = None,
        options: TrackerOptions | None = None,
        part: Mapping[str, Any] | None = None,
    ) -> None:
        """Start the segment of ``stage`` on this rank (a no-op while one is open).

        Rank 0 decides the segment (and, at a resume, the energy of the earlier segments) and
        ``broadcast`` tells the other ranks; a new job into a directory that holds another
        run raises :class:`RunExistsError` on every rank, before anything is written.
        """
        if self.tracker is not None:
            return
        info = self.identity(framework)
        mine = self._decide(info) if (info.rank == 0 or broadcast is None) else None
        if broadcast is not None and info.distributed:
            mine = broadcast(mine)
        if mine is None:
            mine = self._decide(info)
        if isinstance(mine, str):
            raise RunExistsError(mine)
        segment, run_id, prior = mine
        self.segment, self.stage = segment, stage
        if run_id:
            self.run_id = run_id
        self._prior = (Figure(*prior[0:3]), Figure(*prior[3:6]))
        self._shares = None  # counted again at this segment's first figures
        run_dir, tracker_options, extra = place(
            self.run_dir, options or self.options, info, segment
        )
        meta: dict[str, Any] = dict(extra or {})
        block = {
            **info.part(segment),
            **dict(meta.get("part") or {}),
            **dict(part or {}),
            "stage": stage,
        }
        meta["part"] = block
        if self.framework:
            meta["framework"] = self.framework
        root = run_dir is None or Path(run_dir) == self.run_dir
        self.tracker = Tracker(
            run_dir if run_dir is not None else self.run_dir,
            project=self.project,
            name=self.name,
            meters=meters,
            options=tracker_options,
            carbon=self.carbon,
            extra_meta=meta,
            # the root run fetches the series of the job's hours; parts share it
            intensity_provider=self.intensity_provider if root else None,
            provider_region=self.provider_region,
            clock=self._clock,
            background=self._clock is None,
        )
        self.tracker.start()
        if root and segment == 0:
            self.run_id = self.tracker.run_id
        self._live = LiveAccount(self.carbon, self.tracker.channels)

    def _decide(self, info: RankInfo) -> tuple[int, str | None, list[float]] | str:
        """(segment, the root's run id, the earlier segments' energy) for this rank, or why
        the directory is refused."""
        first = self.segment < 0
        segment = max(self.segment + 1, info.restart)
        root_meta = peek_meta(self.run_dir / META)
        run_id = root_meta.get("run_id") if root_meta else None
        theirs = run_id if isinstance(run_id, str) and run_id else None
        if first and root_meta is not None and not self._same_job(info, root_meta):
            held = f"run {theirs}" if theirs else f"a run whose {META} cannot be read"
            return (
                f"{self.run_dir} already holds {held}, not this job's: pass a new run "
                "directory, or resume=True to add this training to that run (a checkpoint of "
                "that run resumes it by itself)"
            )
        if first and root_meta is not None and theirs is None and info.rank == 0:
            warnings.warn(
                f"resuming into {self.run_dir}, whose {META} cannot be read: this segment is "
                "written to its parts/, but reports of the directory need its first segment "
                "(greentrack summary names what is damaged)",
                RuntimeWarning,
                stacklevel=4,
            )
        while segment_dir(self.run_dir, segment, info.rank).joinpath(META).exists():
            segment += 1
        prior = [0.0] * 6
        if segment > 0 and info.rank == 0 and root_meta is not None:
            prior = _pack(*_energy_so_far(self.run_dir))
        return segment, theirs, prior

    def _same_job(self, info: RankInfo, root_meta: Mapping[str, Any]) -> bool:
        if self.resume or (self.run_id is not None and self.run_id == root_meta.get("run_id")):
            return True
        job = job_of(root_meta).job_id
        # the same launcher job: another rank, or an elastic restart (torchrun, SLURM requeue)
        return job is not None and job == info.job_id

    def close(self, status: str = "finished") -> None:
        """End this rank's segment (open spans end ``unclosed``). Idempotent."""
        tracker, self.tracker = self.tracker, None
        if tracker is None:
            return
        for key in list(self._spans)[::-1]:
            span = self._spans.pop(key)
            if span.record is None and tracker.running:
                tracker.end_span(span, status="unclosed" if status == "finished" else "error")
        tracker.stop(status)

    # --- spans --------------------------------------------------------------------------------

    def begin(self, key: str, name: str, parent: str | None = None, **tags: Any) -> None:
        """Open span ``name`` under the open span ``parent`` (by key); a no-op when closed or
        when ``key`` is open already."""
        if self.tracker is None or key in self._spans:
            return
        self._spans[key] = self.tracker.begin_span(
            name, parent=self._spans.get(parent) if parent else None, **tags
        )

    def has(self, key: str) -> bool:
        return key in self._spans

    def end(self, key: str, status: str = "ok") -> SpanRecord | None:
        span = self._spans.pop(key, None)
        if span is None or self.tracker is None:
            return None
        return self.tracker.end_span(span, status=status)

    def event(self, record: dict[str, Any]) -> None:
        if self.tracker is not None:
            self.tracker.event(record)

    def record_model(self, module: Any) -> None:
        """Record ``module``'s parameter count (all, and trainable) as a ``model`` event, once
        per process, on rank 0 only: the report states it in its brief sentence. Optional
        metadata: a count that cannot be trusted (:func:`parameter_counts`) or any error is
        skipped silently, never failing the training."""
        if self._model_recorded or self.tracker is None:
            return
        try:
            if self.identity().rank != 0:
                return
            counts = parameter_counts(module)
            if counts is None:
                return
            self.event(
                {
                    "event": "model",
                    "parameters": counts[0],
                    "trainable_parameters": counts[1],
                    "framework": self.framework,
                }
            )
            self._model_recorded = True
        except Exception:  # optional metadata: never fail the training over it
            return

    # --- figures ------------------------------------------------------------------------------

    def step(
        self,
        unit: SpanRecord | None,
        *,
        unit_name: str = "epoch",
        remaining: float | None = None,
        reduce: Reduce | None = None,
        leader: bool = True,
        where: str = "",
        index: int | None = None,
    ) -> Progress:
        """The live figures after a unit of work (its span record) or at a stage's end
        (``unit=None``): this segment's energy so far on every rank (``reduce`` sums them),
        plus the earlier segments'. A completed unit joins the forecast's history.

        After a unit, "so far" is the reading its span ended on (``unit.end_total_j``), not a
        fresh one a few milliseconds later: the account's energy curve passes through that
        very reading, so the total logged at an epoch's end is the account's cumulative
        energy at that epoch's end, exactly."""
        if self.tracker is None or self._live is None:
            return self.last
        if self._shares is None:
            self._shares = self._shared_devices(reduce)
        at_end = dict(unit.end_total_j) if unit is not None else {}
        self.reading = at_end or self.tracker.energy_j()
        m_now, e_now = self._live.split_kwh(self._own(self.reading))
        figures = [m_now, e_now]
        if unit is not None:
            figures += list(self._live.split_kwh(self._own(unit.energy_j)))
        values = (reduce or _same)(_pack(*figures))
        m_now, e_now, *rest = _unpack(values)
        measured, estimated = self._prior[0] + m_now, self._prior[1] + e_now
        unit_kwh = None
        if unit is not None:
            unit_kwh = rest[0] + rest[1]
            self.units_j.append(j_from_kwh(unit_kwh.value))
        self.last = self.figures.progress(
            total=measured + estimated,
            split=(measured.value, estimated.value),
            unit=unit_kwh,
            unit_name=unit_name,
            unit_seconds=unit.duration_s if unit is not None else None,
            units_j=self.units_j,
            remaining=remaining if unit is not None else None,
            leader=leader,
            event=self.event if leader else None,
            where=where,
            index=index,
        )
        return self.last

    def _shared_devices(self, reduce: Reduce | None) -> dict[str, int]:
        """How many ranks of this segment measure each of this rank's GPUs (same UUID, same
        host), as the account splits them (:func:`greentrack.account.accuracy.device_shares`):
        the ranks tell each other their devices once per segment, through the process group
        of a job that has one (every rank computes its figures at the same moment, so this
        collective is aligned). ``{channel id: ranks}`` for the shared ones."""
        if reduce is None or self.tracker is None:
            return {}
        dist = process_group()
        if dist is None:
            return {}
        try:
            host = self.info.node if self.info is not None else ""
            mine = {
                c.id: (host, str(c.details.get("uuid")))
                for c in self.tracker.channels
                if c.component == "gpu" and c.details.get("uuid")
            }
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, sorted(set(mine.values())))
        except Exception:  # never fail the training over a count: no split, as before
            return {}
        seen = Counter(d for devices in everyone for d in (devices or ()) if isinstance(d, tuple))
        return {cid: seen[device] for cid, device in mine.items() if seen[device] > 1}

    def _own(self, energy_j: Mapping[str, float]) -> dict[str, float]:
        """``energy_j`` with each shared GPU's reading split equally among the ranks that
        measure it (the account's rule: the device is counted once)."""
        shares = self._shares or {}
        return {cid: j / shares.get(cid, 1) for cid, j in energy_j.items()}

    # --- state across processes (checkpoints) ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the run it belongs to and the units done."""
        return {
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "segments": self.segment + 1,
            "units_j": list(self.units_j),
        }

    def restore(self, state: Any) -> None:
        """Continue the run of a checkpoint's :meth:`state` (its run id makes the next
        :meth:`open` a resume of that run, not a new job). A damaged state is set aside with a
        warning: training goes on as a new run."""
        if not isinstance(state, Mapping):
            warnings.warn(
                f"greentrack: the checkpoint's callback state is {type(state).__name__}, not a "
                "mapping: it is ignored (this training is a new run)",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        run_id, segments = state.get("run_id"), state.get("segments", 0)
        units = state.get("units_j", state.get("epoch_j", []))
        if not (
            (run_id is None or isinstance(run_id, str))
            and isinstance(segments, int)
            and not isinstance(segments, bool)
            and 0 <= segments < 1 << 20
            and isinstance(units, list)
            and all(isinstance(x, int | float) and math.isfinite(x) and x >= 0 for x in units)
        ):
            warnings.warn(
                "greentrack: the checkpoint's callback state is damaged (run_id, segments, "
                "units_j): it is ignored (this training is a new run)",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self.run_id = run_id or None
        self.segment = max(self.segment, segments - 1)
        self.units_j = [float(x) for x in units]
        saved = state.get("run_dir")
        if saved is not None and Path(str(saved)) != self.run_dir:
            warnings.warn(
                f"resuming into {self.run_dir}, but the checkpoint's run wrote to {saved}: the "
                "report of either will not include the other",
                stacklevel=3,
            )


def parameter_counts(module: Any) -> tuple[int, int] | None:
    """``(parameters, trainable parameters)`` of a ``torch.nn.Module`` (each parameter once,
    tied weights too: ``module.parameters()``), or ``None`` where this process cannot see the
    whole model: a lazy parameter not yet shaped, or FSDP's shards (FSDP1; a DeepSpeed
    ZeRO-3 parameter counts its full size, ``ds_numel``; an FSDP2 ``DTensor`` its global
    one)."""
    if any(type(m).__name__ == "FullyShardedDataParallel" for m in module.modules()):
        return None
    total = trainable = 0
    for p in module.parameters():
        kind = type(p).__name__
        if kind in ("UninitializedParameter", "FlatParameter"):
            return None
        n = int(getattr(p, "ds_numel", None) or p.numel())
        total += n
        if p.requires_grad:
            trainable += n
    return total, trainable


def _energy_so_far(root: Path) -> tuple[Figure, Figure]:
    """The measured and estimated IT energy (kWh) the account gives the run directory's
    earlier segments: a resumed segment's live total starts from them. What cannot be read
    (the whole directory, or a part of it: its energy is then not in the total) is said in
    one warning naming it; training goes on."""
    from greentrack.account import account_run
    from greentrack.rundir.format import PARTS
    from greentrack.rundir.reader import load_run

    try:
        run = load_run(root)
        account = account_run(run)
    except Exception as e:  # a damaged earlier segment: the live total starts from this one
        warnings.warn(
            f"greentrack: the earlier segments in {root} cannot be read ({e}): this segment's "
            "live total starts from 0 (greentrack summary names what is damaged)",
            RuntimeWarning,
            stacklevel=5,
        )
        return Figure.exact(0.0), Figure.exact(0.0)
    lost = [d for d in run.damage if d.startswith(f"{PARTS}/") and "energy not counted" in d]
    if lost:
        names = ", ".join(d.split(" ", 1)[0] for d in lost)
        warnings.warn(
            f"greentrack: {root}: {names} cannot be read, so the live total leaves out their "
            f"energy ({lost[0]})",
            RuntimeWarning,
            stacklevel=5,
        )
    measured, estimated = account.measured_kwh, account.estimated_kwh
    share = account.it_kwh
    whole = measured + estimated
    if whole <= 0:
        return Figure.exact(0.0), Figure.exact(0.0)
    # the account's range, split in proportion to the two parts
    return share.scaled(measured / whole), share.scaled(estimated / whole)
