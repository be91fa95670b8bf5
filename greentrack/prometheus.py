"""Live metrics for Prometheus: ``/metrics`` over HTTP and a node_exporter textfile.

``track(prometheus_port=9464)``, ``greentrack run --prometheus-port 9464`` and the
integrations (``prometheus_port=``) serve, while the run is measured, the figures the account
will give it (docs/prometheus.md):

=====================================================  =========================================
``greentrack_energy_joules_total``                     energy per channel (labels ``channel``,
                                                       ``component``, ``provenance``)
``greentrack_it_energy_joules_total``                  the process's IT energy, by ``provenance``
``greentrack_power_watts``                             average power per channel over the last
                                                       timeline row
``greentrack_co2e_grams_total``                        CO2e of the IT energy (x PUE x intensity)
``greentrack_co2e_low_grams_total``, ``..._high_...``  the ends of its range
``greentrack_carbon_intensity_grams_per_kwh``,         the run's carbon basis (its labels: region,
``greentrack_pue``                                     source)
``greentrack_run_info``, ``greentrack_running``        the run, and whether it is still measured
=====================================================  =========================================

Every series carries ``run_id``, ``rank`` and ``host``. Energies are the channels' last
counter readings (:meth:`greentrack.ledger.EnergyLedger.counted_j`), so the counters never
decrease, and their final values are the run's totals, as its account counts them. CO2e is
charged by the account's rules (:class:`greentrack.account.LiveAccount`: the live figures of
every integration) at the run's annual basis.

Nothing here runs on the sampler's thread: the collector reads the latest cumulative reading
when Prometheus scrapes (or when the textfile is due), on the scraping thread. A port in use,
an address that cannot be bound, an unwritable textfile or a missing ``prometheus_client`` is
one warning; the run is measured as without them.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack._version import __version__
from greentrack.account import LiveAccount
from greentrack.carbon.settings import CarbonSettings
from greentrack.rundir.fs import REAL, FileSystem
from greentrack.tracker import PrometheusOptions, Tracker, safe_warn

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger("greentrack")

STOP_WAIT_S = 5.0
"""How long stopping waits for the textfile thread's write in progress, at most."""
INSTALL = "pip install 'greentrack[prometheus]'"


@dataclass(frozen=True, slots=True)
class RunLabels:
    """What every series says about the process it comes from.

    >>> RunLabels("9f72a5e6", 1, "node7").values()
    ['9f72a5e6', '1', 'node7']
    """

    run_id: str
    rank: int
    host: str

    def names(self) -> list[str]:
        return ["run_id", "rank", "host"]

    def values(self) -> list[str]:
        return [self.run_id, str(self.rank), self.host]


class RunCollector:
    """A ``prometheus_client`` collector over one tracker: each :meth:`collect` reads the
    latest cumulative energy (no meter is read) and the last row's power.

    The published energy of a channel never decreases (the largest reading published so
    far); once :meth:`finish` gives the final totals, they are published.
    """

    def __init__(self, tracker: Tracker, labels: RunLabels, live: LiveAccount) -> None:
        self._tracker = tracker
        self._labels = labels
        self._live = live
        self._channels = list(tracker.channels)
        self._lock = threading.Lock()
        self._high: dict[str, float] = {c.id: 0.0 for c in self._channels}
        self._final: dict[str, float] | None = None

    def finish(self, final_j: Mapping[str, float]) -> None:
        """Publish the run's final totals from now on (the tracker has stopped)."""
        with self._lock:
            self._final = dict(final_j)

    def energy_j(self) -> dict[str, float]:
        """The energy per channel published now, J."""
        return self._reading()[0]

    def _reading(self) -> tuple[dict[str, float], bool]:
        """(energy per channel, J; whether the run is still measured), read together."""
        with self._lock:
            final = self._final
            now = final if final is not None else self._tracker.ledger.counted_j()
            for cid, joules in now.items():
                if cid in self._high and math.isfinite(joules):
                    self._high[cid] = max(self._high[cid], joules)
            return dict(self._high), final is None

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        energy, running = self._reading()
        power = self._tracker.sampler.power_w
        names, values = self._labels.names(), self._labels.values()
        channel_names = [*names, "channel", "component", "provenance"]
        joules = CounterMetricFamily(
            "greentrack_energy_joules",
            "Energy per channel since the run started, J: the last counter reading (NVML "
            "every counter_interval_s, RAPL and estimates every row) or the power integral",
            labels=channel_names,
        )
        watts = GaugeMetricFamily(
            "greentrack_power_watts",
            "Average power per channel over the last timeline row, W",
            labels=channel_names,
        )
        by_provenance = {"measured": 0.0, "estimated": 0.0}
        for c in self._channels:
            labels = [*values, c.id, c.component, c.source]
            joules.add_metric(labels, energy[c.id])
            if c.id in power:
                watts.add_metric(labels, power[c.id])
            by_provenance[c.source] += energy[c.id]
        it = CounterMetricFamily(
            "greentrack_it_energy_joules",
            "IT energy of this process since the run started, J, by provenance",
            labels=[*names, "provenance"],
        )
        for provenance, total_j in by_provenance.items():
            it.add_metric([*values, provenance], total_j)
        yield joules
        yield it
        yield watts
        yield from self._carbon(energy, names, values)
        info = InfoMetricFamily("greentrack_run", "The run this process measures", labels=names)
        info.add_metric(values, {"run_dir": str(self._tracker.run_dir), "version": __version__})
        yield info
        running_gauge = GaugeMetricFamily(
            "greentrack_running",
            "1 while the run is measured, 0 once it has stopped (the values are final)",
            labels=names,
        )
        running_gauge.add_metric(values, 1.0 if running else 0.0)
        yield running_gauge

    def _carbon(
        self, energy: Mapping[str, float], names: list[str], values: list[str]
    ) -> Iterator[Any]:
        """CO2e of the IT energy by the account's rules, and the basis it is charged at."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        basis = self._live.basis
        if basis is None:
            return
        measured, estimated = self._live.split_kwh(energy)
        co2e = self._live.co2e_g(measured + estimated)
        if co2e is None:
            return
        carbon_names = [*names, "region"]
        carbon_values = [*values, str(basis.region or "")]
        for suffix, value, what in (
            ("", co2e.value, ""),
            ("_low", co2e.low, ": the low end of its range"),
            ("_high", co2e.high, ": the high end of its range"),
        ):
            family = CounterMetricFamily(
                f"greentrack_co2e{suffix}_grams",
                f"CO2e of this process's IT energy (x PUE x intensity), g{what}",
                labels=carbon_names,
            )
            family.add_metric(carbon_values, value)
            yield family
        intensity = GaugeMetricFamily(
            "greentrack_carbon_intensity_grams_per_kwh",
            "Carbon intensity the CO2e is charged at, gCO2e/kWh (annual basis)",
            labels=[*carbon_names, "source"],
        )
        intensity.add_metric([*carbon_values, str(basis.source or "")], basis.intensity.value)
        yield intensity
        pue = GaugeMetricFamily(
            "greentrack_pue", "Power usage effectiveness applied", labels=[*names, "source"]
        )
        pue.add_metric([*values, basis.pue_source], basis.pue.value)
        yield pue


class PrometheusExporter:
    """One run's live metrics: a registry of its own (two runs in one process never share
    series), served on HTTP and/or written to a node_exporter textfile.

    Args:
        collector: the run's :class:`RunCollector`.
        options: what to serve (:class:`greentrack.tracker.PrometheusOptions`).
        local_rank, rank: this process's place on its node and in its job: it serves
            ``port + local_rank`` and rank R > 0 writes ``<stem>-rank<R>.prom``.
        fs: the file system the textfile is written through.

    Attributes: ``registry`` (read it in-process: ``prometheus_client.generate_latest``),
    ``port`` (the port bound, ``None`` when not serving), ``textfile`` (the file written).
    """

    def __init__(
        self,
        collector: RunCollector,
        options: PrometheusOptions,
        *,
        local_rank: int = 0,
        rank: int = 0,
        fs: FileSystem = REAL,
    ) -> None:
        from prometheus_client import CollectorRegistry

        self.collector = collector
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.options = options
        self.port: int | None = None
        self.address = options.address
        # port 0 asks for any free port, on every rank
        self._want_port = options.port + local_rank if options.port else options.port
        self.textfile = _rank_file(options.textfile, rank) if options.textfile else None
        self._fs = fs
        self._server: Any = None
        self._stop = threading.Event()
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        self.write_failures = 0

    def start(self) -> None:
        """Bind the server and start the textfile's writer; a failure of either is one
        warning and leaves the other running."""
        if self._want_port is not None:
            self._serve(self._want_port)
        if self.textfile is not None:
            self._thread = threading.Thread(
                target=self._loop, name="greentrack-prometheus-textfile", daemon=True
            )
            self._thread.start()

    def _serve(self, port: int) -> None:
        from prometheus_client import start_http_server

        where = f"{self.address}:{port}"
        if port > 65535:
            safe_warn(
                f"greentrack cannot serve Prometheus metrics on {where}: the port of this rank "
                "(prometheus_port + local rank) is above 65535; the run is measured without "
                "them (pass a lower prometheus_port)",
                RuntimeWarning,
            )
            return
        try:
            self._server, _ = start_http_server(port, addr=self.address, registry=self.registry)
        except OSError as e:
            safe_warn(
                f"greentrack cannot serve Prometheus metrics on {where} ({e.strerror or e}); "
                "the run is measured without them (pass a free port, --prometheus-port or "
                "prometheus_port=, or an address of this machine, --prometheus-address or "
                "prometheus_address=)",
                RuntimeWarning,
            )
            return
        self.port = int(self._server.server_port)

    def _loop(self) -> None:
        while True:
            self.write_textfile()
            if self._stop.wait(self.options.textfile_interval_s):
                return

    def write_textfile(self) -> None:
        """Write the metrics to the textfile, atomically (node_exporter never reads half a
        file); a failure is counted, and warned about once."""
        if self.textfile is None:
            return
        from prometheus_client import generate_latest

        with self._writing:
            try:
                self._fs.replace_atomic(self.textfile, generate_latest(self.registry).decode())
            except Exception as e:  # a full disk or a missing folder: the run goes on
                self.write_failures += 1
                if self.write_failures == 1:
                    safe_warn(
                        f"greentrack cannot write the Prometheus textfile {self.textfile} "
                        f"({type(e).__name__}: {e}); the run is measured without it (pass a "
                        "prometheus_textfile in a folder you can write to)",
                        RuntimeWarning,
                    )

    def finish(self, final_j: Mapping[str, float]) -> None:
        """Publish the final totals, write them to the textfile and close the server (its
        port is free again when this returns). Idempotent; never raises."""
        self.collector.finish(final_j)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            self._thread = None
            self.write_textfile()
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown()  # returns within the server's poll interval (0.5 s)
                server.server_close()
            except Exception as e:  # the run has stopped and is written: only say so
                log.warning("closing the Prometheus server on port %s failed: %r", self.port, e)


def publish(tracker: Tracker) -> PrometheusExporter | None:
    """Start the live metrics ``tracker.options.prometheus`` asks for, over the started
    ``tracker``; ``None`` (after one warning) when ``prometheus_client`` is missing. Never
    raises: live metrics must not stop the run they describe."""
    options = tracker.options.prometheus
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        safe_warn(
            f"greentrack's live Prometheus metrics need prometheus_client ({INSTALL}); the run "
            "is measured without them",
            RuntimeWarning,
        )
        return None
    info = tracker.options.discovery.rank
    carbon = tracker.carbon if isinstance(tracker.carbon, CarbonSettings) else None
    try:
        labels = RunLabels(tracker.run_id, info.rank if info else 0, socket.gethostname())
        collector = RunCollector(tracker, labels, LiveAccount(carbon, tracker.channels))
        exporter = PrometheusExporter(
            collector,
            options,
            local_rank=info.local_rank if info else 0,
            rank=info.rank if info else 0,
        )
        exporter.start()
    except Exception as e:  # a bug here must not reach the training loop
        safe_warn(
            f"greentrack cannot publish live Prometheus metrics ({type(e).__name__}: {e}); "
            "the run is measured without them",
            RuntimeWarning,
        )
        return None
    return exporter


def _rank_file(path: Path, rank: int) -> Path:
    """The textfile rank ``rank`` writes: ``path`` itself for rank 0.

    >>> _rank_file(Path("/var/lib/node_exporter/greentrack.prom"), 3).name
    'greentrack-rank3.prom'
    """
    return path if rank == 0 else path.with_name(f"{path.stem}-rank{rank}{path.suffix}")
