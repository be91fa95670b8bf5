"""The public entry points: :func:`track`, :class:`Tracker` with its summary, :func:`summarize`.

The measurement core (:mod:`greentrack.tracker`) knows no carbon and no account; this module
sits on top of both, so that ``print(run.summary())`` shows the same figures every other view
of the run shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack import tracker as _core
from greentrack.carbon.settings import CarbonSettings, carbon_arguments
from greentrack.launcher import RankInfo, agree_job_id, detect
from greentrack.tracker import SyncMode, TrackerOptions

if TYPE_CHECKING:
    from greentrack.account import AccountOptions, RunAccount
    from greentrack.meters.base import Meter
    from greentrack.prometheus import PrometheusExporter
    from greentrack.rundir.reader import Run
    from greentrack.views.summary import Summary


PROVIDER_WAIT_S = 10.0
"""How long stopping waits for the intensity provider at most (the fetch runs on its own
thread with timeouts; a later report fetches what this one could not)."""


class Tracker(_core.Tracker):
    """The measurement core (:class:`greentrack.tracker.Tracker`) plus the run's figures:
    :meth:`summary` and :meth:`account` read the account of the run so far.

    Args (beyond the core's):
        intensity_provider: a grid-intensity provider id (``ukci``, ``electricitymaps``,
            ``watttime``): at the end of the run the series of its hours is fetched (off the
            training thread, with timeouts) and stored in the run directory, so that every
            report charges the run's own hours, offline. On any provider error the run is
            charged at the bundled annual figure, and the report says so.
        provider_region: the provider's name for the grid (default: the carbon settings'
            region, e.g. ``GB`` for ``ukci``).
    """

    def __init__(
        self,
        *args: Any,
        intensity_provider: str | None = None,
        provider_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        if intensity_provider is not None:
            from greentrack.carbon.providers import check_provider_id

            check_provider_id(intensity_provider)
            carbon = kwargs.get("carbon")
            region = provider_region or (carbon.intensity.region if carbon else None)
            if not region or region == "explicit":
                raise ValueError(
                    f"intensity_provider={intensity_provider!r} needs a region to ask for "
                    "(region='GB' or provider_region=...)"
                )
            extra = dict(kwargs.pop("extra_meta", None) or {})
            extra["intensity_provider"] = {"id": intensity_provider, "region": region}
            kwargs["extra_meta"] = extra
        super().__init__(*args, **kwargs)
        self.intensity_provider = intensity_provider
        self.prometheus: PrometheusExporter | None = None  # live metrics (options.prometheus)

    def start(self) -> Tracker:
        super().start()
        if self.options.prometheus.enabled:
            from greentrack.prometheus import publish

            self.prometheus = publish(self)
        return self

    def stop(self, status: str = "finished") -> None:
        running = self.running
        super().stop(status)
        if running and self.prometheus is not None:
            self.prometheus.finish(self.energy_j())  # the final totals, as the account's
        if running and self.intensity_provider is not None and self.summary_written:
            self._fetch_intensity()

    def _fetch_intensity(self) -> None:
        """Fetch and store the series of the run's hours, waiting at most
        :data:`PROVIDER_WAIT_S`; never raises (a later report tries again)."""
        import threading

        from greentrack.rundir.reader import load_run

        def fetch() -> None:
            from greentrack.carbon.providers.cache import series_of_run

            # a failure leaves no series: the report fetches again and says what failed
            with contextlib.suppress(Exception):
                series_of_run(load_run(self.run_dir))

        thread = threading.Thread(target=fetch, name="greentrack-intensity", daemon=True)
        thread.start()
        thread.join(PROVIDER_WAIT_S)

    def account(self) -> RunAccount:
        """The account of the run so far (a fresh reading while running)."""
        from greentrack.account import account_run
        from greentrack.rundir.reader import load_run

        if self._state == "new":
            raise RuntimeError("the tracker has not started: use `with greentrack.track(...)`")
        live = None
        if self._state == "running":
            self.writer.flush()
            live = {**self.energy_j(), **self.node_energy_j()}  # the node's apart (tiers)
        return account_run(load_run(self.run_dir), live_energy_j=live)

    def summary(self) -> Summary:
        """The summary of the run so far: ``print()`` it, or ``.to_dict()`` for JSON."""
        from greentrack.views.summary import Summary

        return Summary(self.account())

    def _repr_html_(self) -> str:
        """The run in a notebook cell: its summary (the account so far while it runs)."""
        from greentrack.views.escape import html_escape

        if self._state == "new":
            return f"<p>greentrack run {html_escape(self.run_dir)}: not started</p>"
        if self.unwritten:
            return (
                f"<p>greentrack: the run could not be saved ({html_escape(self.unwritten)}); "
                f"nothing was written to {html_escape(self.run_dir)}</p>"
            )
        return self.summary()._repr_html_()


def summarize(run: str | Path | Run, options: AccountOptions | None = None) -> Summary:
    """The summary of a run directory (``greentrack summary``), from its account."""
    from greentrack.account import account_run
    from greentrack.rundir.reader import Run, load_run
    from greentrack.views.summary import Summary

    loaded = run if isinstance(run, Run) else load_run(run)
    return Summary(account_run(loaded, options))


def track(
    run_dir: str | Path | None = None,
    *,
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    meters: Sequence[Meter] | None = None,
    sync: SyncMode = "auto",
    clock: Any = None,
    background: bool = True,
    region: str | None = None,
    pue: float | str | None = None,
    intensity: float | None = None,
    intensity_source: str | None = None,
    intensity_provider: str | None = None,
    provider_region: str | None = None,
    carbon: CarbonSettings | None = None,
    rank: RankInfo | str | None = "auto",
    segment: int | None = None,
    **options: Any,
) -> Tracker:
    """Measure a block of code: ``with greentrack.track(run_dir=...) as run: ...``.

    ``region`` (``"DE"``, ``"US-CA"``, ``"aws:eu-west-1"``, ``"auto"``) or ``intensity``
    (gCO2e/kWh, with ``intensity_source``) and ``pue`` (a number >= 1 or a preset such as
    ``"google"``) turn energy into CO2e; they are checked here, before any training starts.
    Keyword ``options`` are :class:`TrackerOptions` fields (``power_hz``, ``gpu_indices``,
    ``cpu_tdp_w``, ``require``...; ``prometheus_port=9100`` serves live metrics on
    ``http://127.0.0.1:9100/metrics`` while the run is measured, docs/prometheus.md).
    ``node_meter`` (a URL: ``"redfish+https://BMC/redfish/v1/Chassis/1"``, ``"ipmi://"``,
    ``"slurm://"``) measures the whole node too, beside its devices (docs/node-meters.md).
    ``intensity_provider`` (``"ukci"``, ``"electricitymaps"``, ``"watttime"``) charges the
    run's own hours from a public provider (see :class:`Tracker`).
    ``carbon`` (a :class:`greentrack.CarbonSettings`) stands for ``region``/``intensity``/
    ``pue`` together; every entry point takes the same carbon arguments
    (:func:`greentrack.carbon.settings.carbon_arguments`).

    Under a distributed launcher (torchrun, Accelerate, DeepSpeed, SLURM ``srun``, Open MPI,
    MPICH: ``rank="auto"`` reads its environment, or pass a :class:`RankInfo`; ``None`` turns
    it off), every rank tracks itself into one run directory: rank 0 writes ``run_dir``, rank R
    ``run_dir/parts/seg<S>-rank<R>``; each rank measures the GPU it drives and the node's CPU
    and DRAM are measured once, by local rank 0 (docs/distributed.md). ``segment`` numbers a
    restart of the job (default: the launcher's restart count).
    Returns an unstarted :class:`Tracker`; ``with`` starts it.
    """
    settings = carbon_arguments(
        region=region,
        intensity=intensity,
        intensity_source=intensity_source,
        pue=pue,
        carbon=carbon,
    )
    run_dir, tracker_options, extra = place(
        run_dir, TrackerOptions.parse(options, _TRACK_ARGUMENTS), rank, segment
    )
    return Tracker(
        run_dir,
        project=project,
        name=name,
        config=config,
        meters=meters,
        sync=sync,
        options=tracker_options,
        clock=clock,
        background=background,
        carbon=settings,
        intensity_provider=intensity_provider if _is_root(extra) else None,
        provider_region=provider_region,
        extra_meta=extra,
    )


_TRACK_ARGUMENTS = (
    "run_dir",
    "project",
    "name",
    "config",
    "meters",
    "sync",
    "clock",
    "background",
    "region",
    "pue",
    "intensity",
    "intensity_source",
    "intensity_provider",
    "provider_region",
    "carbon",
    "rank",
    "segment",
)
"""track()'s own arguments, named beside the tracker options when a keyword is unknown."""


def place(
    run_dir: str | Path | None,
    options: TrackerOptions,
    rank: RankInfo | str | None = "auto",
    segment: int | None = None,
) -> tuple[str | Path | None, TrackerOptions, dict[str, Any] | None]:
    """Where this process of a job writes and what it measures: ``(run_dir, options, extra
    meta)``, unchanged outside a distributed launcher (``rank="auto"`` reads the environment;
    :func:`greentrack.launcher.detect`)."""
    info = detect() if rank == "auto" else rank
    if isinstance(info, str):
        raise ValueError(f"rank takes 'auto', None or a greentrack.launcher.RankInfo; got {rank!r}")
    if info is None or not (info.distributed or segment or info.restart):
        return run_dir, options, None
    info = agree_job_id(info)
    path, extra = _rank_dir(run_dir, info, segment)
    options = dataclasses.replace(
        options, discovery=dataclasses.replace(options.discovery, rank=info)
    )
    return path, options, extra


def _is_root(extra: Mapping[str, Any] | None) -> bool:
    """Whether a process placed with ``extra`` writes the job's root (rank 0, segment 0)."""
    if extra is None:
        return True
    part = extra["part"]
    return bool(part["rank"] == 0 and part["segment"] == 0)


def _rank_dir(
    run_dir: str | Path | None, info: RankInfo, segment: int | None
) -> tuple[Path, dict[str, Any]]:
    """Where this rank writes (the job's directory, or its part in it) and its ``part``."""
    from greentrack.rundir.format import segment_dir

    if run_dir is None:
        if info.job_id is None:
            raise ValueError(
                f"the ranks of a {info.launcher} job must share one run directory, and the "
                "launcher gives no job id (a placeholder such as TORCHELASTIC_RUN_ID=none) nor a "
                "store or process group to agree one: pass run_dir=... (the same on every rank), "
                "or give the launcher an id (torchrun --rdzv-id ID)"
            )
        run_dir = Path("runs") / f"{info.launcher}-{info.job_id}"
    root = Path(run_dir)
    seg = info.restart if segment is None else segment
    if seg < 0:
        raise ValueError(f"segment must be >= 0, got {seg}")
    part = info.part(seg)
    path = segment_dir(root, seg, info.rank)
    if path != root and info.job_id is not None:
        _check_same_job(root, info)
    return path, {"part": part}


def _check_same_job(root: Path, info: RankInfo) -> None:
    """A part joins the directory of its own job only: never an unrelated job's run."""
    from greentrack.errors import RunExistsError
    from greentrack.rundir.format import META
    from greentrack.rundir.parts import job_of
    from greentrack.rundir.reader import peek_meta

    # rank 0 has not claimed it yet (or it is not readable): nothing to compare
    theirs = job_of(peek_meta(root / META) or {}).job_id
    if theirs is not None and theirs != info.job_id:
        raise RunExistsError(
            f"{root} holds the run of job {theirs}; this is job {info.job_id}: "
            "pass a new run_dir for this job"
        )
