"""A fake ``amdsmi`` module (ROCm's Python API) over scripted GPUs, for tests at the OS boundary.

Shaped as AMD's published API (``py-interface/amdsmi_interface.py`` and its README): the
``amdsmi_*`` functions return the same dictionaries (``energy_accumulator``,
``counter_resolution``, ``timestamp``; ``current_socket_power``, ``average_socket_power`` in
whole watts or ``"N/A"``), failures raise ``AmdSmiLibraryException`` with the library's status
code (``AMDSMI_STATUS_NOT_SUPPORTED`` = 2 on a virtual machine guest), and
``amdsmi_get_gpu_enumeration_info`` exists only where ``rocm_6_4`` says so.

A two-die MI250 is two :class:`FakeAmdGpu`: the primary's trace is the package's power and
the secondary's accumulator reads 0, its socket power ``"N/A"`` (what AMD's rocm-smi calls a
"secondary die"). ``zero_watts`` scripts a broken die: 0 W while ``gfx_activity`` is busy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from types import SimpleNamespace
from typing import Any

from greentrack.meters.fake import PowerTrace

STATUS_NOT_SUPPORTED = 2
STATUS_INIT_ERROR = 18
STATUS_DRIVER_NOT_LOADED = 34
_MESSAGES = {
    STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}


class AmdSmiException(Exception):
    """Base class of the library's exceptions (``amdsmi_exception.py``)."""


class AmdSmiLibraryException(AmdSmiException):
    """An error status from the library: ``get_error_code()``, ``get_error_info()``."""

    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = abs(err_code)
        self.err_info = _MESSAGES.get(self.err_code, "AMDSMI_STATUS_UNKNOWN_ERROR")

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_code(self) -> int:
        return self.err_code

    def get_error_info(self) -> str:
        return self.err_info


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 4294967295
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2


@dataclass
class FakeAmdGpu:
    """One scripted AMD device (a GCD of an MI250 is one device)."""

    market_name: str = "AMD Instinct MI300X"
    uuid: str = "6aff74a1-0000-1000-80fa-000000000000"
    bdf: str = "0000:05:00.0"
    asic_serial: str = "0x5F3A9C0B12345678"
    trace: PowerTrace = field(default_factory=lambda: PowerTrace.constant(300.0))
    hip_id: int | None = None  # None: its position in the list
    kfd_node: int | None = None
    secondary: bool = False
    vm_guest: bool = False
    zero_watts: bool = False
    gfx_activity: int = 90
    resolution_uj: float = 15.259
    counter_offset: int = 4_000_000
    power_cap_uw: int = 750_000_000
    driver_version: str = "6.8.5"
    current_power: bool = True  # False: current_socket_power is "N/A" (average only)


@dataclass(frozen=True)
class _Handle:
    index: int


class FakeAmdSmi:
    """The ``amdsmi`` calls greentrack makes, over scripted devices and an injected clock.

    ``calls`` counts calls by name; ``initialized`` counts init minus shut-down.
    """

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiInitFlags = AmdSmiInitFlags
    amdsmi_wrapper = SimpleNamespace(
        AMDSMI_STATUS_SUCCESS=0,
        AMDSMI_STATUS_NOT_SUPPORTED=STATUS_NOT_SUPPORTED,
        AMDSMI_STATUS_INIT_ERROR=STATUS_INIT_ERROR,
        AMDSMI_STATUS_DRIVER_NOT_LOADED=STATUS_DRIVER_NOT_LOADED,
    )

    def __init__(
        self,
        gpus: Sequence[FakeAmdGpu],
        clock: Callable[[], float],
        *,
        rocm_6_4: bool = True,
        init_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus)
        self.clock = clock
        self.init_error = init_error
        self.initialized = 0
        self.calls: dict[str, int] = {}
        if rocm_6_4:
            self.amdsmi_get_gpu_enumeration_info = self._enumeration_info

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _gpu(self, handle: Any) -> FakeAmdGpu:
        if not isinstance(handle, _Handle):
            raise TypeError("Invalid parameter: expected amdsmi_processor_handle")
        return self.gpus[handle.index]

    def amdsmi_init(self, flag: int = 2) -> None:
        self._count("amdsmi_init")
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self.initialized += 1

    def amdsmi_shut_down(self) -> None:
        self._count("amdsmi_shut_down")
        self.initialized -= 1

    def amdsmi_get_processor_handles(self) -> list[_Handle]:
        return [_Handle(i) for i in range(len(self.gpus))]

    def amdsmi_get_gpu_asic_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        return {
            "market_name": gpu.market_name,
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "device_id": "0x740c",
            "asic_serial": gpu.asic_serial,
            "oam_id": "N/A",
        }

    def amdsmi_get_gpu_device_uuid(self, handle: Any) -> str:
        return self._gpu(handle).uuid

    def amdsmi_get_gpu_device_bdf(self, handle: Any) -> str:
        return self._gpu(handle).bdf

    def amdsmi_get_gpu_driver_info(self, handle: Any) -> dict[str, str]:
        gpu = self._gpu(handle)
        return {"driver_name": "amdgpu", "driver_version": gpu.driver_version, "driver_date": ""}

    def _enumeration_info(self, handle: Any) -> dict[str, int]:
        gpu = self._gpu(handle)
        hip = gpu.hip_id if gpu.hip_id is not None else handle.index
        return {"drm_render": 128 + handle.index, "drm_card": handle.index, "hip_id": hip}

    def amdsmi_get_gpu_kfd_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        node = gpu.kfd_node if gpu.kfd_node is not None else handle.index + 1
        return {"kfd_id": 1000 + node, "node_id": node, "current_partition_id": 0}

    def amdsmi_get_energy_count(self, handle: Any) -> dict[str, Any]:
        self._count("amdsmi_get_energy_count")
        gpu = self._gpu(handle)
        if gpu.vm_guest:
            raise AmdSmiLibraryException(STATUS_NOT_SUPPORTED)
        now = self.clock()
        counts = 0
        if not gpu.secondary:
            counts = gpu.counter_offset + int(gpu.trace.energy_j(now) * 1e6 / gpu.resolution_uj)
        return {
            "power": counts,  # the pre-6.4 key, kept by the library until removed
            "energy_accumulator": counts,
            "counter_resolution": gpu.resolution_uj,
            "timestamp": 1_000_000_000 + int(now * 1e9),
        }

    def amdsmi_get_power_info(self, handle: Any) -> dict[str, Any]:
        self._count("amdsmi_get_power_info")
        gpu = self._gpu(handle)
        if gpu.vm_guest:
            raise AmdSmiLibraryException(STATUS_NOT_SUPPORTED)
        watts = 0 if gpu.zero_watts else round(gpu.trace.power_w(self.clock()))
        if gpu.secondary:
            return {"current_socket_power": "N/A", "average_socket_power": "N/A"}
        return {
            "current_socket_power": watts if gpu.current_power else "N/A",
            "average_socket_power": watts,
            "gfx_voltage": 800,
            "soc_voltage": 800,
            "mem_voltage": 1200,
            "power_limit": gpu.power_cap_uw // 1_000_000,
        }

    def amdsmi_get_power_cap_info(self, handle: Any) -> dict[str, int]:
        gpu = self._gpu(handle)
        if gpu.vm_guest:
            raise AmdSmiLibraryException(STATUS_NOT_SUPPORTED)
        cap = gpu.power_cap_uw
        return {
            "power_cap": cap,
            "default_power_cap": cap,
            "dpm_cap": 0,
            "min_power_cap": 0,
            "max_power_cap": cap,
        }

    def amdsmi_get_gpu_activity(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        return {"gfx_activity": gpu.gfx_activity, "umc_activity": 10, "mm_activity": "N/A"}
