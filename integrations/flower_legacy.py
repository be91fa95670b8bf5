"""Flower's legacy strategy API (``flwr.server.strategy.Strategy``: configure_fit /
aggregate_fit with FitIns/FitRes), which Flower still ships.

    from flwr.server.strategy import FedAvg
    from greentrack.integrations.flower_legacy import LegacyEmissionsStrategy
    strategy = LegacyEmissionsStrategy(
        FedAvg(), "runs/fl", num_rounds=3, carbon=CarbonSettings.resolve("DE")
    )

Clients keep ``ClientApp(client_fn=..., mods=[energy_mod])``: for legacy replies the mod puts
its record into the FitRes/EvaluateRes metrics under ``greentrack.*`` keys (the legacy
conversion drops other records), and this wrapper removes them before the inner strategy
aggregates. Everything is written as by :class:`~greentrack.integrations.flower.
EmissionsStrategy` (same run directory, spans, ``fl.jsonl`` and forecasts).

Bytes: a legacy strategy never sees Flower's messages, so the bytes of each instruction and
result are those of the record dict Flower's compat layer builds from it (the parameters'
tensors, config or metrics and status, deflated as on the wire); the message envelope around
it (a few hundred bytes) is not included. The Message-API wrapper counts whole messages.

The legacy server has no end-of-run hook: the run stops after the last round's
``aggregate_evaluate`` (or ``aggregate_fit`` when that round evaluates nothing), else at
interpreter exit.
"""

from __future__ import annotations

import atexit
import importlib
from functools import partial
from pathlib import Path
from typing import Any

from greentrack.integrations.flower import RoundRecorder, payload_bytes, pop_legacy_record
from greentrack.integrations.flower.wire import bytes_or_none


def _import_legacy() -> tuple[Any, Any]:
    try:
        strategy = importlib.import_module("flwr.server.strategy")
        compat = importlib.import_module("flwr.compat.common.recorddict_compat")
    except ImportError as e:  # pragma: no cover - flwr without the legacy API
        raise ImportError(
            "this flwr has no legacy strategy API (flwr.server.strategy); use "
            "greentrack.integrations.flower.EmissionsStrategy with the Message API"
        ) from e
    return strategy, compat


legacy_strategy, _compat = _import_legacy()


def _sized(convert: Any, obj: Any) -> int:
    """Bytes of a legacy instruction or result as the record dict Flower converts it to."""
    size: int = payload_bytes(convert(obj))
    return size


def _node(proxy: Any) -> Any:
    cid = str(getattr(proxy, "cid", proxy))
    return int(cid) if cid.isdigit() else cid


class LegacyEmissionsStrategy(legacy_strategy.Strategy):  # type: ignore[misc, name-defined]
    """Wrap a legacy Flower strategy to record energy and bytes of every round.

    Args:
        strategy: the legacy strategy (``flwr.server.strategy.FedAvg``...).
        run_dir: the server's run directory.
        num_rounds: the rounds the server will run (``ServerConfig(num_rounds=...)``): the
            legacy API has no end-of-run hook, so the wrapper stops after the last one.
        **kwargs: as :class:`~greentrack.integrations.flower.EmissionsStrategy`.
    """

    def __init__(
        self, strategy: Any, run_dir: str | Path | None = None, *, num_rounds: int, **kwargs: Any
    ) -> None:
        if num_rounds < 1:
            raise ValueError(f"num_rounds must be >= 1, got {num_rounds}")
        super().__init__()
        self.strategy = strategy
        self.num_rounds = num_rounds
        self.recorder = RoundRecorder(run_dir, api="legacy", **kwargs)
        self.run_dir = self.recorder.run_dir

    def __repr__(self) -> str:
        return f"LegacyEmissionsStrategy({self.strategy!r})"

    def _ensure_started(self) -> None:
        if self.recorder.tracker is None:
            self.recorder.start(self.num_rounds)
            atexit.register(self.recorder.stop)

    def _maybe_finish(self, server_round: int) -> None:
        if server_round >= self.num_rounds or self.recorder.stopped:
            self.recorder.stop()

    def initialize_parameters(self, client_manager: Any) -> Any:
        self._ensure_started()
        return self.strategy.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        self._ensure_started()
        self.recorder.open_round(server_round)
        if self.recorder.stopped:
            return []
        out = list(self.strategy.configure_fit(server_round, parameters, client_manager))
        for proxy, ins in out:
            nbytes = bytes_or_none(
                _sized, partial(_compat.fitins_to_recorddict, keep_input=True), ins
            )
            self.recorder.note_download("train", _node(proxy), nbytes)
        return out

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        self._note(
            "train",
            server_round,
            results,
            failures,
            lambda r: _compat.fitres_to_recorddict(r, True),
        )
        with self.recorder.server_span("aggregate_train", server_round):
            result = self.strategy.aggregate_fit(server_round, results, failures)
        self.recorder.record_metrics("train", server_round, result[1] if result else None)
        return result

    def configure_evaluate(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        if self.recorder.stopped:
            return []
        out = list(self.strategy.configure_evaluate(server_round, parameters, client_manager))
        for proxy, ins in out:
            nbytes = bytes_or_none(
                _sized, partial(_compat.evaluateins_to_recorddict, keep_input=True), ins
            )
            self.recorder.note_download("evaluate", _node(proxy), nbytes)
        if not out:
            self._maybe_finish(server_round)  # no evaluation: this round ends here
        return out

    def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
        self._note("evaluate", server_round, results, failures, _compat.evaluateres_to_recorddict)
        with self.recorder.server_span("aggregate_evaluate", server_round):
            result = self.strategy.aggregate_evaluate(server_round, results, failures)
        loss, metrics = result if result else (None, {})
        self.recorder.record_metrics(
            "evaluate", server_round, {**(metrics or {}), **({"loss": loss} if loss else {})}
        )
        self._maybe_finish(server_round)
        return result

    def evaluate(self, server_round: int, parameters: Any) -> Any:
        with self.recorder.server_span("evaluate_server", server_round):
            return self.strategy.evaluate(server_round, parameters)

    def _note(self, phase: str, server_round: int, results: Any, failures: Any, to_rd: Any) -> None:
        for proxy, res in results:
            record = pop_legacy_record(res.metrics)  # before the inner strategy sees them
            upload = bytes_or_none(_sized, to_rd, res)
            self.recorder.note_reply(
                phase, server_round, _node(proxy), upload, False, record, res.num_examples
            )
        for failure in failures:
            if isinstance(failure, tuple):
                proxy, res = failure
                self.recorder.note_reply(phase, server_round, _node(proxy), None, True, None)
        self.recorder.flush_replies(phase, server_round)
