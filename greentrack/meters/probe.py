"""How often this GPU's NVML readings change, and over what window its power is averaged.

NVML's energy counter and power readings are not continuous: the driver updates each at its
own interval, and a power reading is the mean over some window that may cover only part of
that interval. Yang, Adamek and Armour (SC24, "Accurate and Convenient Energy Measurements for
GPUs", arXiv 2312.02741) measured both by polling far faster than the readings change, under
a load step: the interval between changes is the update interval; how an averaged reading
follows the step is its window (a mean over a window ``W`` rises over ``W`` seconds after a
step, as a ramp). :func:`probe` does the same:

* it polls ``nvmlDeviceGetTotalEnergyConsumption``, ``nvmlDeviceGetPowerUsage`` and, where the
  driver has them, the fields ``NVML_FI_DEV_POWER_INSTANT`` and ``NVML_FI_DEV_POWER_AVERAGE``
  every ``poll_s`` (1 ms) for ``seconds`` (5 s) in all, every visible GPU in one loop;
* at 20 % of that time it starts a load step (:class:`Load`: a burst of CUDA matmuls,
  :class:`TorchBurst`) lasting 40 % of it, so the readings step up and, after it, down;
* per reading: the update interval from the times it changed (a change is seen at the first
  poll after it, so each interval is a whole number of updates, give or take one poll), and
  the window from the slope of its rise and fall (a least-squares line through the readings
  between 5 % and 95 % of the step: ``W = 1 / slope``); a reading that follows the step within
  one update has a window of at most that update (an instantaneous reading).

Results are stored per GPU (UUID and driver version: a driver update may change them) as a
small JSON file in ``$GREENTRACK_PROBE_DIR``, else ``$XDG_CACHE_HOME/greentrack/probe``, else
``~/.cache/greentrack/probe`` (:func:`probe_dir`); the NVML meter records the probe of each GPU
it opens (:func:`stored_probe`) in the run's ``meta.json``, and the account's cross-check of the
counter against the power samples uses the probed counter interval
(:mod:`greentrack.account.crosscheck`). ``greentrack devices --probe`` runs it.

What it cannot measure: the share of each update period an instantaneous reading averages
(Yang et al.'s 25 % on A100/H100) needs loads placed at controlled phases of the update
period; the probe says "at most one update" for such a reading instead.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from greentrack.errors import MeterUnavailableError
from greentrack.numbers import duration, num, plural

PROBE_DIR_ENV = "GREENTRACK_PROBE_DIR"
PROBE_SECONDS = 5.0
MIN_PROBE_SECONDS = 1.0
MAX_PROBE_SECONDS = 60.0
POLL_S = 0.001
MAX_POLLS = 200_000
"""The most poll rounds one probe keeps (memory bound: at 1 ms a round, 200 s)."""
STORE_MAX_BYTES = 64 * 1024
STEP_AT, STEP_FOR = 0.2, 0.4
"""The load step starts at 20 % of the probe's time and lasts 40 % of it: at the default 5 s,
1 s idle, 2 s of load, 2 s after it (a 1 s averaging window rises and falls whole)."""
MIN_STEP_W = 5.0
"""A step smaller than this (or 5 % of the idle power) is not a step (noise, or no load)."""
FORMAT = 1

ENERGY = "energy_counter"
POWER_USAGE = "power_usage"
POWER_INSTANT = "power_instant"
POWER_AVERAGE = "power_average"
SOURCES = (ENERGY, POWER_USAGE, POWER_INSTANT, POWER_AVERAGE)
CALLS = {
    ENERGY: "nvmlDeviceGetTotalEnergyConsumption",
    POWER_USAGE: "nvmlDeviceGetPowerUsage",
    POWER_INSTANT: "NVML_FI_DEV_POWER_INSTANT",
    POWER_AVERAGE: "NVML_FI_DEV_POWER_AVERAGE",
}


class Load(Protocol):
    """A load step on the probed GPUs: ``prepare`` before the probe's clock starts (CUDA's
    start, a warm-up, sizing the work for ``duration_s``), ``start`` enqueues about
    ``duration_s`` of work and returns at once; ``close`` frees what it holds."""

    label: str

    def prepare(self, duration_s: float) -> None: ...

    def start(self, duration_s: float) -> None: ...

    def close(self) -> None: ...


class AtomicFiles(Protocol):
    """What storing a probe needs of a file system (:class:`greentrack.rundir.fs.FileSystem`)."""

    def mkdir(self, path: Path) -> None: ...

    def replace_atomic(self, path: Path, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SourceProbe:
    """What the probe found for one reading of one GPU.

    ``update_interval_s``: how often it changes (``None``: too few changes seen, or faster
    than the polls resolve: ``basis`` says which); ``window_s``: the window a power reading
    averages over, from its response to the load step (``None``: not measured, with
    ``window_at_most_s`` where the reading followed the step within one update).
    """

    source: str
    update_interval_s: float | None
    changes: int
    window_s: float | None
    window_at_most_s: float | None
    step_w: float | None
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "call": CALLS[self.source],
            "update_interval_s": self.update_interval_s,
            "changes": self.changes,
            "window_s": self.window_s,
            "window_at_most_s": self.window_at_most_s,
            "step_w": self.step_w,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class ProbeResult:
    """One GPU's probe (``greentrack devices --probe``), as stored and as recorded in runs."""

    uuid: str
    driver: str
    name: str
    nvml_index: int
    probed_utc: str
    seconds: float
    polls: int
    poll_interval_s: float
    load: str | None
    sources: tuple[SourceProbe, ...]
    notes: tuple[str, ...] = field(default=())

    def source(self, name: str) -> SourceProbe | None:
        return next((s for s in self.sources if s.source == name), None)

    @property
    def counter_update_s(self) -> float | None:
        """The energy counter's update interval (s), where measured."""
        s = self.source(ENERGY)
        return s.update_interval_s if s else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "uuid": self.uuid,
            "driver": self.driver,
            "name": self.name,
            "nvml_index": self.nvml_index,
            "probed_utc": self.probed_utc,
            "seconds": self.seconds,
            "polls": self.polls,
            "poll_interval_s": self.poll_interval_s,
            "load": self.load,
            "sources": [s.to_dict() for s in self.sources],
            "notes": list(self.notes),
            "method": "Yang et al., SC24 (arXiv 2312.02741): readings polled far faster than "
            "they change, under a load step",
        }

    def for_meta(self) -> dict[str, Any]:
        """What a run records of it (``meta.json`` channel ``details.probe``)."""
        out: dict[str, Any] = {"probed_utc": self.probed_utc, "load": self.load}
        for s in self.sources:
            out[f"{s.source}_update_interval_s"] = s.update_interval_s
            if s.source != ENERGY:
                out[f"{s.source}_window_s"] = s.window_s
                out[f"{s.source}_window_at_most_s"] = s.window_at_most_s
        out["counter_update_interval_s"] = self.counter_update_s
        return out


# --- polling ---------------------------------------------------------------------------------


@dataclass
class _Series:
    """One reading as polled: its first value and every change (time, new value), so its
    memory grows with the changes, not the polls; ``polls`` and the first and last poll
    times give the polling interval."""

    t_s: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    polls: int = 0
    first_s: float = 0.0
    last_s: float = 0.0

    def add(self, t: float, value: float) -> None:
        if not self.polls:
            self.first_s = t
        self.polls += 1
        self.last_s = t
        if not self.values or value != self.values[-1]:
            self.t_s.append(t)
            self.values.append(value)

    @property
    def poll_s(self) -> float | None:
        """The mean time between two polls."""
        return (self.last_s - self.first_s) / (self.polls - 1) if self.polls > 1 else None

    def at(self, t: float) -> float | None:
        """The reading at ``t``: the last value seen at or before it."""
        i = bisect.bisect_right(self.t_s, t) - 1
        return self.values[i] if i >= 0 else None

    def level(self, a: float, b: float) -> float | None:
        """The median reading over ``[a, b)``, weighted by time (41 points)."""
        if b <= a:
            return None
        seen = [self.at(a + (b - a) * k / 40) for k in range(41)]
        return _median([v for v in seen if v is not None])


@dataclass
class _Gpu:
    index: int
    handle: Any
    uuid: str
    name: str
    sources: list[str]
    series: dict[str, _Series]
    errors: int = 0


def probe(
    nvml: Any,
    *,
    gpu_indices: Sequence[int] | None = None,
    environ: Mapping[str, str] | None = None,
    seconds: float = PROBE_SECONDS,
    poll_s: float = POLL_S,
    load: Load | None = None,
    idle_reason: str = "no load was given",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall: Callable[[], float] = time.time,
) -> list[ProbeResult]:
    """Probe every visible GPU (or those of ``gpu_indices``) for ``seconds`` in all.

    ``nvml`` is the ``pynvml`` module or a test double; ``clock``/``sleep`` drive the polls
    (tests pass a fake clock whose ``sleep`` advances it); ``load`` makes the step (``None``:
    the GPUs idle, and no window can be measured, which the results say, with
    ``idle_reason``). Raises
    :class:`MeterUnavailableError` when NVML has no GPU to probe.
    """
    if not (MIN_PROBE_SECONDS <= seconds <= MAX_PROBE_SECONDS):
        raise ValueError(
            f"the probe runs {num(MIN_PROBE_SECONDS, 6)} to {num(MAX_PROBE_SECONDS, 6)} s; "
            f"got {seconds!r}"
        )
    if load is not None:
        try:
            load.prepare(STEP_FOR * seconds)
        except Exception as e:  # a load of a third party's (CUDA, torch): the probe goes on idle
            load, idle_reason = None, f"the load step could not be prepared: {e}"
    prepared = load
    _init(nvml)
    try:
        found = _visible(nvml, gpu_indices, environ)
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = [_open(nvml, g.nvml_index, g.handle) for g in found]
        probed_utc = _utc(wall())
        notes = [] if load is not None else [f"{IDLE_CAVEAT} ({idle_reason})"]
        rounds, failed = _poll(nvml, gpus, seconds, poll_s, load, clock, sleep)
        if failed is not None:
            notes.append(f"the load step failed to start ({failed}): the GPU idled")
            load = None
    finally:
        if prepared is not None:
            prepared.close()
        with contextlib.suppress(Exception):  # a test double or a driver that fails here
            nvml.nvmlShutdown()
    step = (STEP_AT * seconds, (STEP_AT + STEP_FOR) * seconds) if load is not None else None
    out = []
    for g in gpus:
        gaps = [s.poll_s for s in g.series.values() if s.poll_s is not None]
        poll_interval = round(_median(gaps) or poll_s, 9)
        more = list(notes)
        if g.errors:
            more.append(f"{plural(g.errors, 'read')} failed during the probe and were skipped")
        if rounds >= MAX_POLLS:
            more.append(f"stopped at {MAX_POLLS} poll rounds (the probe's memory bound)")
        sources = tuple(
            analyse(name, g.series[name], poll_interval, step) for name in g.sources
        ) + tuple(
            SourceProbe(name, None, 0, None, None, None, f"{CALLS[name]} is not supported here")
            for name in SOURCES
            if name not in g.sources
        )
        out.append(
            ProbeResult(
                uuid=g.uuid,
                driver=driver,
                name=g.name,
                nvml_index=g.index,
                probed_utc=probed_utc,
                seconds=seconds,
                polls=rounds,
                poll_interval_s=poll_interval,
                load=load.label if load is not None else None,
                sources=sources,
                notes=tuple(more),
            )
        )
    return out


IDLE_CAVEAT = (
    "no load step: the GPU idled, so the update intervals are those of an idle GPU and no "
    "averaging window could be measured"
)


def gpu_uuids(
    nvml: Any,
    gpu_indices: Sequence[int] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The UUIDs of the GPUs :func:`probe` would probe (to place a load step on them)."""
    _init(nvml)
    try:
        return [
            _text(nvml.nvmlDeviceGetUUID(g.handle)) for g in _visible(nvml, gpu_indices, environ)
        ]
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _init(nvml: Any) -> None:
    from greentrack.meters.nvml import describe_nvml_error

    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        raise MeterUnavailableError(describe_nvml_error(nvml, e)) from e


def _visible(
    nvml: Any, gpu_indices: Sequence[int] | None, environ: Mapping[str, str] | None
) -> list[Any]:
    """The visible GPUs (``CUDA_VISIBLE_DEVICES``), those of ``gpu_indices`` where given."""
    from greentrack.meters.nvml import visible_gpus

    env = os.environ if environ is None else environ
    found = visible_gpus(nvml, env.get("CUDA_VISIBLE_DEVICES"))
    if gpu_indices is not None:
        bad = [i for i in gpu_indices if not 0 <= i < len(found)]
        if bad:
            raise MeterUnavailableError(
                f"--gpu-indices {bad} out of range: this process sees {plural(len(found), 'GPU')}"
            )
        found = [found[i] for i in dict.fromkeys(gpu_indices)]
    if not found:
        raise MeterUnavailableError("NVML sees no GPU to probe (CUDA_VISIBLE_DEVICES hides all?)")
    return found


class TorchBurst:
    """A load step of CUDA matrix products (float16) on the GPUs torch sees with the given
    UUIDs. The work is enqueued at :meth:`start` and runs on the GPU while the probe polls:
    at most :data:`MAX_QUEUED` products a GPU, each sized in :meth:`prepare` (4096 to 16384
    square, as memory allows) to last ``duration_s / MAX_QUEUED`` or more, so enqueuing never
    fills CUDA's launch queue (about 1024 kernels) and blocks the polls."""

    label = "torch CUDA matmul burst (float16)"
    MAX_QUEUED = 256
    SIZES = (4096, 8192, 16384)

    def __init__(self, torch: Any, devices: Sequence[int]) -> None:
        self._torch = torch
        self._devices = list(devices)
        self._work: list[tuple[int, Any, Any, Any, float]] = []

    @classmethod
    def for_uuids(cls, uuids: Sequence[str]) -> tuple[TorchBurst | None, str | None]:
        """A burst on the GPUs of ``uuids`` that torch sees, or ``None`` and why not."""
        try:
            import torch
        except ImportError:
            return None, "torch is not installed"
        if not torch.cuda.is_available():
            return None, "torch has no CUDA here (a CPU build, or no GPU visible to it)"
        wanted = {u.lower().removeprefix("gpu-") for u in uuids}
        devices = []
        for i in range(torch.cuda.device_count()):
            uuid = str(getattr(torch.cuda.get_device_properties(i), "uuid", "")).lower()
            if uuid.removeprefix("gpu-") in wanted:
                devices.append(i)
        if not devices:
            return None, "torch sees none of the probed GPUs (by UUID)"
        return cls(torch, devices), None

    def prepare(self, duration_s: float) -> None:
        torch = self._torch
        for d in self._devices:
            per = 0.0
            held = None
            for n in self.SIZES:
                free, _total = torch.cuda.mem_get_info(d)
                if 3 * n * n * 2 * 1.25 > free:
                    break
                held = None
                a = torch.randn(n, n, device=f"cuda:{d}", dtype=torch.float16)
                b = torch.randn(n, n, device=f"cuda:{d}", dtype=torch.float16)
                c = torch.empty(n, n, device=f"cuda:{d}", dtype=torch.float16)
                per = self._time(a, b, c, d)
                held = (a, b, c)
                if per * self.MAX_QUEUED >= duration_s:
                    break
            if held is not None and per > 0:
                self._work.append((d, *held, per))

    def _time(self, a: Any, b: Any, c: Any, d: int) -> float:
        torch = self._torch
        torch.matmul(a, b, out=c)  # warm-up: the kernel's first launch
        torch.cuda.synchronize(d)
        t = time.perf_counter()
        for _ in range(3):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize(d)
        return (time.perf_counter() - t) / 3

    def start(self, duration_s: float) -> None:
        for d, a, b, c, per in self._work:
            with self._torch.cuda.device(d):
                for _ in range(min(math.ceil(duration_s / per), self.MAX_QUEUED)):
                    self._torch.matmul(a, b, out=c)

    def close(self) -> None:
        for d, *_ in self._work:
            self._torch.cuda.synchronize(d)  # what is left of the burst: gone by the probe's end
        self._work.clear()
        self._torch.cuda.empty_cache()


def _open(nvml: Any, index: int, handle: Any) -> _Gpu:
    """A GPU to poll, with the readings it supports (each tried once)."""
    sources = []
    for name in SOURCES:
        try:
            _read(nvml, handle, name)
            sources.append(name)
        except (nvml.NVMLError, _Unsupported, AttributeError):
            continue
    return _Gpu(
        index=index,
        handle=handle,
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        name=_text(nvml.nvmlDeviceGetName(handle)),
        sources=sources,
        series={name: _Series() for name in sources},
    )


class _Unsupported(Exception):
    """A field value that came back with an error code."""


def _read(nvml: Any, handle: Any, name: str) -> float:
    """One reading: joules for the counter, watts for power."""
    if name == ENERGY:
        return int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle)) / 1000.0
    if name == POWER_USAGE:
        return int(nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0
    fid = getattr(
        nvml, "NVML_FI_DEV_POWER_INSTANT" if name == POWER_INSTANT else "NVML_FI_DEV_POWER_AVERAGE"
    )
    value = nvml.nvmlDeviceGetFieldValues(handle, [fid])[0]
    if value.nvmlReturn != getattr(nvml, "NVML_SUCCESS", 0):
        raise _Unsupported(name)
    return int(value.value.uiVal) / 1000.0


def _poll(
    nvml: Any,
    gpus: list[_Gpu],
    seconds: float,
    poll_s: float,
    load: Load | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[int, str | None]:
    """Poll every source of every GPU until ``seconds`` have passed (or :data:`MAX_POLLS`
    rounds); start the load step on time. Times are seconds since the probe's start.
    Returns the rounds polled and why the load step failed to start, if it did."""
    t0 = clock()
    started = False
    failed = None
    rounds = 0
    while rounds < MAX_POLLS:
        now = clock() - t0
        if now >= seconds:
            break
        if load is not None and not started and now >= STEP_AT * seconds:
            started = True
            try:
                load.start(STEP_FOR * seconds)
            except Exception as e:  # the load's own failure (CUDA): polling goes on
                failed = str(e) or type(e).__name__
        for g in gpus:
            for name in g.sources:
                before = clock()
                try:
                    value = _read(nvml, g.handle, name)
                except (nvml.NVMLError, _Unsupported):
                    g.errors += 1
                    continue
                after = clock()
                g.series[name].add((before + after) / 2 - t0, value)
        rounds += 1
        sleep(poll_s)
    return rounds, failed


# --- analysis --------------------------------------------------------------------------------


def update_interval(times: Sequence[float], poll_s: float) -> tuple[float | None, str]:
    """The update interval from the times a reading changed, and how it was found.

    Each interval between changes is a whole number of updates (a reading that did not move
    at an update is a missed change), give or take one poll: with ``U0`` the lower quartile of
    the intervals, ``k_i = round(d_i / U0)`` updates each, ``U = (last - first) / sum(k_i)``.

    >>> u, _ = update_interval([0.1001, 0.2002, 0.4001, 0.5003, 0.6002], 0.001)
    >>> round(u, 4)
    0.1
    """
    if len(times) < 3:
        changed = plural(len(times), "time")
        return None, f"the reading changed {changed}: too few to time its updates"
    d = [b - a for a, b in itertools.pairwise(times)]
    u0 = sorted(d)[len(d) // 4]
    if u0 < 2.0 * poll_s:
        return None, (
            f"it changed at almost every poll (every {num(poll_s * 1000)} ms): its update "
            "interval is below what the probe resolves"
        )
    k = sum(max(1, round(x / u0)) for x in d)
    u = round((times[-1] - times[0]) / k, 6)
    return u, (
        f"{len(times)} changes over {duration(times[-1] - times[0])}, polled every "
        f"{num(poll_s * 1000)} ms"
    )


def _signed(x: float) -> str:
    """A change in watts with its sign, by the one formatter (``+35.2``, ``-4.1``)."""
    return ("+" if x > 0 else "") + num(x)


def window(
    series: _Series,
    step: tuple[float, float],
    update_s: float | None,
) -> tuple[float | None, float | None, float | None, str]:
    """``(window_s, window_at_most_s, step_w, basis)`` of a power reading from its response
    to a load step on ``[step[0], step[1])`` (seconds since the probe's start).

    The levels are medians over time: before the step (idle), over the last 40 % of the step
    (load), over the last 10 % of the probe (after). The rise and the fall are each normalised
    to 0-1; the changes between 5 % and 95 % of a rise or fall lie on a line whose slope is
    ``1 / W`` for a mean over a window ``W``; ``W`` is the mean of the two slopes' inverses.
    """
    on, off = step
    end = series.last_s
    idle = series.level(series.first_s, on)
    busy = series.level(on + 0.6 * (off - on), off)
    after = series.level(end - 0.1 * (end - off), end)
    if idle is None or busy is None:
        return None, None, None, "too few readings before and during the load step"
    step_w = busy - idle
    if abs(step_w) < max(MIN_STEP_W, 0.05 * abs(idle)):
        return (
            None,
            None,
            step_w,
            f"the load moved the reading by {_signed(step_w)} W only: no step to time a window by",
        )
    seen = list(zip(series.t_s[1:], series.values[1:], strict=True))
    edges = [(idle, busy, on, off)]
    if after is not None and abs(busy - after) >= max(MIN_STEP_W, 0.05 * abs(idle)):
        edges.append((busy, after, off, end))
    slopes, quick = [], 0
    for low, high, a, b in edges:
        ramp = [
            (x, (v - low) / (high - low))
            for x, v in seen
            if a <= x < b and 0.05 < (v - low) / (high - low) < 0.95
        ]
        if len(ramp) >= 2:
            slope = _slope(ramp)
            if slope > 0:
                slopes.append(slope)
        else:
            quick += 1
    if slopes:
        w = round(sum(1.0 / s for s in slopes) / len(slopes), 6)
        how = " and ".join(("rise", "fall")[: len(slopes)]) if len(slopes) == 2 else "step"
        return (
            w,
            None,
            step_w,
            (
                f"a {_signed(step_w)} W step: the reading ramps over {num(w * 1000)} ms ({how}; "
                "a mean over that window)"
            ),
        )
    most = update_s
    return (
        None,
        most,
        step_w,
        (
            f"a {_signed(step_w)} W step: the reading followed it within one update"
            + (f" ({num(most * 1000)} ms)" if most else "")
            + ": a mean over at most one update period (an instantaneous reading); the "
            "share of the period it covers is not measured"
        ),
    )


def analyse(
    name: str,
    series: _Series,
    poll_s: float,
    step: tuple[float, float] | None,
) -> SourceProbe:
    """One reading's update interval and, for power readings under a step, its window."""
    times = series.t_s[1:]  # every value after the first is a change
    if name == ENERGY or step is None:
        u, basis = update_interval(times, poll_s)
        if name != ENERGY:
            basis += "; no load step: the averaging window was not measured"
        return SourceProbe(name, u, len(times), None, None, None, basis)
    u, basis = update_interval(times, poll_s)
    w, most, step_w, how = window(series, step, u)
    if w is not None and u is not None and w <= 1.5 * u:
        # a ramp of one or two updates is too short to time a window by its slope
        most, w = max(w, u), None
        how = f"the reading followed the step within about one update ({num(u * 1000)} ms)"
    return SourceProbe(name, u, len(times), w, most, step_w, f"{basis}; {how}")


def _slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``points``."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _utc(t_unix_s: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t_unix_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the store -------------------------------------------------------------------------------


def probe_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where probes are stored: ``$GREENTRACK_PROBE_DIR``, else ``$XDG_CACHE_HOME`` (an
    absolute path, as the XDG spec asks) ``/greentrack/probe``, else
    ``~/.cache/greentrack/probe``.

    >>> probe_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}).as_posix()
    '/c/greentrack/probe'
    """
    env = os.environ if environ is None else environ
    if env.get(PROBE_DIR_ENV):
        return Path(env[PROBE_DIR_ENV])
    cache = env.get("XDG_CACHE_HOME", "")
    if cache and os.path.isabs(cache):
        return Path(cache) / "greentrack" / "probe"
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".cache" / "greentrack" / "probe"


def probe_file(uuid: str, driver: str) -> str:
    """The file name of a GPU's probe under a driver version.

    >>> probe_file("GPU-12ab", "570.86.15")
    'GPU-12ab_driver-570.86.15.json'
    """
    safe = re.sub(r"[^A-Za-z0-9.-]", "_", f"{uuid}_driver-{driver}")[:200]
    return f"{safe}.json"


def save(result: ProbeResult, directory: Path, fs: AtomicFiles) -> Path:
    """Store ``result`` in ``directory`` (created), whole or not at all."""
    fs.mkdir(directory)
    path = directory / probe_file(result.uuid, result.driver)
    fs.replace_atomic(path, json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    return path


def stored_probe(
    uuid: str, driver: str, environ: Mapping[str, str] | None = None
) -> ProbeResult | None:
    """The stored probe of the GPU ``uuid`` under ``driver``; ``None`` when there is none or
    it cannot be read (a damaged file is never an error here: a run must start regardless;
    ``greentrack devices --probe`` writes it again)."""
    try:
        path = probe_dir(environ) / probe_file(uuid, driver)
        if not path.is_file():
            return None
        return load_probe(path, uuid, driver)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def load_probe(path: Path, uuid: str, driver: str) -> ProbeResult:
    """A stored probe, checked: the same GPU and driver, finite positive intervals.
    Raises ``ValueError`` otherwise."""
    from greentrack.safeload import Limits, load_json_text, read_text

    limits = Limits(max_bytes=STORE_MAX_BYTES, max_depth=8)
    data = load_json_text(read_text(path, what="probe", limits=limits), source=str(path))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a probe of format {FORMAT}")
    if data.get("uuid") != uuid or data.get("driver") != driver:
        raise ValueError(f"{path}: a probe of another GPU or driver")
    sources = []
    for s in data.get("sources") or ():
        if not isinstance(s, dict) or s.get("source") not in SOURCES:
            raise ValueError(f"{path}: a source that is not one of {SOURCES}")
        sources.append(
            SourceProbe(
                source=str(s["source"]),
                update_interval_s=_positive(s.get("update_interval_s")),
                changes=int(s.get("changes") or 0),
                window_s=_positive(s.get("window_s")),
                window_at_most_s=_positive(s.get("window_at_most_s")),
                step_w=_finite(s.get("step_w")),
                basis=str(s.get("basis") or ""),
            )
        )
    return ProbeResult(
        uuid=uuid,
        driver=driver,
        name=str(data.get("name") or ""),
        nvml_index=int(data.get("nvml_index") or 0),
        probed_utc=str(data["probed_utc"]),
        seconds=float(data["seconds"]),
        polls=int(data["polls"]),
        poll_interval_s=float(data["poll_interval_s"]),
        load=str(data["load"]) if data.get("load") else None,
        sources=tuple(sources),
        notes=tuple(str(n) for n in data.get("notes") or ()),
    )


def _positive(value: Any) -> float | None:
    """A stored interval: ``None`` stays ``None``; anything but a finite number in
    ``(0, 60]`` s is refused."""
    if value is None:
        return None
    out = float(value)
    if not (math.isfinite(out) and 0 < out <= 60):
        raise ValueError(f"an interval of {value!r} s")
    return out


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"a step of {value!r} W")
    return out
