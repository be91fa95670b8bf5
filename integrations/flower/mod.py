"""The client side: :class:`EnergyMod`, a ClientApp mod that measures (or models) the energy
of the handler it wraps and returns it with the reply."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from greentrack.discovery import DiscoveryOptions, discover
from greentrack.errors import MeterError
from greentrack.integrations.flower._flwr import app as flwr_app
from greentrack.integrations.flower.keys import LEGACY_METRICS, LEGACY_PREFIX, RECORD
from greentrack.integrations.flower.wire import payload_bytes
from greentrack.ledger import EnergyLedger
from greentrack.meters.base import Meter, split_by_source
from greentrack.meters.profiles import DeviceProfile
from greentrack.meters.profiles import profile as get_profile

_HOST = socket.gethostname()
_ANCESTORS: list[int] = []  # this process's parents, found once per process


def _ancestors() -> list[int]:
    """Pids of this process's parents (a Ray worker is a descendant of the server process in
    a simulation, so the server's process-level CPU estimate includes it)."""
    if not _ANCESTORS:
        try:
            import psutil

            _ANCESTORS.extend(p.pid for p in psutil.Process().parents())
        except Exception:
            _ANCESTORS.append(os.getppid())
    return _ANCESTORS


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
        components: dict[str, list[float]] = {}
        for ch in ledger.channels:
            value = totals.get(ch.id)
            if value is None or value != value:
                continue
            pair = components.setdefault(ch.component, [0.0, 0.0])
            pair[0 if ch.source == "measured" else 1] += float(value)
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
                "components": json.dumps(components),
                "host": _HOST,
                "pid": os.getpid(),
                "ancestors": json.dumps(_ancestors()),
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
                "host": _HOST,
                "pid": os.getpid(),
                "ancestors": json.dumps(_ancestors()),
            },
        )
        return reply


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
