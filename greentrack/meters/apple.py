"""Apple Silicon energy: IOReport's "Energy Model" (no root), else ``powermetrics`` (as root).

**IOReport** (``/usr/lib/libIOReport.dylib``, a private framework read through ctypes): the
"Energy Model" channel group holds cumulative energy per subsystem (``CPU Energy``,
``GPU Energy``, ``ANE...``, ``DRAM...``), each with its unit label (``mJ``, ``uJ``, ``nJ``).
Each read takes a sample and adds the delta since the previous one
(``IOReportCreateSamplesDelta``), so energy is exact between any two reads and the
timeline's power is that energy over the row's interval: the averaging window is the read
interval, stated in the channel's details. The values are believed to be model-based
estimates from utilisation, frequency and voltage, at 1 mJ resolution for most subsystems
(Zeus documentation, "Apple Silicon").

**powermetrics** (``powermetrics --samplers cpu_power,gpu_power,ane_power -f plist -i MS``),
which needs root: one plist per window, separated by NUL bytes, each with ``elapsed_ns`` and
``processor``'s ``cpu_energy``, ``gpu_energy``, ``ane_energy`` (millijoules over the window;
``*_power`` in milliwatts where the energy is absent). The energy is the **sum over every
window**, each window's own energy; never the last sample taken as the average (CodeCarbon
issue #985). The energy read lags by at most one window (``window_s``); windows are read on a
thread of their own, never on the training's path.

Both are behind small interfaces (:class:`IOReportSamples`, and bytes fed to
:class:`PowermetricsWindows`), so that tests drive them with recorded outputs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import plistlib
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel, Component

IOREPORT_ENERGY = "apple-ioreport-energy-model (on-chip model, delta between reads)"
POWERMETRICS_ENERGY = "apple-powermetrics (sum of its windows' energy)"
UNITS_J = {"mJ": 1e-3, "uJ": 1e-6, "µJ": 1e-6, "nJ": 1e-9, "J": 1.0}
MAX_PLIST_BYTES = 4 * 2**20
"""The most one powermetrics window may take (a real one is tens of kB)."""

# subsystem -> (channel id, component, name)
SUBSYSTEMS: dict[str, tuple[str, Component, str]] = {
    "cpu": ("apple_cpu", "cpu", "CPU"),
    "gpu": ("apple_gpu", "gpu", "GPU"),
    "ane": ("apple_ane", "gpu", "Neural Engine (ANE)"),
    "dram": ("apple_dram", "dram", "DRAM"),
}


def subsystem_of(channel: str) -> str | None:
    """The subsystem an IOReport "Energy Model" channel adds to (``None``: a part already in
    a total, such as one cluster or core of the CPU, or the GPU's SRAM).

    >>> [subsystem_of(c) for c in ("CPU Energy", "PACC0_CPU", "GPU Energy", "ANE0", "DRAM0")]
    ['cpu', None, 'gpu', 'ane', 'dram']
    """
    name = channel.strip()
    if name == "CPU Energy":
        return "cpu"
    if name == "GPU Energy":
        return "gpu"
    if name.startswith("ANE"):
        return "ane"
    if name.startswith("DRAM"):
        return "dram"
    return None


class IOReportSamples(Protocol):
    """Where IOReport energy samples come from: the library, or a recorded fake."""

    def sample(self) -> Any:
        """A new sample of the subscribed channels."""
        ...

    def delta_j(self, before: Any, after: Any) -> dict[str, float]:
        """Joules per channel name between two samples."""
        ...

    def release(self, sample: Any) -> None:
        """Free a sample."""
        ...

    def close(self) -> None: ...


class IOReportEnergy:
    """Cumulative joules per subsystem from an :class:`IOReportSamples` source."""

    def __init__(self, source: IOReportSamples) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._last = source.sample()
        self.channels_seen: set[str] = set()
        self.totals = {key: 0.0 for key in self._subsystems(source.delta_j(self._last, self._last))}

    def _subsystems(self, delta: Mapping[str, float]) -> set[str]:
        self.channels_seen.update(delta)
        return {s for name in delta if (s := subsystem_of(name)) is not None}

    def read(self) -> dict[str, float]:
        with self._lock:
            now = self.source.sample()
            try:
                delta = self.source.delta_j(self._last, now)
            finally:
                self.source.release(self._last)
                self._last = now
            for name, joules in delta.items():
                key = subsystem_of(name)
                if key in self.totals and joules >= 0:
                    self.totals[key] += joules
            return dict(self.totals)

    def close(self) -> None:
        with self._lock:
            self.source.release(self._last)
            self.source.close()


class PowermetricsWindows:
    """Sums powermetrics' windows (NUL-separated plists) into joules per subsystem.

    >>> w = PowermetricsWindows()
    >>> doc = plistlib.dumps({"elapsed_ns": 10**9, "processor": {"cpu_energy": 1500}})
    >>> w.feed(doc + b"\\x00"), w.totals_j, w.windows
    (None, {'cpu': 1.5}, 1)
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.totals_j: dict[str, float] = {}
        self.windows = 0
        self.covered_s = 0.0
        self.last_window_s: float | None = None
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        """Add output; each complete window is parsed and summed."""
        with self._lock:
            self._buffer += data
            *docs, self._buffer = self._buffer.split(b"\x00")
            if len(self._buffer) > MAX_PLIST_BYTES:
                raise MeterError(f"a powermetrics window exceeds {MAX_PLIST_BYTES} bytes")
            for doc in docs:
                if doc.strip():
                    self._add(doc)

    def _add(self, doc: bytes) -> None:
        try:
            record = plistlib.loads(doc.strip())
        except Exception as e:  # a damaged window: said, never silently counted as 0
            raise MeterError(f"powermetrics gave an unreadable window ({e})") from e
        elapsed_s = float(record.get("elapsed_ns", 0)) / 1e9
        processor = record.get("processor") or {}
        gpu = record.get("gpu") or {}
        for key in ("cpu", "gpu", "ane"):
            energy_mj = processor.get(f"{key}_energy")
            if energy_mj is None and key == "gpu":
                energy_mj = gpu.get("gpu_energy")
            if energy_mj is not None:
                joules = float(energy_mj) / 1e3
            elif processor.get(f"{key}_power") is not None:
                joules = float(processor[f"{key}_power"]) / 1e3 * elapsed_s
            else:
                continue
            self.totals_j[key] = self.totals_j.get(key, 0.0) + joules
        self.windows += 1
        self.covered_s += elapsed_s
        self.last_window_s = elapsed_s

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.totals_j)


class AppleSocMeter:
    """CPU, GPU, ANE (and DRAM where IOReport has it) energy of an Apple Silicon SoC.

    Args:
        ioreport: an :class:`IOReportSamples` source (a recorded fake in tests); ``None``:
            the library, else powermetrics when running as root.
        powermetrics: a :class:`PowermetricsWindows` fed by the caller (tests); ``None``
            with ``ioreport`` unavailable and root: a ``powermetrics`` process of greentrack's.
        model: the chip's name (default: ``sysctl machdep.cpu.brand_string``).
        window_ms: powermetrics' window.

    Raises:
        MeterUnavailableError: not Apple Silicon, or neither source can be read (the message
            says why and what to do).
    """

    def __init__(
        self,
        ioreport: IOReportSamples | None = None,
        *,
        powermetrics: PowermetricsWindows | None = None,
        model: str | None = None,
        window_ms: int = 1000,
    ) -> None:
        self._ioreport: IOReportEnergy | None = None
        self._windows: PowermetricsWindows | None = powermetrics
        self._process: _Powermetrics | None = None
        why_not = ""
        if powermetrics is None:
            try:
                self._ioreport = IOReportEnergy(ioreport or LibIOReport())
            except MeterUnavailableError as e:
                why_not = str(e)
            except Exception as e:  # a private framework: any failure is its own
                why_not = f"IOReport could not be read ({type(e).__name__}: {e})"
        if self._ioreport is None and self._windows is None:
            if not hasattr(os, "geteuid") or os.geteuid() != 0:
                raise MeterUnavailableError(
                    f"{why_not}; powermetrics, the alternative, needs root (run as root)"
                )
            self._windows = PowermetricsWindows()
            self._process = _Powermetrics(self._windows, window_ms)
        chip = model or _chip_name()
        if self._ioreport is not None:
            keys = sorted(self._ioreport.totals, key=list(SUBSYSTEMS).index)
            method, window = IOREPORT_ENERGY, "the interval between reads (1 s rows)"
            extra: dict[str, Any] = {"ioreport_channels": sorted(self._ioreport.channels_seen)}
        else:
            keys = ["cpu", "gpu", "ane"]
            method, window = POWERMETRICS_ENERGY, f"powermetrics windows of {window_ms} ms"
            extra = {"window_ms": window_ms, "note": "energy lags by up to one window"}
        if not keys:
            raise MeterUnavailableError("IOReport's Energy Model group has no CPU or GPU channel")
        self._keys = keys
        self._channels = tuple(
            Channel(
                SUBSYSTEMS[k][0],
                SUBSYSTEMS[k][1],
                f"{chip} {SUBSYSTEMS[k][2]}",
                "measured",
                method,
                None,
                {
                    "vendor": "Apple",
                    "chip": chip,
                    "averaging_window": window,
                    "scope": "on-chip energy model, not an external meter",
                    **extra,
                },
            )
            for k in keys
        )

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def read_energy_j(self) -> dict[str, float]:
        try:
            if self._ioreport is not None:
                totals = self._ioreport.read()
            else:
                assert self._windows is not None
                if self._process is not None:
                    self._process.check()
                totals = self._windows.snapshot()
        except MeterError:
            raise
        except Exception as e:
            raise MeterError(f"apple: energy read failed ({type(e).__name__}: {e})") from e
        return {SUBSYSTEMS[k][0]: totals.get(k, 0.0) for k in self._keys}

    def read_power_w(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        if self._ioreport is not None:
            ioreport, self._ioreport = self._ioreport, None
            with contextlib.suppress(Exception):
                ioreport.close()
        if self._process is not None:
            self._process.stop()


class _Powermetrics:
    """greentrack's own powermetrics process, read on a thread; stopped with the meter."""

    def __init__(self, windows: PowermetricsWindows, window_ms: int) -> None:
        command = [
            "powermetrics",
            "--samplers",
            "cpu_power,gpu_power,ane_power",
            "-f",
            "plist",
            "-i",
            str(int(window_ms)),
        ]
        try:
            self._proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
            )
        except OSError as e:
            raise MeterUnavailableError(f"powermetrics cannot start ({e})") from e
        self._windows = windows
        self.error: Exception | None = None
        self._thread = threading.Thread(
            target=self._read, name="greentrack-powermetrics", daemon=True
        )
        self._thread.start()

    def _read(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        fd = stream.fileno()
        try:
            for chunk in iter(lambda: os.read(fd, 65536), b""):
                self._windows.feed(chunk)
        except Exception as e:  # reported at the next read, as a meter error
            self.error = e

    def check(self) -> None:
        if self.error is not None:
            raise MeterError(f"powermetrics: {self.error}")
        if self._proc.poll() is not None:
            raise MeterError(f"powermetrics exited with status {self._proc.returncode}")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._thread.join(timeout=2.0)


def _chip_name() -> str:
    try:
        out = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"],
            capture_output=True,
            text=True,
            timeout=2.0,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return out or "Apple Silicon"


def apple_silicon() -> bool:
    """Whether this is macOS on Apple Silicon."""
    return sys.platform == "darwin" and os.uname().machine == "arm64"


# --- the library, through ctypes ------------------------------------------------------------

_UTF8 = 0x08000100  # kCFStringEncodingUTF8


class LibIOReport:
    """IOReport's "Energy Model" group through ctypes (macOS on Apple Silicon only)."""

    def __init__(self) -> None:
        if not apple_silicon():
            raise MeterUnavailableError("IOReport exists on macOS on Apple Silicon only")
        try:
            self._cf = ctypes.CDLL(
                "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"
            )
            self._ior = ctypes.CDLL("/usr/lib/libIOReport.dylib")
        except OSError as e:
            raise MeterUnavailableError(f"libIOReport could not be loaded ({e})") from e
        self._declare()
        group = self._string("Energy Model")
        channels = self._ior.IOReportCopyChannelsInGroup(group, None, 0, 0, 0)
        self._cf.CFRelease(group)
        if not channels:
            raise MeterUnavailableError("IOReport has no 'Energy Model' channel group here")
        count = self._cf.CFDictionaryGetCount(channels)
        mutable = self._cf.CFDictionaryCreateMutableCopy(None, count, channels)
        self._cf.CFRelease(channels)
        subscribed = ctypes.c_void_p()
        self._sub = self._ior.IOReportCreateSubscription(
            None, mutable, ctypes.byref(subscribed), 0, None
        )
        if not self._sub:
            raise MeterUnavailableError("IOReport refused the subscription")
        self._channels = subscribed
        self._key = self._string("IOReportChannels")

    def _declare(self) -> None:
        vp, u64 = ctypes.c_void_p, ctypes.c_uint64
        cf, ior = self._cf, self._ior
        cf.CFStringCreateWithCString.restype = vp
        cf.CFStringCreateWithCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_uint32]
        cf.CFStringGetCString.restype = ctypes.c_bool
        cf.CFStringGetCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_long, ctypes.c_uint32]
        cf.CFRelease.argtypes = [vp]
        cf.CFDictionaryGetCount.restype = ctypes.c_long
        cf.CFDictionaryGetCount.argtypes = [vp]
        cf.CFDictionaryCreateMutableCopy.restype = vp
        cf.CFDictionaryCreateMutableCopy.argtypes = [vp, ctypes.c_long, vp]
        cf.CFDictionaryGetValue.restype = vp
        cf.CFDictionaryGetValue.argtypes = [vp, vp]
        cf.CFArrayGetCount.restype = ctypes.c_long
        cf.CFArrayGetCount.argtypes = [vp]
        cf.CFArrayGetValueAtIndex.restype = vp
        cf.CFArrayGetValueAtIndex.argtypes = [vp, ctypes.c_long]
        ior.IOReportCopyChannelsInGroup.restype = vp
        ior.IOReportCopyChannelsInGroup.argtypes = [vp, vp, u64, u64, u64]
        ior.IOReportCreateSubscription.restype = vp
        ior.IOReportCreateSubscription.argtypes = [vp, vp, ctypes.POINTER(vp), u64, vp]
        ior.IOReportCreateSamples.restype = vp
        ior.IOReportCreateSamples.argtypes = [vp, vp, vp]
        ior.IOReportCreateSamplesDelta.restype = vp
        ior.IOReportCreateSamplesDelta.argtypes = [vp, vp, vp]
        for name in ("IOReportChannelGetChannelName", "IOReportChannelGetUnitLabel"):
            getattr(ior, name).restype = vp
            getattr(ior, name).argtypes = [vp]
        ior.IOReportSimpleGetIntegerValue.restype = ctypes.c_int64
        ior.IOReportSimpleGetIntegerValue.argtypes = [vp, ctypes.c_int32]

    def _string(self, text: str) -> Any:
        return self._cf.CFStringCreateWithCString(None, text.encode(), _UTF8)

    def _text(self, ref: Any) -> str:
        if not ref:
            return ""
        buf = ctypes.create_string_buffer(256)
        ok = self._cf.CFStringGetCString(ref, buf, len(buf), _UTF8)
        return buf.value.decode("utf-8", "replace") if ok else ""

    def sample(self) -> Any:
        return self._ior.IOReportCreateSamples(self._sub, self._channels, None)

    def delta_j(self, before: Any, after: Any) -> dict[str, float]:
        delta = self._ior.IOReportCreateSamplesDelta(before, after, None)
        if not delta:
            raise MeterError("IOReport gave no sample delta")
        try:
            array = self._cf.CFDictionaryGetValue(delta, self._key)
            out: dict[str, float] = {}
            for i in range(self._cf.CFArrayGetCount(array) if array else 0):
                channel = self._cf.CFArrayGetValueAtIndex(array, i)
                name = self._text(self._ior.IOReportChannelGetChannelName(channel))
                unit = self._text(self._ior.IOReportChannelGetUnitLabel(channel))
                scale = UNITS_J.get(unit.strip())
                if scale is None:
                    continue  # not an energy channel
                value = self._ior.IOReportSimpleGetIntegerValue(channel, 0)
                out[name] = out.get(name, 0.0) + value * scale
            return out
        finally:
            self._cf.CFRelease(delta)

    def release(self, sample: Any) -> None:
        if sample:
            self._cf.CFRelease(sample)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cf.CFRelease(self._key)
