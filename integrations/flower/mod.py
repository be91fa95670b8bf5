"""The client side: :class:`EnergyMod`, a ClientApp mod that measures (or models) the energy
of the handler it wraps and returns it with the reply."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from greentrack.discovery import DiscoveryOptions, discover
from greentrack.integrations.flower._flwr import app as flwr_app
from greentrack.integrations.flower.keys import (
    FIELD,
    LEGACY_METRICS,
    LEGACY_PREFIX,
    RECORD,
    decode_record,
    encode_record,
)
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


def _discover_meters(options: DiscoveryOptions) -> list[Meter]:
    """The meters discovery finds (its statuses are the server's to record, not a client's)."""
    return discover(options)[0]


class SharedMeters:
    """Meters opened once per process and shared by every message (and every concurrent
    client thread) of a mod configuration.

    Each message's measurement is a *window* ``[open, close]``. The meters are counters
    (device-wide GPU and RAPL counters, the process's CPU time), read under one lock at every
    window edge; between two consecutive edges the energy each channel counted is known
    exactly and is split equally among the windows open in that stretch (stretches with no
    window open are charged to none). So concurrent clients in one process (threads) add up
    to what the meters counted, never to a multiple of it, and a client alone keeps exactly
    its own reading. Channels that also report device-wide counters (NVML) are the
    exception: each window keeps its full reading and its counters, and the server splits
    them across *all* processes (:mod:`greentrack.analysis.attribution`).
    """

    def __init__(self, meters: Sequence[Meter]) -> None:
        self.meters = list(meters)
        self.ledger = EnergyLedger(self.meters, time.monotonic, lambda m, op, e: None)
        self.channels = self.ledger.channels
        self.sources = {c.id: c.source for c in self.channels}
        self.has_measured = any(c.source == "measured" for c in self.channels)
        self.methods = ";".join(sorted({f"{c.component}:{c.method}" for c in self.channels}))
        self.methods = self.methods or "none"
        sources = set(self.sources.values())
        # what every window's figure is, whatever it counted (no channel: no record is sent)
        self.basis = (
            "mixed" if len(sources) > 1 else "measured" if sources == {"measured"} else "estimated"
        )
        self._raw = {
            c.id
            for m in self.meters
            if getattr(m, "device_counters_j", None) is not None
            for c in m.channels
        }
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._open: dict[int, dict[str, float]] = {}
        self.ledger.zero()
        self._last = self.ledger.totals_j()
        self.reads = 0  # meter readings taken (one per window edge), for tests

    def _advance(self) -> float:
        """Read the meters and share what they counted since the last edge (under the lock)."""
        self.reads += 1
        t, totals = self.ledger.snapshot()
        windows = list(self._open.values())
        if windows:
            share = 1.0 / len(windows)
            for cid, value in totals.items():
                delta = value - self._last.get(cid, 0.0)
                if not math.isfinite(delta):
                    continue
                part = delta if cid in self._raw else delta * share
                for acc in windows:
                    acc[cid] = acc.get(cid, 0.0) + part
        self._last = totals
        return t

    def open(self) -> tuple[int, float, float, dict[str, tuple[str, float]]]:
        """Open a window: its id, monotonic and Unix start, and the device counters."""
        with self._lock:
            t = self._advance()
            window = next(self._ids)
            self._open[window] = {}
            return window, t, time.time(), _device_counters(self.meters)

    def close(
        self, window: int
    ) -> tuple[float, float, dict[str, float], dict[str, tuple[str, float]]]:
        """Close a window: monotonic and Unix end, its energy per channel, device counters."""
        with self._lock:
            try:
                t = self._advance()
            finally:
                acc = self._open.pop(window, {})
            return t, time.time(), acc, _device_counters(self.meters)

    def close_meters(self) -> None:
        for meter in self.meters:
            try:
                meter.close()
            except Exception:
                continue


_SHARED: dict[Hashable, tuple[int, SharedMeters]] = {}
_SHARED_LOCK = threading.RLock()


def _shared_meters(
    cache: dict[Hashable, tuple[int, SharedMeters]],
    key: Hashable,
    open_meters: Callable[[], Sequence[Meter]],
) -> SharedMeters:
    """``cache[key]``'s :class:`SharedMeters`, opened on first use (again in a forked child,
    whose inherited handles are not its own)."""
    pid = os.getpid()
    entry = cache.get(key)
    if entry is not None and entry[0] == pid:
        return entry[1]
    with _SHARED_LOCK:
        entry = cache.get(key)
        if entry is not None and entry[0] == pid:
            return entry[1]
        meters = list(open_meters())
        try:
            shared = SharedMeters(meters)
        except BaseException:
            for meter in meters:
                meter.close()
            raise
        cache[key] = (pid, shared)
        return shared


@atexit.register
def _close_shared() -> None:
    pid = os.getpid()
    for owner, shared in list(_SHARED.values()):
        if owner == pid:
            shared.close_meters()
    _SHARED.clear()


class EnergyMod:
    """ClientApp mod measuring (or modelling) the energy of the handler it wraps.

    Args:
        meters_factory: ``f() -> meters`` replacing discovery (tests pass fakes); called once
            per mod and process (:class:`SharedMeters`).
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
        self._cache: dict[Hashable, tuple[int, SharedMeters]] = {}
        self._discovery = discovery or DiscoveryOptions()
        try:
            hash(self._discovery)
            self._options_hashable = True
        except TypeError:  # options holding a dict or a module: meters of this mod's own
            self._options_hashable = False
        self.profile = get_profile(profile) if profile is not None else None
        self.model = model
        self.uplink_mbps, self.downlink_mbps = uplink_mbps, downlink_mbps

    def _shared(self) -> SharedMeters:
        """This process's meters for this mod's configuration, opened on first use: shared
        by every mod with the same discovery options, or this mod's own (a factory, or
        options that cannot be a key)."""
        factory = self._factory
        if factory is not None:
            return _shared_meters(self._cache, None, factory)
        options = self._discovery
        cache = _SHARED if self._options_hashable else self._cache
        return _shared_meters(cache, options, lambda: _discover_meters(options))

    def __call__(self, msg: Any, context: Any, call_next: Callable[[Any, Any], Any]) -> Any:
        if self.profile is not None and self.model == "always":
            return self._modeled(msg, context, call_next)
        try:
            shared = self._shared()
        except Exception:  # cannot measure here: model it, or run the client anyway
            if self.profile is not None:
                return self._modeled(msg, context, call_next)
            return call_next(msg, context)
        if self.profile is not None and not shared.has_measured:
            return self._modeled(msg, context, call_next)
        try:
            window, t0, t0_unix, c0 = shared.open()
        except Exception:
            return call_next(msg, context)
        c1: dict[str, tuple[str, float]] = {}
        totals: dict[str, float] | None = None
        t_end, t1_unix = t0, t0_unix
        try:
            reply = call_next(msg, context)
        finally:
            try:
                t_end, t1_unix, totals, c1 = shared.close(window)
            except Exception:  # no reading: the reply goes unmeasured
                totals = None
        if totals is None or not shared.channels or reply.has_error() or not reply.has_content():
            return reply  # (no channel: nothing measured nor estimated, so no record either)
        try:
            _attach(reply, _measured_fields(shared, totals, t_end - t0, (t0_unix, t1_unix), c0, c1))
        except Exception:  # never fail the client over its record: it goes unmeasured
            return reply
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
        fields = {
            "measured_j": 0.0,
            "estimated_j": compute_j + radio_j,
            "duration_s": seconds,
            "methods": f"modeled:{self.profile.key}",
            "basis": "modeled",
            "radio_j": radio_j,
            "windows": [],
            "host": _HOST,
            "pid": os.getpid(),
            "ancestors": _ancestors(),
        }
        with contextlib.suppress(Exception):  # never fail the client over its record
            _attach(reply, fields)
        return reply


def _measured_fields(
    shared: SharedMeters,
    totals: dict[str, float],
    duration_s: float,
    unix_span: tuple[float, float],
    c0: dict[str, tuple[str, float]],
    c1: dict[str, tuple[str, float]],
) -> dict[str, Any]:
    """The record of one measured window: energy by source and component, the device-wide
    counters of its measured devices (for the server's attribution), where it ran."""
    sources = shared.sources
    measured, estimated = split_by_source(totals, sources)
    components: dict[str, list[float]] = {}
    for ch in shared.channels:
        value = totals.get(ch.id)
        if value is None or value != value:
            continue
        pair = components.setdefault(ch.component, [0.0, 0.0])
        pair[0 if ch.source == "measured" else 1] += float(value)
    t0, t1 = unix_span
    windows = [
        {"device": dev, "t0": t0, "t1": t1, "e0_j": e0, "e1_j": c1[cid][1]}
        for cid, (dev, e0) in c0.items()
        if cid in c1 and sources.get(cid) == "measured"
    ]
    return {
        "measured_j": measured,
        "estimated_j": estimated,
        "duration_s": duration_s,
        "methods": shared.methods,
        "basis": shared.basis,
        "windows": windows,
        "components": components,
        "host": _HOST,
        "pid": os.getpid(),
        "ancestors": _ancestors(),
    }


def _attach(reply: Any, fields: dict[str, Any]) -> None:
    """Attach the client's record (:func:`encode_record`): a namespaced ConfigRecord for
    Message-API servers; for a legacy (FitRes/EvaluateRes) reply, a prefixed entry of its
    metrics, since the legacy conversion drops any other record."""
    text = encode_record(fields)
    content = reply.content
    for name in content:  # a few keys (.get of an absent one raises inside, .config_records
        if name in LEGACY_METRICS:  # builds a dict: both slower)
            metrics = content[name]
            if isinstance(metrics, flwr_app.ConfigRecord):
                metrics[LEGACY_PREFIX + FIELD] = text
                return
    content[RECORD] = flwr_app.ConfigRecord({FIELD: text})


def pop_legacy_record(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Remove greentrack's entries from a legacy FitRes/EvaluateRes ``metrics`` dict (the
    inner strategy must not aggregate them) and return the client's record."""
    keys = [k for k in metrics if k.startswith(LEGACY_PREFIX)]
    if not keys:
        return None
    record: dict[str, Any] = (
        decode_record({k[len(LEGACY_PREFIX) :]: metrics.pop(k) for k in keys}) or {}
    )  # present but unreadable: the server counts the client unmeasured, and says so
    return record


def client_record(reply: Any) -> dict[str, Any] | None:
    """The record the mod attached to a Message-API ``reply`` (left in place), or ``None``."""
    if reply.has_error() or not reply.has_content() or RECORD not in reply.content:
        return None
    record: dict[str, Any] | None = decode_record(reply.content[RECORD])
    return record


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
