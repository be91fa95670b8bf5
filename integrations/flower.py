"""Flower integration (Message API): energy and bytes of federated rounds.

Server side, wrap any strategy::

    from flwr.serverapp.strategy import FedAvg
    from greentrack.integrations.flower import EmissionsStrategy, energy_mod
    strategy = EmissionsStrategy(FedAvg(), run_dir="runs/fl", region="US-CA", pue=1.1)

Client side, add the mod::

    app = ClientApp(mods=[energy_mod])

What is recorded, per round and per client (``fl.jsonl`` in the run directory):

* ``download_bytes`` / ``upload_bytes``: the payload of each message as Flower moves it, i.e.
  the sum of the deflated objects of the message tree (message, record dict, records, arrays,
  array chunks); measured by the server on the messages it sends and receives, so exact for
  both directions, separately for train and evaluate.
* client energy: measured by :data:`energy_mod` around the ClientApp's handler with the
  client's own meters (NVML/RAPL, else the labelled estimate) and returned in a ConfigRecord
  named :data:`RECORD`; the server removes that record before the inner strategy aggregates,
  so strategies that validate replies (FedAvg) never see it.
* server energy: spans ``round`` > ``aggregate_train`` / ``aggregate_evaluate`` in the run.

Not yet here (see the issue notes): attribution of one GPU's energy among simulated clients
that share it, modelled device profiles for clients that cannot measure, the legacy
``flwr.server.strategy`` API.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from greentrack.analysis.metrics import scalar_metrics
from greentrack.analysis.predict import forecast
from greentrack.carbon.accounting import resolve_settings
from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import MeterError
from greentrack.ledger import EnergyLedger
from greentrack.meters.base import Meter, split_by_source
from greentrack.tracker import Span, Tracker, TrackerOptions, default_run_dir


def _import_flwr() -> tuple[Any, Any, Any]:
    try:
        app = importlib.import_module("flwr.app")
        strategy = importlib.import_module("flwr.serverapp.strategy")
        inflatable = importlib.import_module("flwr.supercore.inflatable.inflatable_object")
    except ImportError as e:
        raise ImportError(
            "the Flower integration needs flwr: pip install 'greentrack[flower]'"
        ) from e
    return app, strategy, inflatable


flwr_app, flwr_strategy, _inflatable = _import_flwr()

RECORD = "greentrack.energy"  # ConfigRecord the client mod attaches to replies
FL_FILE = "fl.jsonl"


def payload_bytes(message: Any) -> int:
    """Bytes of ``message`` as Flower transfers it: the deflated size of every object in its
    tree (computing it deflates the arrays: ~0.2-0.6 s per 100 MiB)."""
    objects = _inflatable.get_all_nested_objects(message)
    return sum(len(obj.deflate()) for obj in objects.values())


# --- client side ----------------------------------------------------------------------------


class EnergyMod:
    """ClientApp mod measuring the energy of the handler it wraps.

    Args:
        meters_factory: ``f() -> meters`` replacing discovery (tests pass fakes); called for
            every message, since a deployed ClientApp may be a fresh process per message.
        discovery: options for discovery when no factory is given.

    Error replies pass through untouched; a measurement that fails never fails the client (the
    reply then carries no energy record and the server counts the client as unmeasured).
    """

    def __init__(
        self,
        meters_factory: Callable[[], Sequence[Meter]] | None = None,
        discovery: DiscoveryOptions | None = None,
    ) -> None:
        self._factory = meters_factory
        self._discovery = discovery or DiscoveryOptions()

    def __call__(self, msg: Any, context: Any, call_next: Callable[[Any, Any], Any]) -> Any:
        try:
            meters = list(self._factory()) if self._factory else discover(self._discovery)[0]
            ledger = EnergyLedger(meters, time.monotonic, lambda m, op, e: None)
            ledger.zero()
            t0 = time.monotonic()
        except Exception:  # cannot measure here: run the client anyway
            return call_next(msg, context)
        try:
            reply = call_next(msg, context)
        finally:
            try:
                t_end, totals = ledger.snapshot()
            except MeterError:
                totals, t_end = {}, time.monotonic()
            for meter in meters:
                meter.close()
        if reply.has_error() or not reply.has_content():
            return reply
        sources = {c.id: c.source for c in ledger.channels}
        measured, estimated = split_by_source(totals, sources)
        methods = sorted({f"{c.component}:{c.method}" for c in ledger.channels})
        reply.content[RECORD] = flwr_app.ConfigRecord(
            {
                "measured_j": measured,
                "estimated_j": estimated,
                "duration_s": t_end - t0,
                "methods": ";".join(methods) or "none",
            }
        )
        return reply


energy_mod = EnergyMod()
"""The default client mod: ``ClientApp(mods=[energy_mod])``."""


# --- server side ----------------------------------------------------------------------------


class EmissionsStrategy(flwr_strategy.Strategy):  # type: ignore[misc, name-defined]
    """Wrap a Flower strategy to record energy and bytes of every round.

    Args:
        strategy: the strategy to wrap (FedAvg, FedProx, ... or your own).
        run_dir, project, name: the server's run directory and labels.
        region, pue, intensity, intensity_source: as for :func:`greentrack.track`.
        meters: explicit server meters (tests); default: discovery.
        tracker_options: :class:`greentrack.TrackerOptions` keyword fields.
    """

    def __init__(
        self,
        strategy: Any,
        run_dir: str | Path | None = None,
        *,
        project: str | None = None,
        name: str | None = None,
        region: str | None = None,
        pue: float | str | None = None,
        intensity: float | None = None,
        intensity_source: str | None = None,
        meters: Sequence[Meter] | None = None,
        tracker_options: dict[str, Any] | None = None,
    ) -> None:
        self.strategy = strategy
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self._carbon = resolve_settings(
            region, intensity=intensity, intensity_source=intensity_source, pue=pue
        )
        self._options = TrackerOptions.from_kwargs(**(tracker_options or {}))
        self._meters = meters
        self._project, self._name = project, name
        self.tracker: Tracker | None = None
        self._round_span: Span | None = None
        self._round = 0
        self._downloads: dict[tuple[str, int], int] = {}
        self._fl: Any = None
        self._num_rounds = 0
        self._round_client_j = 0.0
        self._per_round_j: list[float] = []  # server + measured/estimated client energy

    # Strategy's round loop calls the four methods below on ``self``.
    def start(
        self,
        grid: Any,
        initial_arrays: Any,
        num_rounds: int = 3,
        timeout: float = 3600,
        **kwargs: Any,
    ) -> Any:
        self.tracker = Tracker(
            self.run_dir,
            project=self._project,
            name=self._name,
            meters=self._meters,
            options=self._options,
            carbon=self._carbon,
            extra_meta={"framework": "flwr", "fl_role": "server"},
        )
        self._num_rounds = num_rounds
        with self.tracker:
            self._fl = (self.run_dir / FL_FILE).open("a", encoding="utf-8")
            try:
                return super().start(grid, initial_arrays, num_rounds, timeout, **kwargs)
            finally:
                self._close_round()
                self._fl.close()

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: Any, config: Any, grid: Any
    ) -> Iterable[Any]:
        self._open_round(server_round)
        return self._note_downloads(
            "train", self.strategy.configure_train(server_round, arrays, config, grid)
        )

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> Any:
        replies = self._note_replies("train", server_round, replies)
        with self._server_span("aggregate_train", server_round):
            result = self.strategy.aggregate_train(server_round, replies)
        self._record_metrics("train", server_round, result[1] if result else None)
        return result

    def configure_evaluate(
        self, server_round: int, arrays: Any, config: Any, grid: Any
    ) -> Iterable[Any]:
        self._open_round(server_round)
        return self._note_downloads(
            "evaluate", self.strategy.configure_evaluate(server_round, arrays, config, grid)
        )

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Any]) -> Any:
        replies = self._note_replies("evaluate", server_round, replies)
        with self._server_span("aggregate_evaluate", server_round):
            result = self.strategy.aggregate_evaluate(server_round, replies)
        self._record_metrics("evaluate", server_round, result)
        return result

    # --- bookkeeping ---------------------------------------------------------------------

    def _record_metrics(self, phase: str, server_round: int, record: Any) -> None:
        """Store the aggregated metrics of a round as an event (for emissions-to-target)."""
        if self.tracker is None or not record:
            return
        values = {f"{phase}_{k}": v for k, v in scalar_metrics(record).items()}
        if values:
            self.tracker.writer.write_event(
                {"event": "metrics", "round": server_round, "phase": phase, "metrics": values}
            )

    def _open_round(self, server_round: int) -> None:
        if self.tracker is None or server_round == self._round:
            return
        self._close_round()
        self._round = server_round
        self._round_span = self.tracker.begin_span("round", parent=None, round=server_round)

    def _close_round(self) -> None:
        tracker, span = self.tracker, self._round_span
        if tracker is not None and span is not None and span.record is None:
            record = tracker.end_span(span)
            self._per_round_j.append(record.total_energy_j + self._round_client_j)
            f = forecast(self._per_round_j, max(0, self._num_rounds - self._round))
            tracker.writer.write_event(
                {"event": "forecast", "round": self._round, **f.to_dict("j")}
            )
        self._round_span = None
        self._round_client_j = 0.0

    @contextlib.contextmanager
    def _server_span(self, name: str, server_round: int) -> Iterator[None]:
        """A span of server work inside the current round (nothing when not started)."""
        if self.tracker is None:
            yield
            return
        span = self.tracker.begin_span(name, parent=self._round_span, round=server_round)
        try:
            yield
        finally:
            self.tracker.end_span(span)

    def _note_downloads(self, phase: str, messages: Iterable[Any]) -> list[Any]:
        out = list(messages)  # configure_* may return a generator: materialise once
        for m in out:
            self._downloads[(phase, int(m.metadata.dst_node_id))] = payload_bytes(m)
        return out

    def _note_replies(self, phase: str, server_round: int, replies: Iterable[Any]) -> list[Any]:
        out = list(replies)  # the inner strategy may iterate more than once
        for r in out:
            node = int(r.metadata.src_node_id)
            row: dict[str, Any] = {
                "round": server_round,
                "phase": phase,
                "node_id": node,
                "download_bytes": self._downloads.pop((phase, node), None),
                "upload_bytes": payload_bytes(r),
                "error": r.has_error(),
                "client_measured_j": None,
                "client_estimated_j": None,
                "client_duration_s": None,
                "client_methods": None,
            }
            if not r.has_error() and r.has_content() and RECORD in r.content:
                rec = r.content[RECORD]
                self._round_client_j += float(rec["measured_j"]) + float(rec["estimated_j"])
                row.update(
                    client_measured_j=float(rec["measured_j"]),
                    client_estimated_j=float(rec["estimated_j"]),
                    client_duration_s=float(rec["duration_s"]),
                    client_methods=str(rec["methods"]),
                )
                del r.content[RECORD]  # the inner strategy must not see it
            if self._fl is not None:
                self._fl.write(json.dumps(row) + "\n")
                self._fl.flush()
        for (p, node), nbytes in list(self._downloads.items()):
            if p == phase:  # sent, but no reply came back
                if self._fl is not None:
                    self._fl.write(
                        json.dumps(
                            {
                                "round": server_round,
                                "phase": phase,
                                "node_id": node,
                                "download_bytes": nbytes,
                                "upload_bytes": None,
                                "error": "no reply",
                            }
                        )
                        + "\n"
                    )
                del self._downloads[(p, node)]
        return out
