"""Estimated CPU (and optionally DRAM) energy where nothing can be measured.

Both CPU models use the kernel's CPU-time counters, so they integrate exactly, whatever the
sampling rate. ``busy`` is, with ``scope="process"`` (the default), the CPU-seconds of this
process and its children (user + system, live children and reaped ones): processes that
share a machine (a Flower server and its simulated clients, several jobs) each count their
own, so their estimates add up to what they used together, never to several times the
machine. With ``scope="system"``, it is user + nice + system + irq + softirq CPU-seconds of
the CPUs this process may run on (``os.sched_getaffinity``), whoever used them.

* TDP model, when the CPU model is in the bundled table or ``cpu_tdp_w`` is given:
  ``E [J] = TDP [W] x packages x delta(busy) / logical CPUs of the machine``, linear in
  utilisation and zero at idle. (CodeCarbon 3.3's ``cpu_load`` mode uses the same line with a
  floor at 10 % of TDP; greentrack adds no floor, so idle power is not counted and the boundary
  says so.)
* Per-vCPU model, when the CPU model is unknown (typical of cloud VMs, which hide it), with
  Cloud Carbon Footprint's SPECpower-derived coefficients per vCPU (AWS average: W_min =
  0.74 W at 0 %, W_max = 3.5 W at 100 % utilisation; CCF methodology, Appendix I,
  Apache-2.0): ``E [J] = W_max x delta(busy)`` for a process (its share of the machine; idle
  power is not counted, as in the TDP model), or ``W_min x vCPUs x t + (W_max - W_min) x
  delta(busy)`` for the whole machine (``scope="system"``).

DRAM (off unless asked): ``E = w_per_gb x installed GB x t``, a constant-power model
(0.375 W/GB per Crucial's guidance, as CodeCarbon uses; measurements dispute it).

Every channel here is labelled ``estimated`` with its method; greentrack never mixes it
silently with measured figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from greentrack.meters.base import Channel
from greentrack.meters.tdp import cpu_model_and_packages, lookup_tdp

TDP_METHOD = "tdp-x-utilisation"
VCPU_METHOD = "per-vcpu-specpower-coefficients"
DRAM_METHOD = "w-per-gb-x-installed-memory"
CRUCIAL_W_PER_GB = 0.375
# Cloud Carbon Footprint methodology, Appendix I (AWS average, derived from SPECpower).
CCF_VCPU_MIN_W = 0.74
CCF_VCPU_MAX_W = 3.5
_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")

CpuTimes = Callable[[], Sequence[Any]]
Scope = Literal["process", "system"]


_CLK_TCK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
CHILDREN_RESCAN_S = 1.0
"""How often :func:`process_busy_s` looks for new child processes; in between it reads only
the children it already knows (a child started since is counted, whole, from the next scan).
A scan opens a file per thread of the process (~0.1-0.3 ms with cold caches): an FL client
mod reading at every message of 50 ms must not scan at each one."""


@dataclass(frozen=True)
class _Children:
    """The live descendants found by the last scan, per process (a fork starts afresh)."""

    owner: int  # os.getpid() of the process that scanned
    scanned: float  # monotonic time of the scan
    pids: tuple[tuple[str, str], ...]  # (pid, its parent's pid), as /proc numbers them
    lists: bool  # whether the kernel keeps /proc/PID/task/TID/children lists (else psutil)


_CHILDREN: list[_Children] = []  # replaced whole (one store): safe across threads

try:
    import resource as _resource
except ImportError:  # not Unix
    _resource = None  # type: ignore[assignment]


def process_busy_s() -> float:
    """CPU-seconds (user + system) of this process and its children: those it has waited for
    (:func:`_own_and_reaped_s`, to the microsecond) and those still running (to the clock
    tick, with what they have waited for in turn). The live ones are found from the kernel's
    ``/proc/PID/task/TID/children`` lists at most every :data:`CHILDREN_RESCAN_S` (else by
    psutil's scan of every process, ~1 ms with 80 processes) and read from
    ``/proc/PID/stat`` at every call: about a microsecond with no children, so an FL client
    mod can read it at every message."""
    busy = _own_and_reaped_s()
    now = time.monotonic()
    known = _CHILDREN[0] if _CHILDREN else None
    if known is None or known.owner != os.getpid() or now - known.scanned >= CHILDREN_RESCAN_S:
        found = _scan_children()
        known = _Children(os.getpid(), now, tuple(found or ()), found is not None)
        _CHILDREN[:] = [known]
    if not known.lists:
        return busy + _psutil_children_cpu_s()
    for pid, parent in known.pids:
        busy += _stat_cpu_s(pid, parent)
    return busy


def _own_and_reaped_s() -> float:
    """CPU-seconds of this process (all threads) and of the children it has waited for, to
    the microsecond where the platform has ``getrusage`` (``os.times`` counts in clock ticks,
    10 ms: too coarse for an FL client's 50 ms message)."""
    if _resource is None:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system
    reaped = _resource.getrusage(_resource.RUSAGE_CHILDREN)
    return time.process_time() + reaped.ru_utime + reaped.ru_stime


def _psutil_children_cpu_s() -> float:
    """CPU-seconds of the live descendants, by psutil's scan of the process table."""
    import psutil

    busy = 0.0
    try:
        for child in psutil.Process().children(recursive=True):
            try:
                c = child.cpu_times()
                busy += c.user + c.system + c.children_user + c.children_system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return busy


def _scan_children() -> list[tuple[str, str]] | None:
    """``(pid, parent pid)`` of this process's live descendants, numbered as ``/proc``
    numbers them (in another pid namespace than ours they differ from ``os.getpid()``);
    ``None`` where the kernel keeps no children lists (or ``/proc`` cannot be read: psutil
    then answers for this scan)."""
    try:
        me = os.readlink("/proc/self")
    except OSError:
        return None
    direct = _children_of(me)
    if direct is None:
        return None
    out: list[tuple[str, str]] = []
    seen = {me}
    stack = [(child, me) for child in direct]
    while stack:
        pid, parent = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append((pid, parent))
        stack += [(grandchild, pid) for grandchild in _children_of(pid) or ()]
    return out


def _children_of(pid: str) -> list[str] | None:
    """The children of ``pid`` from the children lists of its threads; ``None`` when no
    thread's list could be read (no such lists in this kernel, or the process ended)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    children: list[str] = []
    read = False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                children += f.read().decode().split()
            read = True
        except OSError:
            continue  # the thread ended, or the kernel has no such list
    return children if read else None


def _stat_cpu_s(pid: str, parent: str) -> float:
    """CPU-seconds of ``pid`` (utime + stime) and of the children it has waited for (cutime +
    cstime), if it is still the child of ``parent`` (else 0: it ended, and its time is in its
    parent's once reaped, or the pid is reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        if fields[1].decode() != parent:
            return 0.0
        return sum(int(v) for v in fields[11:15]) / _CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _busy_seconds(per_cpu: Sequence[Any], cpus: Sequence[int]) -> float:
    total = 0.0
    for i in cpus:
        if i < len(per_cpu):
            total += sum(float(getattr(per_cpu[i], f, 0.0)) for f in _BUSY_FIELDS)
    return total


def _affinity(count: int) -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(count))


class EstimatedCpuMeter:
    """CPU energy modelled from the kernel's CPU-time counters.

    Args:
        tdp_w: TDP of one package in watts (TDP model). ``None``: look the CPU model up in
            the bundled table, else fall back to the per-vCPU model.
        cpu_model, packages: override what ``/proc/cpuinfo`` says.
        cpu_times: per-CPU times, injectable for tests (default ``psutil.cpu_times(percpu=True)``);
            giving it implies ``scope="system"``.
        scope: ``"process"`` (this process and its children; default) or ``"system"`` (every
            CPU this process may run on, whoever uses it).
        process_busy: CPU-seconds of this process tree, injectable for tests.
        cpus: indices of the CPUs this process may use (default: its affinity set).
        logical_cpus: logical CPUs of the machine (default ``psutil.cpu_count()``).
        dram_w_per_gb: also estimate DRAM at this many W per GB installed (``None``: do not).
        memory_bytes, clock: installed memory and a monotonic clock in seconds.
    """

    def __init__(
        self,
        *,
        tdp_w: float | None = None,
        cpu_model: str | None = None,
        packages: int | None = None,
        cpu_times: CpuTimes | None = None,
        scope: Scope | None = None,
        process_busy: Callable[[], float] | None = None,
        cpus: Sequence[int] | None = None,
        logical_cpus: int | None = None,
        dram_w_per_gb: float | None = None,
        memory_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import psutil

        detected_model, detected_packages = cpu_model_and_packages()
        model = cpu_model or detected_model
        self._packages = packages or detected_packages
        self._logical = logical_cpus or psutil.cpu_count(logical=True) or 1
        self._cpus = list(cpus) if cpus is not None else _affinity(self._logical)
        self._cpu_times = cpu_times or (lambda: psutil.cpu_times(percpu=True))
        self.scope: Scope = scope or ("system" if cpu_times is not None else "process")
        if self.scope not in ("process", "system"):
            raise ValueError(f"scope must be 'process' or 'system', got {self.scope!r}")
        self._process_busy = process_busy or process_busy_s
        self._clock = clock
        details: dict[str, Any] = {
            "cpu_model": model,
            "packages": self._packages,
            "logical_cpus": self._logical,
            "cpus_used": len(self._cpus),
            "scope": self.scope,
        }
        if tdp_w is None:
            match = lookup_tdp(model)
            if match is not None:
                tdp_w = match.tdp_w
                details.update(
                    tdp_source="bundled table (CodeCarbon cpu_power.csv, MIT)",
                    tdp_table_name=match.table_name,
                )
        else:
            details["tdp_source"] = "given by the user"
        self._tdp_w: float | None = None
        if tdp_w is not None:
            if tdp_w <= 0:
                raise ValueError(f"cpu_tdp_w must be positive watts per package, got {tdp_w}")
            self._tdp_w = float(tdp_w)
            details["tdp_w"] = self._tdp_w
            method = TDP_METHOD
        else:
            details.update(
                vcpu_min_w=CCF_VCPU_MIN_W,
                vcpu_max_w=CCF_VCPU_MAX_W,
                note=(
                    f"CPU model {model!r} is not in the TDP table: per-vCPU coefficients of "
                    "Cloud Carbon Footprint (AWS average, SPECpower). To use a TDP instead, "
                    "pass --cpu-tdp-w W (cpu_tdp_w=W in Python)."
                ),
            )
            method = VCPU_METHOD
        self._t0 = clock()
        self._start_busy = self._busy()
        self._last_busy = 0.0
        channels = [Channel("cpu", "cpu", model, "estimated", method, None, details)]
        self._dram_w = 0.0
        if dram_w_per_gb is not None:
            if dram_w_per_gb <= 0:
                raise ValueError(f"dram_w_per_gb must be positive, got {dram_w_per_gb}")
            mem = memory_bytes or psutil.virtual_memory().total
            self._dram_w = dram_w_per_gb * mem / 1e9
            dram_details = {"w_per_gb": dram_w_per_gb, "memory_bytes": mem, "power_w": self._dram_w}
            channels.append(
                Channel("dram", "dram", "DRAM", "estimated", DRAM_METHOD, None, dram_details)
            )
        self._channels = tuple(channels)

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def _busy(self) -> float:
        if self.scope == "process":
            return self._process_busy()
        return _busy_seconds(self._cpu_times(), self._cpus)

    def read_energy_j(self) -> dict[str, float]:
        # never decreasing: a child reaped by someone else takes its CPU time with it
        busy = max(self._last_busy, self._busy() - self._start_busy)
        self._last_busy = busy
        elapsed = self._clock() - self._t0
        if self._tdp_w is not None:
            cpu = self._tdp_w * self._packages * busy / self._logical
        elif self.scope == "process":
            cpu = CCF_VCPU_MAX_W * busy
        else:
            idle_w = CCF_VCPU_MIN_W * len(self._cpus)
            cpu = idle_w * elapsed + (CCF_VCPU_MAX_W - CCF_VCPU_MIN_W) * busy
        out = {"cpu": cpu}
        if self._dram_w:
            out["dram"] = self._dram_w * elapsed
        return out

    def read_power_w(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass
