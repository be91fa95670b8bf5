"""Estimated CPU (and optionally DRAM) energy where nothing can be measured.

CPU: ``E = TDP x u x t``, linear in utilisation ``u`` and zero at idle (CodeCarbon 3.3's
``cpu_load`` mode uses the same line with a floor at 10 % of TDP; greentrack adds no floor, so
idle power is not counted: the boundary in the report says so). ``u x t`` is taken exactly
from the kernel's CPU-time counters (``psutil.cpu_times``: user + nice + system + irq +
softirq, summed over logical CPUs, divided by their number), so the result does not depend
on a sampling rate:

    E_cpu [J] = TDP [W] x packages x delta(busy CPU seconds) / logical CPUs

DRAM (off unless asked): ``E = w_per_gb x installed GB x t``, a constant-power model
(0.375 W/GB per Crucial's guidance, as CodeCarbon uses; measurements dispute it).

Every channel here is labelled ``estimated`` with its method; greentrack never mixes it
silently with measured figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from greentrack.errors import MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.tdp import cpu_model_and_packages, lookup_tdp

CPU_METHOD = "tdp-x-utilisation"
DRAM_METHOD = "w-per-gb-x-installed-memory"
CRUCIAL_W_PER_GB = 0.375


def _busy_seconds(times: Any) -> float:
    busy = 0.0
    for field in ("user", "nice", "system", "irq", "softirq"):
        busy += float(getattr(times, field, 0.0))
    return busy


class EstimatedCpuMeter:
    """CPU energy modelled from TDP and the kernel's CPU-time counters.

    Args:
        tdp_w: the TDP of one package in watts; ``None`` looks the CPU model up in the bundled
            table (raises :class:`MeterUnavailableError` naming the model when it is absent).
        cpu_model, packages: override what ``/proc/cpuinfo`` says.
        cpu_times, cpu_count: injectable for tests (default ``psutil``).
        dram_w_per_gb: also estimate DRAM at this many W per GB installed (``None``: do not).
        memory_bytes, clock: installed memory and a monotonic clock for the DRAM model.
    """

    def __init__(
        self,
        *,
        tdp_w: float | None = None,
        cpu_model: str | None = None,
        packages: int | None = None,
        cpu_times: Callable[[], Any] | None = None,
        cpu_count: int | None = None,
        dram_w_per_gb: float | None = None,
        memory_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import psutil

        detected_model, detected_packages = cpu_model_and_packages()
        model = cpu_model or detected_model
        self._packages = packages or detected_packages
        details: dict[str, Any] = {"cpu_model": model, "packages": self._packages}
        if tdp_w is None:
            match = lookup_tdp(model)
            if match is None:
                raise MeterUnavailableError(
                    f"CPU model {model!r} is not in the bundled TDP table, so its energy cannot "
                    "be estimated; pass cpu_tdp_w=<watts per package> (or set "
                    "GREENTRACK_CPU_TDP_W). In a VM, use the TDP share of your vCPUs."
                )
            tdp_w = match.tdp_w
            details.update(
                tdp_source="bundled table (CodeCarbon cpu_power.csv, MIT)",
                tdp_table_name=match.table_name,
            )
        else:
            details["tdp_source"] = "given by the user"
        if tdp_w <= 0:
            raise ValueError(f"cpu_tdp_w must be positive watts, got {tdp_w}")
        details["tdp_w"] = tdp_w
        self._tdp_w = float(tdp_w)
        self._cpu_times = cpu_times or (lambda: psutil.cpu_times(percpu=False))
        self._logical = cpu_count or psutil.cpu_count(logical=True) or 1
        self._start_busy = _busy_seconds(self._cpu_times())
        channels = [
            Channel(
                "cpu", "cpu", f"{model} x{self._packages}", "estimated", CPU_METHOD, None, details
            )
        ]
        self._clock = clock
        self._t0 = clock()
        self._dram_w = 0.0
        if dram_w_per_gb is not None:
            if dram_w_per_gb <= 0:
                raise ValueError(f"dram_w_per_gb must be positive, got {dram_w_per_gb}")
            mem = memory_bytes or psutil.virtual_memory().total
            self._dram_w = dram_w_per_gb * mem / 1e9
            channels.append(
                Channel(
                    "dram",
                    "dram",
                    "DRAM",
                    "estimated",
                    DRAM_METHOD,
                    None,
                    {"w_per_gb": dram_w_per_gb, "memory_bytes": mem, "power_w": self._dram_w},
                )
            )
        self._channels = tuple(channels)

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def read_energy_j(self) -> dict[str, float]:
        busy = _busy_seconds(self._cpu_times()) - self._start_busy
        out = {"cpu": self._tdp_w * self._packages * busy / self._logical}
        if self._dram_w:
            out["dram"] = self._dram_w * (self._clock() - self._t0)
        return out

    def read_power_w(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass
