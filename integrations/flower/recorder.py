"""The server side's bookkeeping: :class:`RoundRecorder`, shared by the Message-API and the
legacy strategy wrappers (tracker, round spans, ``fl.jsonl``, attribution, forecast, budget)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from greentrack import metadata
from greentrack.account.federated import SIMULATION_GRIDS, FederatedTally
from greentrack.analysis.attribution import Window, attribute
from greentrack.analysis.budget import Budget
from greentrack.analysis.metrics import scalar_metrics
from greentrack.api import Tracker
from greentrack.carbon.network import coefficient
from greentrack.carbon.settings import CarbonSettings, carbon_arguments
from greentrack.integrations.flower._flwr import app as flwr_app
from greentrack.live import LiveFigures, Progress, with_prometheus
from greentrack.meters.base import Meter
from greentrack.rundir.format import FL
from greentrack.tracker import Span, TrackerOptions, default_run_dir
from greentrack.units import j_from_kwh

_HOST = socket.gethostname()
FL_FLUSH_S = 1.0
"""``fl.jsonl`` is written through a buffer flushed at most this often (and at the end of
every round and at stop): a crash loses at most about this much of it."""


_ENCODE = json.JSONEncoder(check_circular=False).encode


def num_examples(reply: Any) -> int | None:
    """The ``num-examples`` a Message-API reply reports (FedAvg's weighting key)."""
    if reply.has_error() or not reply.has_content():
        return None
    metric_record = flwr_app.MetricRecord
    for record in reply.content.values():  # .metric_records builds a new dict per call
        if not isinstance(record, metric_record):
            continue
        value = record.get("num-examples")
        if isinstance(value, int | float):
            return int(value)
    return None


def _windows(key: int, record: dict[str, Any]) -> list[Window]:
    """The shared-device windows a client reported (none from models or CPU-only clients, or
    from a record whose windows are not finite numbers)."""
    out = []
    try:
        for w in record.get("windows") or []:
            times = _readings((w[k] for k in ("t0", "t1", "e0_j", "e1_j")), non_negative=False)
            if times is None:
                return []
            out.append(Window(key, str(w["device"]), *times))
    except (KeyError, TypeError):
        return []
    return out


def _readings(raw: Iterable[Any], *, non_negative: bool = True) -> list[float] | None:
    """Numbers a client reported (times, energies, counters) as floats, or ``None`` when one
    is not a finite (and, for energies and durations, non-negative) number: such a record is
    not a reading."""
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError, OverflowError):
        return None
    ok = all(math.isfinite(v) and (v >= 0 or not non_negative) for v in values)
    return values if ok else None


def _attribute_shared_devices(rows: list[dict[str, Any]], windows: list[Window]) -> None:
    """Where replies measured the same device over overlapping windows, replace each one's
    own reading of that device by its share (sum over clients = the device's energy)."""
    if not windows:
        return
    result = attribute(windows)
    shared = {d for d, o in result.overlapped.items() if o}
    if not shared:
        return
    for w in windows:
        if w.device in shared:
            row = rows[int(w.key)]  # type: ignore[call-overload]
            row.setdefault("client_measured_raw_j", row["client_measured_j"])
            row["client_measured_j"] -= w.own_j
    on_shared = [w for w in windows if w.device in shared]
    for key, joules in attribute(on_shared).per_key_j.items():
        row = rows[int(key)]  # type: ignore[call-overload]
        devices = sorted({w.device for w in on_shared if w.key == key})
        row["client_measured_j"] += joules
        shared_by = "shared device" if len(devices) == 1 else "shared devices"
        row["attribution"] = f"{shared_by} {', '.join(devices)}: split by time windows"


def _int_list(raw: Any) -> list[int]:
    """The integers of a list from a record (empty when absent or malformed)."""
    return [v for v in raw if isinstance(v, int)] if isinstance(raw, list) else []


def _components(raw: Any) -> dict[str, list[float]] | None:
    """The client's energy per component, ``{component: [measured J, estimated J]}``."""
    if not isinstance(raw, dict):
        return None
    out = {}
    for key, pair in raw.items():
        try:
            values = _readings((pair[0], pair[1]))
        except (TypeError, IndexError, KeyError):
            values = None
        if values is None:
            return None
        out[str(key)] = values
    return out


def _client_fields(record: dict[str, Any]) -> dict[str, Any] | None:
    """The ``fl.jsonl`` columns of a client's record; ``None`` for a record without its
    energy, duration and method (another version's, or damaged)."""
    try:
        numbers = _readings(record[k] for k in ("measured_j", "estimated_j", "duration_s"))
        if numbers is None:
            return None  # energy and time are finite and never negative: not a reading
        return {
            "client_measured_j": numbers[0],
            "client_estimated_j": numbers[1],
            "client_duration_s": numbers[2],
            "client_methods": str(record["methods"]),
            "client_basis": str(record.get("basis", "measured")),
            "client_host": host if isinstance(host := record.get("host"), str) else None,
            "client_pid": pid if isinstance(pid := record.get("pid"), int) else None,
            "client_ancestors": _int_list(record.get("ancestors")),
            "client_components": _components(record.get("components")),
        }
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


class RoundRecorder:
    """The server-side bookkeeping both strategy wrappers share: the tracker and its run
    directory, a ``round`` span per round with ``aggregate_*`` spans inside, ``fl.jsonl``
    rows per client and phase, shared-GPU attribution, per-round forecasts and the budget.

    Args: as :class:`EmissionsStrategy` (everything but the strategy).
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
        budget: Budget | None = None,
        forecast_after_rounds: int = 1,
        prefix: str = "energy/",
        network: str | float | None = None,
        upload_network: str | float | None = None,
        download_network: str | float | None = None,
        meters: Sequence[Meter] | None = None,
        options: TrackerOptions | None = None,
        prometheus_port: int | None = None,
        api: str = "message",
    ) -> None:
        carbon = carbon_arguments(
            region=region,
            pue=pue,
            intensity=intensity,
            intensity_source=intensity_source,
            carbon=carbon,
        )
        self.upload_network = coefficient(upload_network if upload_network is not None else network)
        self.download_network = coefficient(
            download_network if download_network is not None else network
        )
        self.figures = LiveFigures(carbon, budget or Budget(), prefix, forecast_after_rounds)
        self.budget = self.figures.budget
        self.stopped = False
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.carbon = carbon
        self._options = with_prometheus(options, prometheus_port)
        self._provider = (intensity_provider, provider_region)
        self._meters = meters
        self._project, self._name, self._api = project, name, api
        self.tracker: Tracker | None = None
        self._round_span: Span | None = None
        self.round = 0
        self.num_rounds = 0
        self._downloads: dict[tuple[str, int], int | None] = {}
        self._fl: Any = None
        self._fl_flushed = 0.0  # monotonic time of the last flush of fl.jsonl
        self._fl_lock = threading.Lock()
        self._fl_timer: threading.Timer | None = None
        self._per_round_j: list[float] = []  # each round's total by the account's rules
        self._grid = ""
        self.last = Progress({})
        # every fl.jsonl row so far, and this round's, summed by the account's rules
        self._tally = self._tally_new()
        self._round_tally = self._tally_new()
        self.reading: dict[str, float] = {}  # the server's J per channel behind ``last``
        self._warned_record = False
        self._pending: list[dict[str, Any]] = []
        self._windows: list[Window] = []
        metadata.prefetch()  # git and package versions, off the start's critical path

    @property
    def running(self) -> bool:
        return self.tracker is not None and self.tracker.running

    def start(self, num_rounds: int, grid: Any = None) -> None:
        """Start the server's run; ``grid`` (Flower's) tells a simulation from a deployment."""
        self._grid = type(grid).__name__ if grid is not None else ""
        self.tracker = Tracker(
            self.run_dir,
            project=self._project,
            name=self._name,
            meters=self._meters,
            options=self._options,
            carbon=self.carbon,
            extra_meta={
                "framework": "flwr",
                "fl_role": "server",
                "fl": {
                    "api": self._api,
                    "grid": self._grid,
                    "network": {
                        "upload": asdict(self.upload_network),
                        "download": asdict(self.download_network),
                    },
                },
            },
            intensity_provider=self._provider[0],
            provider_region=self._provider[1],
        )
        self.num_rounds = num_rounds
        self.tracker.start()
        self._tally, self._round_tally = self._tally_new(), self._tally_new()
        self._fl = (self.run_dir / FL).open("a", encoding="utf-8", buffering=1 << 16)
        self._fl_flushed = time.monotonic()

    def stop(self, status: str = "finished") -> None:
        if self.tracker is None or not self.tracker.running:
            return
        try:
            self.close_round()
        finally:
            with self._fl_lock:
                if self._fl_timer is not None:
                    self._fl_timer.cancel()
                if self._fl is not None:
                    self._fl.close()  # flushes
                    self._fl = None
            self.tracker.stop(status)

    # --- rounds ------------------------------------------------------------------------------

    def open_round(self, server_round: int) -> None:
        """Start round ``server_round`` (closing the previous one); a no-op within a round or
        after the budget stopped the run (``stopped``)."""
        if self.tracker is None or server_round == self.round:
            return
        self.close_round()
        if self.stopped:
            return
        self.round = server_round
        self._round_span = self.tracker.begin_span("round", parent=None, round=server_round)

    def _tally_new(self) -> FederatedTally:
        return FederatedTally(_HOST, os.getpid(), self._grid in SIMULATION_GRIDS)

    def _server_channels(
        self, tracker: Tracker, energy_j: Mapping[str, float]
    ) -> list[tuple[str, str, str, float]]:
        """The server's channels as the account reads them: (component, provenance, method,
        joules)."""
        return [
            (str(c.component), str(c.source), c.method, float(energy_j.get(c.id, 0.0)))
            for c in tracker.channels
        ]

    def close_round(self) -> None:
        """End the round's span; the live figures of the round and of the run so far, both by
        the account's rules (:class:`FederatedTally`): the round's replies with the server's
        round span, and every reply so far with the server's whole run (what the account of
        the run directory gives at this moment, value and range); forecast and budget."""
        tracker, span = self.tracker, self._round_span
        if tracker is not None and span is not None and span.record is None:
            record = tracker.end_span(span)
            up, down = self.upload_network, self.download_network
            kwh = self._round_tally.total_kwh(
                self._server_channels(tracker, record.energy_j), up, down
            )
            self.reading = tracker.energy_j()
            run_kwh = self._tally.total_kwh(self._server_channels(tracker, self.reading), up, down)
            self._per_round_j.append(j_from_kwh(kwh.value))
            self.last = self.figures.progress(
                total=run_kwh,
                unit=kwh,
                unit_name="round",
                units_j=self._per_round_j,
                remaining=max(0, self.num_rounds - self.round),
                event=tracker.event,
                where=f" after round {self.round}",
                index=self.round,
            )
            if self.last.stop:
                self.stopped = True
        self._round_span = None
        self._round_tally = self._tally_new()
        self.flush_fl()

    @contextlib.contextmanager
    def server_span(self, name: str, server_round: int) -> Iterator[None]:
        """A span of server work inside the current round (nothing when not started)."""
        if self.tracker is None:
            yield
            return
        span = self.tracker.begin_span(name, parent=self._round_span, round=server_round)
        try:
            yield
        finally:
            self.tracker.end_span(span)

    def record_metrics(self, phase: str, server_round: int, record: Any) -> None:
        """Store the aggregated metrics of a round as an event (for emissions-to-target)."""
        if self.tracker is None or not record:
            return
        values = {f"{phase}_{k}": v for k, v in scalar_metrics(record).items()}
        if values:
            self.tracker.event(
                {"event": "metrics", "round": server_round, "phase": phase, "metrics": values}
            )

    # --- messages ----------------------------------------------------------------------------

    def note_download(self, phase: str, node: int, nbytes: int | None) -> None:
        self._downloads[(phase, node)] = nbytes

    def note_reply(
        self,
        phase: str,
        server_round: int,
        node: int,
        upload_bytes: int | None,
        error: bool,
        record: Any,
        num_examples: int | None = None,
    ) -> None:
        """One client's reply; ``record`` is what the client mod attached (or ``None``; one
        this server cannot read counts as none: the client is unmeasured); ``num_examples``
        what the client reported training or evaluating on."""
        row: dict[str, Any] = {
            "round": server_round,
            "phase": phase,
            "node_id": node,
            "download_bytes": self._downloads.pop((phase, node), None),
            "upload_bytes": upload_bytes,
            "error": error,
            "client_measured_j": None,
            "client_estimated_j": None,
            "client_duration_s": None,
            "client_methods": None,
            "client_basis": None,
            "num_examples": num_examples,
        }
        client = _client_fields(record) if record is not None else None
        if record is not None and client is None and not self._warned_record:
            self._warned_record = True
            warnings.warn(
                f"greentrack: node {node}'s energy record in round {server_round} could not be "
                "read (damaged, or another greentrack version's); such clients are counted "
                "unmeasured (this warning is shown once)",
                RuntimeWarning,
                stacklevel=2,
            )
        if client is not None:
            row.update(client)
            self._windows += _windows(len(self._pending), record)
        self._pending.append(row)

    def flush_replies(self, phase: str, server_round: int) -> None:
        """Write the replies of this phase (after shared-GPU attribution) and a row for every
        client that was sent a message and never replied."""
        rows, windows = self._pending, self._windows
        self._pending, self._windows = [], []
        try:
            _attribute_shared_devices(rows, windows)
        except Exception as e:  # the clients keep their own readings; the round goes on
            warnings.warn(f"greentrack: shared-GPU attribution failed: {e!r}", stacklevel=2)
        for row in rows:
            self._write_fl(row)
        for (p, node), nbytes in list(self._downloads.items()):
            if p == phase:  # sent, but no reply came back
                self._write_fl(
                    {
                        "round": server_round,
                        "phase": phase,
                        "node_id": node,
                        "download_bytes": nbytes,
                        "upload_bytes": None,
                        "error": "no reply",
                    }
                )
                del self._downloads[(p, node)]
        self.flush_fl(every_s=FL_FLUSH_S)

    def _write_fl(self, row: dict[str, Any]) -> None:
        # the live figures count what fl.jsonl holds, row by row
        self._tally.add(row)
        self._round_tally.add(row)
        with self._fl_lock:
            if self._fl is not None:
                self._fl.write(_ENCODE(row) + "\n")

    def flush_fl(self, *, every_s: float = 0.0) -> None:
        """Flush ``fl.jsonl`` to the OS now, or (``every_s``) if that long has passed since
        the last flush, else from a timer when it has: rows reach the file at most about
        ``every_s`` after they were written, at one write per second at most."""
        with self._fl_lock:
            if self._fl is None:
                return
            wait = self._fl_flushed + every_s - time.monotonic()
            if wait <= 0:
                self._fl.flush()
                self._fl_flushed = time.monotonic()
            elif self._fl_timer is None:
                self._fl_timer = threading.Timer(wait, self._flush_due)
                self._fl_timer.daemon = True
                self._fl_timer.start()

    def _flush_due(self) -> None:
        with self._fl_lock:
            self._fl_timer = None
            if self._fl is not None:
                self._fl.flush()
                self._fl_flushed = time.monotonic()
