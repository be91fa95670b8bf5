"""The Message-API strategy wrapper: :class:`EmissionsStrategy`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from greentrack.analysis.budget import Budget
from greentrack.carbon.settings import CarbonSettings
from greentrack.integrations.flower._flwr import strategy as flwr_strategy
from greentrack.integrations.flower.keys import RECORD, decode_record
from greentrack.integrations.flower.recorder import RoundRecorder, num_examples
from greentrack.integrations.flower.wire import bytes_or_none, payload_bytes, payload_bytes_many
from greentrack.meters.base import Meter
from greentrack.tracker import Tracker, TrackerOptions


class EmissionsStrategy(flwr_strategy.Strategy):  # type: ignore[misc]
    """Wrap a Flower strategy (Message API) to record energy and bytes of every round.

    Args:
        strategy: the strategy to wrap (FedAvg, FedProx, ... or your own).
        run_dir, project, name: the server's run directory and labels.
        region, pue, intensity, intensity_source, carbon: the carbon arguments of every entry
            point (``region="US-CA", pue=1.1``, or ``carbon=CarbonSettings...``); none:
            energy only.
        budget: a :class:`greentrack.Budget` for the forecast of the whole run and the running
            total (clients + server + network); ``on_budget="warn"`` (once) or ``"stop"`` (no
            further round is configured: the run ends cleanly after the current round).
        intensity_provider, provider_region: charge the run's own hours with a provider's
            series (``"ukci"``...; see :class:`greentrack.api.Tracker`).
        forecast_after_rounds: forecast the whole run once this many rounds are done.
        prefix: prefix of the live figures' names (:mod:`greentrack.live`).
        meters: explicit server meters (tests); default: discovery.
        options: :class:`greentrack.TrackerOptions`.
        prometheus_port: serve the server's live metrics on ``http://127.0.0.1:PORT/metrics``
            while the rounds run (needs ``greentrack[prometheus]``; docs/prometheus.md).
        network: kWh/GB coefficient for the clients' traffic: a bundled key (see
            docs/methodology.md, e.g. ``"carbon-trust-2021-mobile"`` for cellular clients) or
            a number; ``upload_network`` / ``download_network`` set one direction.
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
    ) -> None:
        self.strategy = strategy
        self.recorder = RoundRecorder(
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
            forecast_after_rounds=forecast_after_rounds,
            prefix=prefix,
            network=network,
            upload_network=upload_network,
            download_network=download_network,
            meters=meters,
            options=options,
            prometheus_port=prometheus_port,
        )
        self.run_dir = self.recorder.run_dir

    @property
    def last_metrics(self) -> dict[str, float]:
        """The live figures after the last round (:mod:`greentrack.live`'s names)."""
        return self.recorder.last.metrics

    @property
    def tracker(self) -> Tracker | None:
        tracker: Tracker | None = self.recorder.tracker
        return tracker

    @property
    def stopped(self) -> bool:
        return bool(self.recorder.stopped)

    # Strategy's round loop calls the four methods below on ``self``.
    def start(
        self,
        grid: Any,
        initial_arrays: Any,
        num_rounds: int = 3,
        timeout: float = 3600,
        **kwargs: Any,
    ) -> Any:
        self.recorder.start(num_rounds, grid)
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
        measured = bytes_or_none(payload_bytes_many, out)
        sizes: list[int | None] = list(measured) if measured is not None else [None] * len(out)
        for m, nbytes in zip(out, sizes, strict=True):
            self.recorder.note_download(phase, int(m.metadata.dst_node_id), nbytes)
        return out

    def _note_replies(self, phase: str, server_round: int, replies: Iterable[Any]) -> list[Any]:
        out = list(replies)  # the inner strategy may iterate more than once
        for r in out:
            error = r.has_error()
            attached = not error and r.has_content() and RECORD in r.content
            record = (decode_record(r.content[RECORD]) or {}) if attached else None
            upload = bytes_or_none(payload_bytes, r)  # as it came over the wire, with our record
            if attached:
                del r.content[RECORD]  # the inner strategy must not see it
            self.recorder.note_reply(
                phase,
                server_round,
                int(r.metadata.src_node_id),
                upload,
                error,
                record,
                num_examples(r),
            )
        self.recorder.flush_replies(phase, server_round)
        return out
