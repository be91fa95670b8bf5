"""The tracker: measures a block of code, with nested spans, into a run directory.

This is the measurement core: meters, sampler, spans, run directory. It knows no carbon
and no account; :func:`greentrack.track` (in :mod:`greentrack.api`) adds the carbon settings
and the run's summary on top.

>>> import greentrack                                                  # doctest: +SKIP
>>> with greentrack.track(run_dir="runs/exp1", project="demo") as run:  # doctest: +SKIP
...     with run.span("epoch", epoch=0):
...         train_one_epoch()
>>> print(run.summary())                                             # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextvars
import itertools
import logging
import math
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

from greentrack import metadata
from greentrack.discovery import ComponentStatus, DiscoveryOptions, discover, discover_node
from greentrack.errors import MeterError, RunExistsError, SpanError
from greentrack.ledger import EnergyLedger
from greentrack.meters.base import Channel, Meter
from greentrack.meters.node import NodeMeter
from greentrack.rundir.fs import REAL, FileSystem
from greentrack.rundir.writer import IoTrouble, NullWriter, RunWriter, Writer
from greentrack.sampler import Sampler, SamplingConfig

log = logging.getLogger("greentrack")

SyncMode = Literal["auto", "torch", "none"] | Callable[[], None] | None
TagValue = str | int | float | bool | None
_current_span: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "greentrack_current_span", default=None
)


ERROR_EVENT_INTERVAL_S = 10.0
META_WAIT_S = 2.0
"""How long :meth:`Tracker.stop` waits, after the run's summary is written, for
``meta.json``'s pending fields (package versions, git) when they are still being gathered; a
``meta.json`` not completed by then keeps ``pending`` and is completed when they arrive, if
the process lives."""


def safe_warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn``, except that it never raises: under ``-W error`` a warning is an
    exception, and greentrack's warnings must not stop the training they describe."""
    try:
        warnings.warn(message, category, stacklevel=3)
    except Warning:
        log.warning("%s", message)


class Recordable(Protocol):
    """Settings a run records in ``meta.json`` (e.g. the carbon settings)."""

    def to_dict(self) -> dict[str, Any]: ...


class Clock:
    """The real clocks: ``monotonic`` for durations, ``time`` (UTC epoch) for alignment."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span.

    Attributes:
        energy_j: energy per channel id in joules between the span's edges.
        status: ``"ok"``, ``"error"`` (an exception left the span) or ``"unclosed"`` (still
            open when the run stopped).
        end_total_j: the cumulative reading per channel id (J since the run's start) at the
            span's end, the snapshot ``energy_j`` was subtracted from: the run's energy at
            that moment, as the account's energy curve gives it there (empty for a record
            made by hand).
    """

    span_id: str
    parent_id: str | None
    name: str
    tags: Mapping[str, TagValue]
    start_unix_s: float
    end_unix_s: float
    duration_s: float
    energy_j: Mapping[str, float]
    status: str = "ok"
    end_total_j: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_energy_j(self) -> float:
        return sum(self.energy_j.values())


@dataclass(eq=False)
class Span:
    """Handle of an open span; ``record`` is set when it ends."""

    span_id: str
    name: str
    parent_id: str | None
    tags: Mapping[str, TagValue]
    start_mono_s: float
    start_unix_s: float
    start_energy_j: Mapping[str, float] = field(repr=False)
    record: SpanRecord | None = None


PROMETHEUS_ADDRESS = "127.0.0.1"
"""Where live Prometheus metrics are served unless an address is given: this machine only."""


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    """Live metrics for Prometheus while a run is measured (docs/prometheus.md). Validated on
    construction; the flat names (``track(prometheus_port=...)``) carry a ``prometheus_``
    prefix.

    Attributes:
        port: serve ``http://address:port/metrics`` (``None``: no server; ``0``: any free
            port, read it from ``tracker.prometheus.port``). Each rank of a job serves
            ``port + local rank``.
        address: the address to bind (default ``127.0.0.1``: this machine only; ``0.0.0.0``
            for every interface).
        textfile: a ``*.prom`` file for node_exporter's textfile collector, rewritten
            atomically every ``textfile_interval_s`` and once at the end (rank R > 0 of a job
            writes ``<stem>-rank<R>.prom`` beside it).
        textfile_interval_s: seconds between rewrites of ``textfile``.
    """

    port: int | None = None
    address: str = PROMETHEUS_ADDRESS
    textfile: Path | None = None
    textfile_interval_s: float = 10.0

    def __post_init__(self) -> None:
        port = self.port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
        ):
            raise ValueError(
                f"prometheus_port must be an integer from 0 to 65535 (0: any free port), "
                f"got {port!r}"
            )
        if not isinstance(self.address, str) or not self.address.strip():
            raise ValueError(
                f"prometheus_address must name an address to bind, e.g. 127.0.0.1 or 0.0.0.0; "
                f"got {self.address!r}"
            )
        if self.textfile is not None:
            path = Path(self.textfile)
            if path.suffix != ".prom":
                raise ValueError(
                    f"prometheus_textfile {str(path)!r} must end in .prom (node_exporter's "
                    "textfile collector reads only *.prom files)"
                )
            object.__setattr__(self, "textfile", path)
        interval = self.textfile_interval_s
        if not isinstance(interval, int | float) or not 0.5 <= interval <= 3600:
            raise ValueError(
                f"prometheus_textfile_interval_s must be in [0.5, 3600] seconds, got {interval!r}"
            )

    @property
    def enabled(self) -> bool:
        return self.port is not None or self.textfile is not None


_PROMETHEUS_PREFIX = "prometheus_"


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """Everything about *how* to measure, with defaults that suit training runs.

    Sampling (see :class:`greentrack.sampler.SamplingConfig`): ``power_hz``,
    ``row_interval_s``, ``counter_interval_s``. Discovery (see
    :class:`greentrack.discovery.DiscoveryOptions`): ``gpu_indices``, ``cpu_tdp_w``,
    ``dram_w_per_gb``, ``powercap_root``, ``nvml``, ``require``, ``gpu``, ``cpu``. Live
    Prometheus metrics (see :class:`PrometheusOptions`): ``prometheus_port``,
    ``prometheus_address``, ``prometheus_textfile``, ``prometheus_textfile_interval_s``.
    """

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    discovery: DiscoveryOptions = field(default_factory=DiscoveryOptions)
    prometheus: PrometheusOptions = field(default_factory=PrometheusOptions)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrackerOptions:
        """Split flat keyword options between sampling, discovery and Prometheus; unknown
        names raise ``TypeError`` naming them, the closest valid name and the valid ones."""
        return cls.parse(kwargs)

    @classmethod
    def parse(cls, kwargs: Mapping[str, Any], others: Sequence[str] = ()) -> TrackerOptions:
        """:meth:`from_kwargs` of a mapping; ``others``: the caller's own arguments, named
        beside the options when one is unknown."""
        return cls().with_options(kwargs, others)

    def with_options(self, kwargs: Mapping[str, Any], others: Sequence[str] = ()) -> TrackerOptions:
        """A copy with the flat options of ``kwargs`` replaced (as :meth:`parse` names them),
        e.g. ``options.with_options({"prometheus_port": 9100})``."""
        groups = _split_options(kwargs, others)
        return TrackerOptions(
            replace(self.sampling, **groups[0]) if groups[0] else self.sampling,
            replace(self.discovery, **groups[1]) if groups[1] else self.discovery,
            replace(self.prometheus, **groups[2]) if groups[2] else self.prometheus,
        )


def _split_options(
    kwargs: Mapping[str, Any], others: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Flat options as (sampling, discovery, Prometheus) fields; an unknown name raises
    ``TypeError`` naming it, the closest valid name and the valid ones."""
    sampling_names = {f.name for f in fields(SamplingConfig)}
    discovery_names = {f.name for f in fields(DiscoveryOptions)}
    prometheus_names = {_PROMETHEUS_PREFIX + f.name for f in fields(PrometheusOptions)}
    unknown = set(kwargs) - sampling_names - discovery_names - prometheus_names
    if unknown:
        import difflib

        names = sorted(sampling_names | discovery_names | prometheus_names | set(others))
        hints = [
            f"{u!r} (did you mean {close[0]!r}?)" if close else repr(u)
            for u in sorted(unknown)
            for close in [difflib.get_close_matches(u, names, n=1, cutoff=0.6)]
        ]
        raise TypeError(f"unknown argument {', '.join(hints)}; valid: {', '.join(names)}")
    return (
        {k: v for k, v in kwargs.items() if k in sampling_names},
        {k: v for k, v in kwargs.items() if k in discovery_names},
        {k.removeprefix(_PROMETHEUS_PREFIX): v for k, v in kwargs.items() if k in prometheus_names},
    )


def default_run_dir(root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return root / f"{stamp}-{uuid.uuid4().hex[:6]}"


def _torch_sync() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _resolve_sync(sync: SyncMode) -> Callable[[], None] | None:
    if sync is None or sync == "none":
        return None
    if sync in ("auto", "torch"):
        return _torch_sync
    if callable(sync):
        return sync
    raise ValueError(f"sync must be 'auto', 'torch', 'none', None or a callable; got {sync!r}")


def _check_tags(name: str, tags: Mapping[str, Any]) -> dict[str, TagValue]:
    if not isinstance(name, str) or not name.strip():
        raise SpanError(f"a span name must be a non-empty string, got {name!r}")
    for key, value in tags.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise SpanError(
                f"span {name!r}: tag {key}={value!r} is a {type(value).__name__}; tags must be "
                "str, int, float, bool or None (convert it, e.g. str(value))"
            )
    return dict(tags)


class Tracker:
    """Measures energy per component into ``run_dir`` while it is started.

    Args:
        run_dir: where the run directory is written (must not hold a run yet); ``None``
            creates ``runs/<UTC time>-<id>``.
        project, name: labels kept in the metadata and shown in reports (any characters).
        config: the user's hyperparameters or settings, stored in the metadata.
        meters: explicit meters (skips discovery), e.g. fakes in tests.
        sync: how span edges wait for asynchronous device work: ``"auto"`` (torch's current
            CUDA device, when torch has initialised CUDA), ``"none"``, or a callable.
        options: a :class:`TrackerOptions`; or pass its fields as keywords to :func:`track`.
        clock: an object with ``monotonic()`` and ``time()`` (tests pass a manual clock).
        background: run the sampler on a background thread (``False``: the caller drives
            ``tracker.sampler.tick()``, as tests and benchmarks with a manual clock do).
        command: the command line to record (default ``sys.argv``).
        carbon: resolved intensity and PUE (:class:`greentrack.carbon.settings.CarbonSettings`;
            :func:`greentrack.track` resolves ``region=``/``pue=`` for you), recorded in
            ``meta.json``.
        extra_meta: more top-level keys for ``meta.json`` (integrations record e.g. ``part``:
            which rank and segment of a larger run this process measured).
        fs: the file system boundary (:class:`greentrack.rundir.fs.FileSystem`; tests pass
            one that fails).

    Nothing the tracker does while training runs raises into it: a meter that fails (any
    exception) becomes a labelled gap, a write that fails (a full disk) a counted loss, both
    with one warning (never raised, even under ``-W error``).
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        meters: Sequence[Meter] | None = None,
        sync: SyncMode = "auto",
        options: TrackerOptions | None = None,
        clock: Any = None,
        background: bool = True,
        command: Sequence[str] | None = None,
        carbon: Recordable | None = None,
        extra_meta: Mapping[str, Any] | None = None,
        fs: FileSystem | None = None,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.project, self.name = project, name
        self._config = dict(config) if config else {}
        self._given_meters = list(meters) if meters is not None else None
        self._sync = _resolve_sync(sync)
        self.options = options or TrackerOptions()
        self._clock = clock or Clock()
        self._command = command
        self._background = background
        self.carbon = carbon
        self._extra_meta = dict(extra_meta) if extra_meta else {}
        self.run_id = uuid.uuid4().hex
        self._ids = itertools.count(1)
        self._open: dict[str, Span] = {}
        self._warned: set[int] = set()
        self._state: Literal["new", "running", "stopped"] = "new"
        self.statuses: list[ComponentStatus] = []
        self._final_totals: dict[str, float] | None = None
        self._fs = fs or REAL
        self._error_events: dict[tuple[int, str], tuple[float, int]] = {}
        self.unwritten: str | None = None  # why the run directory could not be created
        self.summary_written = False
        self._meta_thread: threading.Thread | None = None
        self._meta: dict[str, Any] = {}
        self._node: NodeMeter | None = None  # the node meter, apart from the devices
        self._final_node: dict[str, float] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Tracker:
        """Open meters and the run directory and start sampling. Returns ``self``."""
        if self._state != "new":
            raise RuntimeError(f"tracker for {self.run_dir} was already started; make a new one")
        if self._given_meters is not None:
            self._meters = self._given_meters
        else:
            self._meters, self.statuses = discover(self.options.discovery)
        try:
            self._node, node_status = discover_node(self.options.discovery, self._clock.monotonic)
            if node_status is not None:
                self.statuses.append(node_status)
                if node_status.status == "not counted":
                    safe_warn(f"greentrack: {node_status.detail}", RuntimeWarning)
            self._start_measuring()
        except BaseException:
            for m in [*self._meters, *([self._node] if self._node else [])]:
                m.close()
            raise
        self._state = "running"
        atexit.register(self._atexit)
        return self

    def _start_measuring(self) -> None:
        self._t0_mono = self._clock.monotonic()
        self._t0_unix = self._clock.time()
        self.ledger = EnergyLedger(self._meters, self._clock.monotonic, self._on_meter_error)
        channels = self.ledger.channels
        if not channels:
            safe_warn(
                "greentrack measures no energy on this machine: "
                + "; ".join(s.detail for s in self.statuses if s.status == "not counted")
                + ". Durations and spans are still recorded (see `greentrack devices`).",
                UserWarning,
            )
        meta = metadata.collect(
            run_id=self.run_id,
            project=self.project,
            name=self.name,
            config=self._config,
            command=self._command,
            start_unix_s=self._t0_unix,
            defer=True,
        )
        meta["channels"] = [c.to_dict() for c in channels]
        if self._node is not None:  # the node contains the devices: its channel stands apart
            meta["node_channels"] = [c.to_dict() for c in self._node.channels]
        meta["boundary"] = [s.to_dict() for s in self.statuses]
        if self.carbon is not None:
            meta["carbon"] = self.carbon.to_dict()
        meta.update(self._extra_meta)
        meta["sampling"] = {
            "power_hz": self.options.sampling.power_hz,
            "row_interval_s": self.options.sampling.row_interval_s,
            "counter_interval_s": self.options.sampling.counter_interval_s,
        }
        self.writer: Writer
        try:
            self.writer = RunWriter(
                self.run_dir,
                meta,
                [c.id for c in channels],
                fs=self._fs,
                on_trouble=self._on_io_trouble,
                clock=self._clock.time,
            )
        except RunExistsError:
            raise  # a refusal, before anything ran: the user chose a used directory
        except OSError as e:
            # the run directory cannot be created (a full disk, a read-only file system, a
            # path under a regular file): measure on, in memory, and let the training run
            self.unwritten = f"{type(e).__name__}: {e}"
            safe_warn(
                f"greentrack cannot write its run directory {self.run_dir} ({self.unwritten}); "
                "training continues, energy is measured but this run will not be saved (pass "
                "a run_dir in a folder you can write to)",
                RuntimeWarning,
            )
            self.writer = NullWriter(self.run_dir)
        self._meta = meta
        if meta.get("pending"):  # git and package versions: gathered off the start's path
            self._meta_thread = threading.Thread(
                target=self._complete_meta, args=(meta,), name="greentrack-meta", daemon=True
            )
            self._meta_thread.start()
        self.ledger.zero()
        self.sampler = Sampler(
            self.ledger, self.writer, self._clock.monotonic, self._clock.time, self.options.sampling
        )
        self.writer.write_event({"event": "run_start", "t_unix_s": self._t0_unix})
        if self._node is not None:
            self._node.on_reading = self._on_node_reading
            node = self._node
            self._node.on_error = lambda e: self._on_meter_error(node, "read_node", e)
        if self._background:
            self.sampler.start()
            if self._node is not None:
                self._node.start()

    def _complete_meta(self, meta: dict[str, Any]) -> None:
        """Gather what ``meta.json`` left pending, one field at a time, rewriting it after
        each (never raises). Its CPU time (and git's) falls inside the run, as the sampler
        thread's does: greentrack's own overhead is part of what it measures."""
        try:
            for field in list(meta.get("pending") or ()):
                meta = metadata.complete(meta, field)
                self.writer.rewrite_meta(meta)
                self._meta = meta
        except Exception as e:  # the run goes on with what meta.json has
            log.warning("completing %s/meta.json failed: %r", self.run_dir, e)

    def stop(self, status: str = "finished") -> None:
        """End open spans, take final readings, write the summary and close. Idempotent."""
        if self._state != "running":
            return
        self._state = "stopped"
        atexit.unregister(self._atexit)
        self.sampler.stop()
        for span in reversed(list(self._open.values())):
            self._finish(span, "unclosed")
        end_mono, totals = self.ledger.snapshot()
        node = self._finish_node()
        self.sampler.write_row(at=end_mono)
        end_unix = self._unix_at(end_mono)
        self._final_totals = totals
        counter_trouble = self.ledger.counter_trouble()
        self.writer.write_event(
            {
                "event": "run_end",
                "t_unix_s": end_unix,
                "status": status,
                "sampler_ticks": self.sampler.ticks,
                "sampler_cpu_s": self.sampler.thread_cpu_s,
            }
        )
        self.writer.close()  # flushed and synced first: a failure there is in the summary
        self.summary_written = self.writer.write_summary(
            {
                "run_id": self.run_id,
                "status": status,
                "end_utc": metadata.utc_iso(end_unix),
                "end_unix_s": end_unix,
                "duration_s": end_mono - self._t0_mono,
                "energy_j": totals,
                **({"counter_trouble": counter_trouble} if counter_trouble else {}),
                **node,
            }
        )
        for meter in [*self._meters, *([self._node] if self._node else [])]:
            try:
                meter.close()
            except Exception as e:  # closing vendor handles must not mask the run's result
                log.warning("closing %r failed: %r", meter, e)
        if self._meta_thread is not None:  # done long before, unless git is slow or hangs
            self._meta_thread.join(timeout=META_WAIT_S)
        self._record_late_imports()

    def _record_late_imports(self) -> None:
        """Rewrite ``meta.json`` once more when the process imported a known package after the
        run started (a framework imported inside it: the software row lists what ran). Never
        waits: nothing is done while the versions are still being read, or while the metadata
        thread is still writing."""
        if self._meta_thread is not None and self._meta_thread.is_alive():
            return
        try:
            software = metadata.software_update(self._meta.get("software"))
            if software is not None:
                self._meta = {**self._meta, "software": software}
                self.writer.rewrite_meta(self._meta)
        except Exception as e:  # the run is complete without it
            log.warning("recording late imports in %s/meta.json failed: %r", self.run_dir, e)

    def _finish_node(self) -> dict[str, Any]:
        """The node meter's last reading (bounded) and total, for ``summary.json``:
        ``node_energy_j`` per channel and ``node`` (how it was measured). Never raises."""
        if self._node is None:
            return {}
        try:
            total = self._node.finish()
        except Exception as e:  # the run's result stands without the node
            safe_warn(f"greentrack: the node meter failed at stop: {e}", RuntimeWarning)
            return {}
        cid = self._node.channels[0].id
        self._final_node = {cid: total.energy_j}
        return {"node_energy_j": dict(self._final_node), "node": {cid: total.to_dict()}}

    def _on_node_reading(self, t_mono: float, energy_j: float, power_w: float | None) -> None:
        """Each good node reading, as an event (the node's own timeline; a run killed before
        its summary keeps the last one). Never raises."""
        try:
            self.writer.write_event(
                {
                    "event": "node_reading",
                    "t_unix_s": self._unix_at(t_mono),
                    "t_mono_s": t_mono - self._t0_mono,
                    "energy_j": {self._node.channels[0].id: energy_j} if self._node else {},
                    "power_w": power_w,
                }
            )
        except Exception as e:
            log.warning("recording a node reading failed: %r", e)

    def node_energy_j(self) -> dict[str, float]:
        """The node meter's energy so far per channel (final once stopped; ``{}`` without a
        node meter on this process). Read from memory: the meter polls on its own thread."""
        if self._final_node is not None:
            return dict(self._final_node)
        return self._node.read_energy_j() if self._node is not None else {}

    def _atexit(self) -> None:
        self.stop(status="exited without stop()")

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop("finished" if exc_type is None else f"failed: {exc_type.__name__}")

    @property
    def running(self) -> bool:
        return self._state == "running"

    # --- spans -----------------------------------------------------------------------------

    def begin_span(
        self, name: str, *, parent: Span | Literal["auto"] | None = "auto", **tags: Any
    ) -> Span:
        """Open a span. ``parent="auto"`` nests it in the innermost span opened with
        :meth:`span` in this context; pass a :class:`Span` or ``None`` to choose.
        Spans may overlap (end them in any order), as Zeus windows do."""
        checked = _check_tags(name, tags)
        self._require_running(f"begin span {name!r}")
        if parent == "auto":
            parent = _current_span.get()
        if parent is not None and parent.span_id not in self._open:
            raise SpanError(f"parent span {parent.name!r} ({parent.span_id}) is not open")
        if self._sync is not None:
            self._sync()
        start_mono, start = self.ledger.snapshot()
        span = Span(
            span_id=f"s{next(self._ids)}",
            name=name,
            parent_id=parent.span_id if parent is not None else None,
            tags=checked,
            start_mono_s=start_mono,
            start_unix_s=self._unix_at(start_mono),
            start_energy_j=start,
        )
        self._open[span.span_id] = span
        self.writer.write_span(
            {
                "event": "begin",
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": name,
                "tags": checked,
                "t_unix_s": span.start_unix_s,
                "t_mono_s": span.start_mono_s - self._t0_mono,
                "energy_j": start,
            }
        )
        return span

    def end_span(self, span: Span, *, status: str = "ok") -> SpanRecord:
        """Close a span and return its record (energy per channel between its edges)."""
        if span.record is not None:
            raise SpanError(f"span {span.name!r} ({span.span_id}) has already ended")
        if span.span_id not in self._open:
            raise SpanError(f"span {span.name!r} ({span.span_id}) does not belong to this run")
        if self._sync is not None:
            self._sync()
        return self._finish(span, status)

    def _finish(self, span: Span, status: str) -> SpanRecord:
        end_mono, end = self.ledger.snapshot()
        end_unix = self._unix_at(end_mono)
        energy = {cid: end[cid] - span.start_energy_j.get(cid, 0.0) for cid in end}
        record = SpanRecord(
            span.span_id,
            span.parent_id,
            span.name,
            span.tags,
            span.start_unix_s,
            end_unix,
            end_mono - span.start_mono_s,
            energy,
            status,
            end_total_j=dict(end),
        )
        span.record = record
        del self._open[span.span_id]
        self.writer.write_span(
            {
                "event": "end",
                "span_id": span.span_id,
                "t_unix_s": end_unix,
                "t_mono_s": end_mono - self._t0_mono,
                "duration_s": record.duration_s,
                "energy_j": energy,
                "status": status,
            }
        )
        return record

    def span(self, name: str, **tags: Any) -> _SpanScope:
        """Context manager measuring its block as a span nested in the current one.

        >>> with tracker.span("epoch", epoch=3) as s:   # doctest: +SKIP
        ...     train_one_epoch()
        >>> s.record.energy_j                             # doctest: +SKIP
        """
        return _SpanScope(self, name, tags)

    # --- results ---------------------------------------------------------------------------

    def energy_j(self) -> dict[str, float]:
        """Energy per channel so far (final totals once stopped), from a fresh reading."""
        if self._final_totals is not None:
            return dict(self._final_totals)
        self._require_running("read energy")
        return self.ledger.snapshot_j()

    @property
    def channels(self) -> list[Channel]:
        """The channels this run measures (empty before start)."""
        return self.ledger.channels if self._state != "new" else []

    def event(self, record: Mapping[str, Any]) -> None:
        """Append an event (a dict with an ``"event"`` key) to ``events.jsonl``: integrations
        record metrics, forecasts and budget messages this way."""
        if "event" not in record:
            raise ValueError(f"an event needs an 'event' key naming its kind, got {dict(record)}")
        if self._state == "running":
            self.writer.write_event(record)

    # --- internals -------------------------------------------------------------------------

    def _unix_at(self, t_mono: float) -> float:
        """Wall-clock (UTC) time of a past monotonic instant."""
        return self._clock.time() - (self._clock.monotonic() - t_mono)

    def _require_running(self, what: str) -> None:
        if self._state != "running":
            raise RuntimeError(
                f"cannot {what}: the tracker is {self._state}; use it inside `with track(...)`"
            )

    def _on_meter_error(self, meter: Meter, operation: str, err: MeterError) -> None:
        """One warning per meter, and at most one event per meter and operation every
        :data:`ERROR_EVENT_INTERVAL_S` (with how many failures it stands for)."""
        key = id(meter)
        if key not in self._warned:
            self._warned.add(key)
            safe_warn(
                f"greentrack: a meter failed, its channels show a gap (training continues): {err}",
                RuntimeWarning,
            )
        now = self._clock.time()
        last, count = self._error_events.get((key, operation), (-math.inf, 0))
        count += 1
        if now - last < ERROR_EVENT_INTERVAL_S:
            self._error_events[(key, operation)] = (last, count)
            return
        self._error_events[(key, operation)] = (now, 0)
        self.writer.write_event(
            {
                "event": "meter_error",
                "t_unix_s": now,
                "operation": operation,
                "channels": [c.id for c in meter.channels],
                "error": str(err),
                "failures": count,
            }
        )

    def _on_io_trouble(self, trouble: IoTrouble) -> None:
        safe_warn(
            f"greentrack cannot write to {self.run_dir} ({trouble.error}); training continues, "
            "the records it cannot write are counted and the summary says what was lost",
            RuntimeWarning,
        )


class _SpanScope:
    def __init__(self, tracker: Tracker, name: str, tags: Mapping[str, Any]) -> None:
        self._tracker, self._name, self._tags = tracker, name, tags
        self._token: contextvars.Token[Span | None] | None = None

    def __enter__(self) -> Span:
        self._span = self._tracker.begin_span(self._name, **self._tags)
        self._token = _current_span.set(self._span)
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current_span.reset(self._token)
        if self._span.record is None and self._tracker.running:
            self._tracker.end_span(self._span, status="ok" if exc_type is None else "error")
