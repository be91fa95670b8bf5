"""Test doubles at the OS boundary: a fake ``pynvml`` module and a scripted meter.

They let every meter path run without a GPU: power follows a scripted piecewise-constant
trace over an injected clock, and the fake energy counter is that trace's exact integral.
Benchmarks use them too (long-run memory and store size).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from greentrack.errors import MeterError
from greentrack.meters.base import Channel, Component, Source


class PowerTrace:
    """Piecewise-constant power: ``segments`` of ``(duration_s, watts)``, optionally repeated.

    >>> trace = PowerTrace([(1.0, 100.0), (1.0, 300.0)], repeat=True)
    >>> trace.power_w(1.5), trace.energy_j(4.0)
    (300.0, 800.0)
    """

    def __init__(self, segments: Sequence[tuple[float, float]], *, repeat: bool = False) -> None:
        if not segments or any(d <= 0 or w < 0 for d, w in segments):
            raise ValueError("segments must be non-empty (duration_s > 0, watts >= 0) pairs")
        self._durations = [float(d) for d, _ in segments]
        self._watts = [float(w) for _, w in segments]
        self._ends = list(itertools.accumulate(self._durations))
        self._cum_j = [0.0, *itertools.accumulate(d * w for d, w in segments)]
        self._period = self._ends[-1]
        self._repeat = repeat

    @classmethod
    def constant(cls, watts: float) -> PowerTrace:
        return cls([(1.0, watts)], repeat=True)

    def _fold(self, t: float) -> tuple[int, float]:
        if self._repeat:
            cycles, rem = divmod(max(t, 0.0), self._period)
            return int(cycles), rem
        return 0, min(max(t, 0.0), self._period)

    def power_w(self, t: float) -> float:
        _, rem = self._fold(t)
        i = min(bisect.bisect_right(self._ends, rem), len(self._watts) - 1)
        return self._watts[i]

    def energy_j(self, t: float) -> float:
        """Exact energy from 0 to ``t`` seconds (after a non-repeating trace ends, power is
        that of its last segment)."""
        cycles, rem = self._fold(t)
        i = min(bisect.bisect_right(self._ends, rem), len(self._watts) - 1)
        start = self._ends[i - 1] if i else 0.0
        energy = cycles * self._cum_j[-1] + self._cum_j[i] + (rem - start) * self._watts[i]
        if not self._repeat and t > self._period:
            energy += (t - self._period) * self._watts[-1]
        return energy


class ManualClock:
    """A clock that moves only when told. ``monotonic()`` and ``time()`` as in :mod:`time`."""

    def __init__(self, start_unix_s: float = 1_700_000_000.0) -> None:
        self.t = 0.0
        self._unix0 = start_unix_s

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return self._unix0 + self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    __call__ = monotonic


# --- fake pynvml -----------------------------------------------------------------------


class FakeNVMLError(Exception):
    """Mirrors ``pynvml.NVMLError``: the NVML return code is in ``.value``."""

    def __init__(self, value: int) -> None:
        super().__init__(f"fake NVML error {value}")
        self.value = value


@dataclass(frozen=True)
class FakeMigDevice:
    """A MIG device (a GPU instance's compute instance) of a :class:`FakeGpu`: what
    ``nvmlDeviceGetAttributes`` reports for it (slices of the GPU's 7 on an A100/H100)."""

    uuid: str
    name: str = "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    gpu_slices: int = 3
    compute_slices: int = 3
    memory_mb: int = 19968


@dataclass
class FakeGpu:
    """One scripted GPU. ``trace`` is its power in watts over the fake clock.

    ``fail_power_between`` / ``fail_energy_between`` = ``(t0, t1)``: power reads / energy
    counter reads raise ``NVML_ERROR_GPU_IS_LOST`` in that window of the fake clock (use
    ``float("inf")`` for "from t0 on"). ``power_update_s`` / ``power_coverage``: a power
    sensor that averages only part of each update period (:meth:`sensed_power_w`).
    ``energy_update_s``: the energy counter advances only every that many seconds
    (:meth:`counter_j`); ``power_average_s``: ``nvmlDeviceGetPowerUsage`` and the field
    ``NVML_FI_DEV_POWER_AVERAGE`` are the mean power over that window, updated every
    ``power_update_s`` (:meth:`averaged_power_w`). ``loads`` are ``(t0, t1, watts)`` added to
    the trace (a load step: :class:`FakeLoad`).

    MIG: ``mig_devices`` are the MIG devices that exist on it (``mig_enabled`` must be set),
    ``mig_slices`` the compute slices of the whole GPU (7 on A100/H100, 4 on A30);
    ``mig_uuids`` are further MIG UUIDs NVML resolves but has no attributes for.
    """

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    trace: PowerTrace = field(default_factory=lambda: PowerTrace.constant(100.0))
    has_energy_counter: bool = True
    has_power_instant: bool = True
    has_power_usage: bool = True
    mig_enabled: bool = False
    mig_uuids: tuple[str, ...] = ()
    mig_devices: tuple[FakeMigDevice, ...] = ()
    mig_slices: int = 7
    counter_offset_mj: int = 123_456_789
    power_limit_mw: int = 700_000
    fail_power_between: tuple[float, float] | None = None
    fail_energy_between: tuple[float, float] | None = None
    power_update_s: float | None = None
    power_coverage: float = 1.0
    energy_update_s: float | None = None
    power_average_s: float | None = None
    has_power_average: bool = True
    loads: list[tuple[float, float, float]] = field(default_factory=list)

    def power_w(self, t: float) -> float:
        """The true power at ``t``: the trace plus the loads running then."""
        return self.trace.power_w(t) + sum(w for a, b, w in self.loads if a <= t < b)

    def energy_j(self, t: float) -> float:
        """The true energy from 0 to ``t``: the trace's plus the loads'."""
        return self.trace.energy_j(t) + sum(w * max(min(t, b) - a, 0.0) for a, b, w in self.loads)

    def counter_j(self, t: float) -> float:
        """What the energy counter reads at ``t``: the true energy, or, with
        ``energy_update_s``, the true energy at the counter's last update."""
        u = self.energy_update_s
        return self.energy_j(t if u is None else math.floor(t / u + 1e-9) * u)

    def averaged_power_w(self, t: float) -> float:
        """The averaged power reading at ``t``: with ``power_average_s`` the mean of the true
        power over that window, ending at the last update (``power_update_s``); else what
        :meth:`sensed_power_w` reports."""
        w = self.power_average_s
        if w is None:
            return self.sensed_power_w(t)
        u = self.power_update_s
        end = t if u is None else math.floor(t / u + 1e-9) * u
        return (self.energy_j(end) - self.energy_j(end - w)) / w

    def sensed_power_w(self, t: float) -> float:
        """What the power sensor reports at ``t``: the trace itself, or, with
        ``power_update_s``, the mean of the trace over the first ``power_coverage`` of the
        last completed update period (an A100/H100 averages about 25% of each 100 ms: Yang et
        al., SC24), while the energy counter integrates the whole trace."""
        u = self.power_update_s
        if u is None:
            return self.power_w(t)
        start = max(math.floor(t / u + 1e-9) - 1, 0) * u
        width = u * min(max(self.power_coverage, 1e-6), 1.0)
        return (self.energy_j(start + width) - self.energy_j(start)) / width


@dataclass
class _Value:
    uiVal: int


@dataclass
class _FieldValue:
    nvmlReturn: int
    value: _Value
    timestamp: int = 0


@dataclass
class _MemInfo:
    total: int


@dataclass(frozen=True)
class _MigHandle:
    parent: int
    uuid: str


@dataclass
class _DeviceAttributes:
    """``c_nvmlDeviceAttributes`` (the fields greentrack reads and their neighbours)."""

    multiprocessorCount: int
    gpuInstanceSliceCount: int
    computeInstanceSliceCount: int
    memorySizeMB: int


@dataclass
class _ProfileInfo:
    """``c_nvmlGpuInstanceProfileInfo_v2_t`` (the fields greentrack reads)."""

    id: int
    sliceCount: int
    instanceCount: int


class FakeNvml:
    """Implements the ``pynvml`` calls greentrack uses, over scripted GPUs.

    ``calls`` counts calls by function name, so tests can check that the expensive energy
    counter is not read on the per-step path. ``init_error`` makes ``nvmlInit`` fail with
    that NVML code (e.g. ``NVML_ERROR_LIBRARY_NOT_FOUND``).
    """

    NVMLError = FakeNVMLError
    NVML_SUCCESS = 0
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_NOT_FOUND = 6
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
    NVML_FI_DEV_POWER_AVERAGE = 185
    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_DEVICE_MIG_ENABLE = 1
    NVML_ERROR_INVALID_ARGUMENT = 2
    # nvmlGpuInstanceProfile values and the slices each takes (nvml.h)
    NVML_GPU_INSTANCE_PROFILE_1_SLICE = 0
    NVML_GPU_INSTANCE_PROFILE_2_SLICE = 1
    NVML_GPU_INSTANCE_PROFILE_3_SLICE = 2
    NVML_GPU_INSTANCE_PROFILE_4_SLICE = 3
    NVML_GPU_INSTANCE_PROFILE_7_SLICE = 4
    NVML_GPU_INSTANCE_PROFILE_8_SLICE = 5
    NVML_GPU_INSTANCE_PROFILE_6_SLICE = 6
    _PROFILE_SLICES: ClassVar[dict[int, int]] = {0: 1, 1: 2, 2: 3, 3: 4, 4: 7, 5: 8, 6: 6}

    def __init__(
        self,
        gpus: Sequence[FakeGpu],
        clock: Callable[[], float],
        *,
        driver: str = "570.86.15",
        init_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus)
        self.clock = clock
        self.driver = driver
        self.init_error = init_error
        self.initialized = 0
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _gpu(self, handle: Any) -> FakeGpu:
        if not isinstance(handle, int) or not 0 <= handle < len(self.gpus):
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return self.gpus[handle]

    def nvmlInit(self) -> None:
        self._count("nvmlInit")
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._count("nvmlShutdown")
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._gpu(index)
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> Any:
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return i
            if uuid in gpu.mig_uuids or any(d.uuid == uuid for d in gpu.mig_devices):
                return _MigHandle(i, uuid)
        raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)

    def _mig(self, handle: Any) -> FakeMigDevice:
        if not isinstance(handle, _MigHandle):
            raise FakeNVMLError(self.NVML_ERROR_INVALID_ARGUMENT)
        for dev in self.gpus[handle.parent].mig_devices:
            if dev.uuid == handle.uuid:
                return dev
        raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetAttributes(self, handle: Any) -> _DeviceAttributes:
        """Only MIG device handles are supported, as in NVML."""
        dev = self._mig(handle)
        return _DeviceAttributes(
            multiprocessorCount=dev.compute_slices * 14,
            gpuInstanceSliceCount=dev.gpu_slices,
            computeInstanceSliceCount=dev.compute_slices,
            memorySizeMB=dev.memory_mb,
        )

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        gpu = self._gpu(handle)
        return gpu.mig_slices if gpu.mig_enabled else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> _MigHandle:
        gpu = self._gpu(handle)
        if not gpu.mig_enabled:
            raise FakeNVMLError(self.NVML_ERROR_INVALID_ARGUMENT)
        if not 0 <= index < len(gpu.mig_devices):
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return _MigHandle(handle, gpu.mig_devices[index].uuid)

    def nvmlDeviceGetGpuInstanceProfileInfo(
        self, handle: Any, profile: int, version: int = 2
    ) -> _ProfileInfo:
        gpu = self._gpu(handle)
        slices = self._PROFILE_SLICES.get(profile)
        if not gpu.mig_enabled or slices is None or slices > gpu.mig_slices or slices in (6, 8):
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return _ProfileInfo(id=profile, sliceCount=slices, instanceCount=gpu.mig_slices // slices)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: Any) -> int:
        if not isinstance(handle, _MigHandle):
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return handle.parent

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        if isinstance(handle, _MigHandle):
            return handle.uuid
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: Any) -> str:
        if isinstance(handle, _MigHandle):
            return self._mig(handle).name
        return self._gpu(handle).name

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        return self._gpu(handle).power_limit_mw

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> _MemInfo:
        self._gpu(handle)
        return _MemInfo(total=80 * 2**30)

    def nvmlDeviceGetMigMode(self, handle: Any) -> tuple[int, int]:
        gpu = self._gpu(handle)
        return (int(gpu.mig_enabled), int(gpu.mig_enabled))

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        self._count("nvmlDeviceGetTotalEnergyConsumption")
        gpu = self._gpu(handle)
        if not gpu.has_energy_counter:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        window = gpu.fail_energy_between
        if window is not None and window[0] <= self.clock() < window[1]:
            raise FakeNVMLError(self.NVML_ERROR_GPU_IS_LOST)
        return gpu.counter_offset_mj + int(gpu.counter_j(self.clock()) * 1000.0)

    def _power_failing(self, gpu: FakeGpu) -> bool:
        window = gpu.fail_power_between
        return window is not None and window[0] <= self.clock() < window[1]

    def nvmlDeviceGetFieldValues(self, handle: Any, field_ids: Sequence[int]) -> list[_FieldValue]:
        self._count("nvmlDeviceGetFieldValues")
        gpu = self._gpu(handle)
        if self._power_failing(gpu):
            raise FakeNVMLError(self.NVML_ERROR_GPU_IS_LOST)
        out = []
        for fid in field_ids:
            if fid == self.NVML_FI_DEV_POWER_INSTANT and gpu.has_power_instant:
                mw = round(gpu.sensed_power_w(self.clock()) * 1000.0)
                out.append(_FieldValue(self.NVML_SUCCESS, _Value(mw)))
            elif fid == self.NVML_FI_DEV_POWER_AVERAGE and gpu.has_power_average:
                mw = round(gpu.averaged_power_w(self.clock()) * 1000.0)
                out.append(_FieldValue(self.NVML_SUCCESS, _Value(mw)))
            else:
                out.append(_FieldValue(self.NVML_ERROR_NOT_SUPPORTED, _Value(0)))
        return out

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self._count("nvmlDeviceGetPowerUsage")
        gpu = self._gpu(handle)
        if not gpu.has_power_usage:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        if self._power_failing(gpu):
            raise FakeNVMLError(self.NVML_ERROR_GPU_IS_LOST)
        return round(gpu.averaged_power_w(self.clock()) * 1000.0)


class FakeLoad:
    """A load step on fake GPUs, as :mod:`greentrack.meters.probe` drives one: ``start``
    adds ``watts`` to every GPU from the fake clock's now for ``duration_s``."""

    label = "a scripted load step (fake)"

    def __init__(self, gpus: Sequence[FakeGpu], clock: Callable[[], float], watts: float) -> None:
        self.gpus = list(gpus)
        self.clock = clock
        self.watts = watts
        self.started: list[tuple[float, float]] = []

    def prepare(self, duration_s: float) -> None:
        pass

    def start(self, duration_s: float) -> None:
        now = self.clock()
        self.started.append((now, duration_s))
        for gpu in self.gpus:
            gpu.loads.append((now, now + duration_s, self.watts))

    def close(self) -> None:
        pass


# --- scripted meter -----------------------------------------------------------------------


@dataclass(frozen=True)
class FakeChannelSpec:
    """How a :class:`FakeMeter` channel behaves."""

    id: str
    component: Component = "gpu"
    trace: PowerTrace = field(default_factory=lambda: PowerTrace.constant(100.0))
    source: Source = "measured"
    has_energy: bool = True
    has_power: bool = True


class FakeMeter:
    """A meter whose channels follow scripted power traces over an injected clock.

    ``fail_between=(t0, t1)`` makes every read raise :class:`MeterError` in that window.
    """

    def __init__(
        self,
        specs: Sequence[FakeChannelSpec],
        clock: Callable[[], float],
        *,
        fail_between: tuple[float, float] | None = None,
    ) -> None:
        self._specs = {s.id: s for s in specs}
        self._clock = clock
        self._t0 = clock()
        self.fail_between = fail_between
        self.reads = 0
        self._channels = tuple(
            Channel(
                s.id,
                s.component,
                f"fake {s.component} {s.id}",
                s.source,
                "fake-energy-counter" if s.has_energy else None,
                "fake-power" if s.has_power else None,
                {"fake": True},
            )
            for s in specs
        )

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def _check(self) -> float:
        self.reads += 1
        now = self._clock()
        if self.fail_between and self.fail_between[0] <= now < self.fail_between[1]:
            raise MeterError(f"fake meter failure at t={now:.3f}")
        return now

    def read_energy_j(self) -> dict[str, float]:
        now = self._check()
        return {
            cid: s.trace.energy_j(now) - s.trace.energy_j(self._t0)
            for cid, s in self._specs.items()
            if s.has_energy
        }

    def read_power_w(self) -> dict[str, float]:
        now = self._check()
        return {cid: s.trace.power_w(now) for cid, s in self._specs.items() if s.has_power}

    def close(self) -> None:
        pass
