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

Also: a GPU shared by concurrent simulated clients is split among them by time windows
(:mod:`greentrack.analysis.attribution`); clients that cannot measure can be modelled from a
device profile (:mod:`greentrack.meters.profiles`); the legacy strategy API is in
:mod:`greentrack.integrations.flower_legacy`. See docs/flower.md.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from greentrack.analysis.attribution import Window, attribute
from greentrack.analysis.budget import Budget
from greentrack.analysis.metrics import scalar_metrics
from greentrack.analysis.predict import forecast
from greentrack.carbon.accounting import resolve_settings
from greentrack.carbon.network import coefficient, network_kwh
from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import MeterError
from greentrack.ledger import EnergyLedger
from greentrack.meters.base import Meter, split_by_source
from greentrack.meters.profiles import DeviceProfile
from greentrack.meters.profiles import profile as get_profile
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


def payload_bytes_many(messages: Sequence[Any]) -> list[int]:
    """:func:`payload_bytes` of each message, computing a record dict shared by several
    messages (a strategy sends every client the same model) only once: a message's payload
    is its own deflated bytes plus those of its content tree. Identical figures (tested)."""
    content_bytes: dict[int, int] = {}
    out = []
    for m in messages:
        key = id(m.content)
        if key not in content_bytes:
            objects = _inflatable.get_all_nested_objects(m.content)
            content_bytes[key] = sum(len(obj.deflate()) for obj in objects.values())
        out.append(len(m.deflate()) + content_bytes[key])
    return out


def payload_bytes(message: Any) -> int:
    """Bytes of ``message`` as Flower transfers it: the deflated size of every object in its
    tree (computing it deflates the arrays: ~0.2-0.6 s per 100 MiB)."""
    objects = _inflatable.get_all_nested_objects(message)
    return sum(len(obj.deflate()) for obj in objects.values())


# --- client side ----------------------------------------------------------------------------


class EnergyMod:
    """ClientApp mod measuring (or modelling) the energy of the handler it wraps.

    Args:
        meters_factory: ``f() -> meters`` replacing discovery (tests pass fakes); called for
            every message, since a deployed ClientApp may be a fresh process per message.
        discovery: options for discovery when no factory is given.
        profile: a device profile (key of a bundled one, e.g. ``"phone-oneplus7pro"``, or a
            :class:`greentrack.meters.profiles.DeviceProfile`) to model the client's energy
            with: ``model="fallback"`` (default) when the client has nothing it can measure,
            ``model="always"`` to model every client (simulating phones on a server).
        uplink_mbps, downlink_mbps: link rates for the profile's radio energy (transfer time
            = message bytes x 8 / rate); without them the radio is not modelled.

    On a GPU the mod also reports the device-wide energy counter at the start and end of its
    window, so that the server can split a GPU shared by concurrent simulated clients
    (:mod:`greentrack.analysis.attribution`). Error replies pass through untouched; a
    measurement that fails never fails the client (the reply then carries no energy record
    and the server counts the client as unmeasured).
    """

    def __init__(
        self,
        meters_factory: Callable[[], Sequence[Meter]] | None = None,
        discovery: DiscoveryOptions | None = None,
        *,
        profile: str | DeviceProfile | None = None,
        model: str = "fallback",
        uplink_mbps: float | None = None,
        downlink_mbps: float | None = None,
    ) -> None:
        if model not in ("fallback", "always"):
            raise ValueError(f"model must be 'fallback' or 'always', got {model!r}")
        for label, rate in (("uplink_mbps", uplink_mbps), ("downlink_mbps", downlink_mbps)):
            if rate is not None and not rate > 0:
                raise ValueError(f"{label} must be a positive rate in Mbit/s, got {rate}")
        self._factory = meters_factory
        self._discovery = discovery or DiscoveryOptions()
        self.profile = get_profile(profile) if profile is not None else None
        self.model = model
        self.uplink_mbps, self.downlink_mbps = uplink_mbps, downlink_mbps

    def __call__(self, msg: Any, context: Any, call_next: Callable[[Any, Any], Any]) -> Any:
        if self.profile is not None and self.model == "always":
            return self._modeled(msg, context, call_next)
        try:
            meters = list(self._factory()) if self._factory else discover(self._discovery)[0]
            ledger = EnergyLedger(meters, time.monotonic, lambda m, op, e: None)
        except Exception:  # cannot measure here: model it, or run the client anyway
            if self.profile is not None:
                return self._modeled(msg, context, call_next)
            return call_next(msg, context)
        if self.profile is not None and not any(c.source == "measured" for c in ledger.channels):
            for meter in meters:
                meter.close()
            return self._modeled(msg, context, call_next)
        try:
            ledger.zero()
            t0, t0_unix, c0 = time.monotonic(), time.time(), _device_counters(meters)
        except Exception:
            for meter in meters:
                meter.close()
            return call_next(msg, context)
        try:
            reply = call_next(msg, context)
        finally:
            t1_unix, c1 = time.time(), _device_counters(meters)
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
        windows = [
            {"device": dev, "t0": t0_unix, "t1": t1_unix, "e0_j": e0, "e1_j": c1[cid][1]}
            for cid, (dev, e0) in c0.items()
            if cid in c1 and sources.get(cid) == "measured"
        ]
        basis = "measured" if not estimated else "estimated" if not measured else "mixed"
        _attach(
            reply,
            {
                "measured_j": measured,
                "estimated_j": estimated,
                "duration_s": t_end - t0,
                "methods": ";".join(methods) or "none",
                "basis": basis,
                "windows": json.dumps(windows),
            },
        )
        return reply

    def _modeled(self, msg: Any, context: Any, call_next: Callable[[Any, Any], Any]) -> Any:
        """The handler's energy from the device profile (labelled modeled, an estimate)."""
        assert self.profile is not None
        t0 = time.monotonic()
        reply = call_next(msg, context)
        seconds = time.monotonic() - t0
        if reply.has_error() or not reply.has_content():
            return reply
        try:
            radio_wanted = self.uplink_mbps or self.downlink_mbps
            up = payload_bytes(reply) if radio_wanted else 0
            down = payload_bytes(msg) if radio_wanted else 0
            compute_j, radio_j = self.profile.energy_j(
                seconds,
                up,
                down,
                uplink_mbps=self.uplink_mbps,
                downlink_mbps=self.downlink_mbps,
            )
        except Exception:  # never fail the client over a model
            return reply
        _attach(
            reply,
            {
                "measured_j": 0.0,
                "estimated_j": compute_j + radio_j,
                "duration_s": seconds,
                "methods": f"modeled:{self.profile.key}",
                "basis": "modeled",
                "radio_j": radio_j,
                "windows": "[]",
            },
        )
        return reply


LEGACY_METRICS = ("fitres.metrics", "evaluateres.metrics")  # where legacy replies keep metrics
LEGACY_PREFIX = "greentrack."


def _attach(reply: Any, fields: dict[str, Any]) -> None:
    """Attach the client's record: a namespaced ConfigRecord for Message-API servers; for a
    legacy (FitRes/EvaluateRes) reply, prefixed entries of its metrics, since the legacy
    conversion drops any other record."""
    for name in LEGACY_METRICS:
        if name in reply.content.config_records:
            metrics = reply.content.config_records[name]
            for key, value in fields.items():
                metrics[LEGACY_PREFIX + key] = value
            return
    reply.content[RECORD] = flwr_app.ConfigRecord(fields)


def pop_legacy_record(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Remove greentrack's entries from a legacy FitRes/EvaluateRes ``metrics`` dict (the
    inner strategy must not aggregate them) and return them as a record."""
    keys = [k for k in metrics if k.startswith(LEGACY_PREFIX)]
    if not keys:
        return None
    return {k[len(LEGACY_PREFIX) :]: metrics.pop(k) for k in keys}


def _num_examples(reply: Any) -> int | None:
    """The ``num-examples`` a Message-API reply reports (FedAvg's weighting key)."""
    if reply.has_error() or not reply.has_content():
        return None
    for record in reply.content.metric_records.values():
        value = record.get("num-examples")
        if isinstance(value, int | float):
            return int(value)
    return None


def _windows(key: int, record: Any) -> list[Window]:
    """The shared-device windows a client reported (none from older mods or models)."""
    try:
        raw = json.loads(str(record.get("windows", "[]")) or "[]")
        return [Window(key, str(w["device"]), w["t0"], w["t1"], w["e0_j"], w["e1_j"]) for w in raw]
    except (ValueError, KeyError, TypeError):
        return []


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
        row["attribution"] = f"shared device(s) {', '.join(devices)}: split by time windows"


def _device_counters(meters: Sequence[Meter]) -> dict[str, tuple[str, float]]:
    """Device-wide counters of the meters that have them (NVML); empty when a read fails."""
    out: dict[str, tuple[str, float]] = {}
    for meter in meters:
        read = getattr(meter, "device_counters_j", None)
        if read is None:
            continue
        try:
            out.update(read())
        except Exception:
            return {}
    return out


energy_mod = EnergyMod()
"""The default client mod: ``ClientApp(mods=[energy_mod])``."""


# --- server side ----------------------------------------------------------------------------


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
        meters: Sequence[Meter] | None = None,
        tracker_options: dict[str, Any] | None = None,
        network: str | float | None = None,
        upload_network: str | float | None = None,
        download_network: str | float | None = None,
        budget_kwh: float | None = None,
        budget_kgco2e: float | None = None,
        on_budget: str = "warn",
        api: str = "message",
    ) -> None:
        self.upload_network = coefficient(upload_network if upload_network is not None else network)
        self.download_network = coefficient(
            download_network if download_network is not None else network
        )
        self.budget = Budget(budget_kwh, budget_kgco2e, on_budget)
        self.stopped = False
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
        self.carbon = resolve_settings(
            region, intensity=intensity, intensity_source=intensity_source, pue=pue
        )
        self._options = TrackerOptions.from_kwargs(**(tracker_options or {}))
        self._meters = meters
        self._project, self._name, self._api = project, name, api
        self.tracker: Tracker | None = None
        self._round_span: Span | None = None
        self.round = 0
        self.num_rounds = 0
        self._downloads: dict[tuple[str, int], int] = {}
        self._fl: Any = None
        self._round_client_j = 0.0
        self._per_round_j: list[float] = []  # server + measured/estimated client energy
        self._bytes = {"upload": 0, "download": 0}
        self._warned_budget = False
        self._pending: list[dict[str, Any]] = []
        self._windows: list[Window] = []

    @property
    def running(self) -> bool:
        return self.tracker is not None and self.tracker.running

    def start(self, num_rounds: int) -> None:
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
                    "network": {
                        "upload": asdict(self.upload_network),
                        "download": asdict(self.download_network),
                    },
                },
            },
        )
        self.num_rounds = num_rounds
        self.tracker.start()
        self._fl = (self.run_dir / FL_FILE).open("a", encoding="utf-8")

    def stop(self, status: str = "finished") -> None:
        if self.tracker is None or not self.tracker.running:
            return
        try:
            self.close_round()
        finally:
            if self._fl is not None:
                self._fl.close()
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

    def close_round(self) -> None:
        tracker, span = self.tracker, self._round_span
        if tracker is not None and span is not None and span.record is None:
            record = tracker.end_span(span)
            self._per_round_j.append(record.total_energy_j + self._round_client_j)
            f = forecast(self._per_round_j, max(0, self.num_rounds - self.round))
            tracker.writer.write_event({"event": "forecast", "round": self.round, **f.to_dict("j")})
            self._check_budget(f.done, f.point)
        self._round_span = None
        self._round_client_j = 0.0

    def _check_budget(self, done_j: float, forecast_j: float) -> None:
        """Server + clients (measured, estimated) + network so far, and the forecast of the
        whole run (network scaled by rounds), against the budget."""
        if not self.budget.active or self.tracker is None:
            return
        net_kwh = network_kwh(self._bytes["upload"], self.upload_network) + network_kwh(
            self._bytes["download"], self.download_network
        )
        scale = self.num_rounds / self.round if self.round else 1.0
        total_kwh, forecast_kwh = done_j / 3.6e6 + net_kwh, forecast_j / 3.6e6 + net_kwh * scale
        g = self.carbon.pue.value * self.carbon.intensity.gco2e_per_kwh if self.carbon else 0
        over = self.budget.check(
            total_kwh=total_kwh,
            forecast_kwh=forecast_kwh,
            total_kg=total_kwh * g / 1000,
            forecast_kg=forecast_kwh * g / 1000,
        )
        if over is None:
            return
        message = f"greentrack energy budget after round {self.round}: {over}"
        if self.budget.on_budget == "stop":
            self.stopped = True
            message += ": no further round"
        if not self._warned_budget or self.stopped:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            self._warned_budget = True
        self.tracker.writer.write_event({"event": "budget", "message": message})

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
            self.tracker.writer.write_event(
                {"event": "metrics", "round": server_round, "phase": phase, "metrics": values}
            )

    # --- messages ----------------------------------------------------------------------------

    def note_download(self, phase: str, node: int, nbytes: int) -> None:
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
        """One client's reply; ``record`` is what the client mod attached (or ``None``);
        ``num_examples`` what the client reported training or evaluating on."""
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
        if record is not None:
            row.update(
                client_measured_j=float(record["measured_j"]),
                client_estimated_j=float(record["estimated_j"]),
                client_duration_s=float(record["duration_s"]),
                client_methods=str(record["methods"]),
                client_basis=str(record.get("basis", "measured")),
            )
            self._windows += _windows(len(self._pending), record)
        self._pending.append(row)

    def flush_replies(self, phase: str, server_round: int) -> None:
        """Write the replies of this phase (after shared-GPU attribution) and a row for every
        client that was sent a message and never replied."""
        rows, windows = self._pending, self._windows
        self._pending, self._windows = [], []
        _attribute_shared_devices(rows, windows)
        for row in rows:
            self._round_client_j += (row["client_measured_j"] or 0.0) + (
                row["client_estimated_j"] or 0.0
            )
            self._bytes["upload"] += row["upload_bytes"] or 0
            self._bytes["download"] += row["download_bytes"] or 0
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

    def _write_fl(self, row: dict[str, Any]) -> None:
        if self._fl is not None:
            self._fl.write(json.dumps(row) + "\n")
            self._fl.flush()


class EmissionsStrategy(flwr_strategy.Strategy):  # type: ignore[misc, name-defined]
    """Wrap a Flower strategy (Message API) to record energy and bytes of every round.

    Args:
        strategy: the strategy to wrap (FedAvg, FedProx, ... or your own).
        run_dir, project, name: the server's run directory and labels.
        region, pue, intensity, intensity_source: as for :func:`greentrack.track`.
        meters: explicit server meters (tests); default: discovery.
        tracker_options: :class:`greentrack.TrackerOptions` keyword fields.
        network: kWh/GB coefficient for the clients' traffic: a bundled key (see
            docs/methodology.md, e.g. ``"carbon-trust-2021-mobile"`` for cellular clients) or
            a number; ``upload_network`` / ``download_network`` set one direction.
        budget_kwh, budget_kgco2e: limits for the forecast of the whole run and the running
            total (server + clients + network); ``on_budget="warn"`` (once) or ``"stop"``
            (no further round is configured: the run ends cleanly after the current round).
    """

    def __init__(self, strategy: Any, run_dir: str | Path | None = None, **kwargs: Any) -> None:
        self.strategy = strategy
        self.recorder = RoundRecorder(run_dir, **kwargs)
        self.run_dir = self.recorder.run_dir

    @property
    def tracker(self) -> Tracker | None:
        return self.recorder.tracker

    @property
    def stopped(self) -> bool:
        return self.recorder.stopped

    # Strategy's round loop calls the four methods below on ``self``.
    def start(
        self,
        grid: Any,
        initial_arrays: Any,
        num_rounds: int = 3,
        timeout: float = 3600,
        **kwargs: Any,
    ) -> Any:
        self.recorder.start(num_rounds)
        status = "finished"
        try:
            return super().start(grid, initial_arrays, num_rounds, timeout, **kwargs)
        except BaseException as e:
            status = f"failed: {type(e).__name__}"
            raise
        finally:
            self.recorder.stop(status)

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: Any, config: Any, grid: Any
    ) -> Iterable[Any]:
        self.recorder.open_round(server_round)
        if self.recorder.stopped:
            return []  # over budget: no more rounds
        return self._note_downloads(
            "train", self.strategy.configure_train(server_round, arrays, config, grid)
        )

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> Any:
        replies = self._note_replies("train", server_round, replies)
        if self.recorder.stopped and not replies:
            return None, None  # the round was not configured: nothing to aggregate
        with self.recorder.server_span("aggregate_train", server_round):
            result = self.strategy.aggregate_train(server_round, replies)
        self.recorder.record_metrics("train", server_round, result[1] if result else None)
        return result

    def configure_evaluate(
        self, server_round: int, arrays: Any, config: Any, grid: Any
    ) -> Iterable[Any]:
        self.recorder.open_round(server_round)
        if self.recorder.stopped:
            return []
        return self._note_downloads(
            "evaluate", self.strategy.configure_evaluate(server_round, arrays, config, grid)
        )

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Any]) -> Any:
        replies = self._note_replies("evaluate", server_round, replies)
        if self.recorder.stopped and not replies:
            return None
        with self.recorder.server_span("aggregate_evaluate", server_round):
            result = self.strategy.aggregate_evaluate(server_round, replies)
        self.recorder.record_metrics("evaluate", server_round, result)
        return result

    def _note_downloads(self, phase: str, messages: Iterable[Any]) -> list[Any]:
        out = list(messages)  # configure_* may return a generator: materialise once
        for m, nbytes in zip(out, payload_bytes_many(out), strict=True):
            self.recorder.note_download(phase, int(m.metadata.dst_node_id), nbytes)
        return out

    def _note_replies(self, phase: str, server_round: int, replies: Iterable[Any]) -> list[Any]:
        out = list(replies)  # the inner strategy may iterate more than once
        for r in out:
            record = None
            if not r.has_error() and r.has_content() and RECORD in r.content:
                record = dict(r.content[RECORD])
            upload = payload_bytes(r)  # as it came over the wire, our record included
            if record is not None:
                del r.content[RECORD]  # the inner strategy must not see it
            self.recorder.note_reply(
                phase,
                server_round,
                int(r.metadata.src_node_id),
                upload,
                r.has_error(),
                record,
                _num_examples(r),
            )
        self.recorder.flush_replies(phase, server_round)
        return out
