"""NVIDIA GPU energy through NVML (``nvidia-ml-py``, module ``pynvml``).

Sources, best first (each channel records which one it uses):

* energy: ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since driver load; Volta and
  newer). A call costs milliseconds on an H100, so it is read at span edges and every few
  seconds, never per step. GPUs without it have their sampled power integrated instead.
* power: the field ``NVML_FI_DEV_POWER_INSTANT`` (microseconds a call), sampled ~10 Hz for
  the timeline; else ``nvmlDeviceGetPowerUsage``, a ~1 s moving average on recent GPUs,
  labelled as such.

Only the GPUs visible to this process are opened: ``CUDA_VISIBLE_DEVICES`` is parsed the way
the CUDA runtime parses it (indices, ``GPU-`` UUID prefixes, ``MIG-`` instance UUIDs; parsing
stops at the first invalid entry).

MIG: NVML gives no energy or power per MIG device, only the physical GPU's. A process on a
MIG slice counts the slice's share of its GPU's readings, by compute slices: the slices of its
MIG device(s) (``nvmlDeviceGetAttributes``: ``computeInstanceSliceCount``) over the GPU's
(the largest GPU-instance profile's ``sliceCount``: 7 on A100/H100). Its methods end in
``x MIG compute-slice share (attribution)``; never the whole GPU, and never 0 without a
reason: where the share cannot be known (a MIG GPU addressed without saying which MIG device,
NVML without attributes) the GPU is ``not counted`` with the reason and the fix.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.probe import stored_probe
from greentrack.numbers import plural

ENERGY_COUNTER = "nvml-total-energy-counter"
POWER_INSTANT = "nvml-field-power-instant"
POWER_USAGE = "nvml-power-usage (~1 s average on recent GPUs)"
MIG_SHARE = " x MIG compute-slice share (attribution)"
_PROFILES = (
    "NVML_GPU_INSTANCE_PROFILE_8_SLICE",
    "NVML_GPU_INSTANCE_PROFILE_7_SLICE",
    "NVML_GPU_INSTANCE_PROFILE_6_SLICE",
    "NVML_GPU_INSTANCE_PROFILE_4_SLICE",
)


DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")
"""What a Linux machine (or container, or WSL2) with a usable NVIDIA driver has, one at least."""


def missing_driver(paths: Sequence[str] = DRIVER_PATHS) -> str | None:
    """Why NVML cannot work here, said without loading it (importing ``pynvml`` and failing
    to load ``libnvidia-ml.so`` costs ~20 ms of a tracker's start): on Linux, none of
    ``paths`` exists. ``None`` where a driver may be present (or not Linux: then NVML says)."""
    if not sys.platform.startswith("linux") or any(os.path.exists(p) for p in paths):
        return None
    return (
        f"no NVIDIA driver on this machine (none of {', '.join(paths)}), or a container "
        "started without GPU access (run it with --gpus all and the NVIDIA Container Toolkit)"
    )


def load_pynvml() -> Any:
    """Import ``pynvml`` or raise :class:`MeterUnavailableError` saying how to install it."""
    try:
        import pynvml
    except ImportError as e:  # pragma: no cover - nvidia-ml-py is a core dependency
        raise MeterUnavailableError(
            "the NVML bindings are not installed: pip install nvidia-ml-py"
        ) from e
    return pynvml


def describe_nvml_error(nvml: Any, err: Exception) -> str:
    """Say what an NVML error means for the user, with the fix where there is one."""
    code = getattr(err, "value", None)
    if code == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
        return (
            "libnvidia-ml.so was not found: no NVIDIA driver on this machine, or a container "
            "started without GPU access (run it with --gpus all and the NVIDIA Container Toolkit)"
        )
    if code == getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", object()):
        return "the NVIDIA kernel driver is not loaded (check `nvidia-smi`)"
    if code == getattr(nvml, "NVML_ERROR_NO_PERMISSION", object()):
        return (
            "NVML denied access: this user may not query the GPU (check /dev/nvidia* permissions)"
        )
    if code == getattr(nvml, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", object()):
        return (
            "the NVML library and the kernel driver differ in version: reboot or reload the driver"
        )
    return f"NVML error: {err}"


@dataclass(frozen=True, slots=True)
class VisibleGpu:
    """A physical GPU this process may use."""

    nvml_index: int
    handle: Any
    mig_instances: tuple[str, ...] = ()


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_gpus(nvml: Any, cuda_visible_devices: str | None) -> list[VisibleGpu]:
    """Resolve ``CUDA_VISIBLE_DEVICES`` to physical GPUs, in CUDA's order.

    ``None`` (unset) means every GPU. Parsing follows the CUDA runtime: entries are indices,
    ``GPU-`` UUIDs (a unique prefix suffices) or ``MIG-`` UUIDs; the first invalid entry ends
    the list. Several MIG instances of one GPU resolve to that GPU once.
    """
    count = int(nvml.nvmlDeviceGetCount())
    if cuda_visible_devices is None:
        return [VisibleGpu(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    uuids = [
        _decode(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)
    ]
    order: list[int] = []
    mig: dict[int, list[str]] = {}
    for raw in cuda_visible_devices.split(","):
        token = raw.strip()
        index = _resolve_token(nvml, token, uuids)
        if index is None:
            if token:
                warnings.warn(
                    f"CUDA_VISIBLE_DEVICES entry {token!r} matches no GPU; like CUDA, greentrack "
                    "ignores it and every entry after it",
                    stacklevel=3,
                )
            break
        if token.startswith("MIG-"):
            mig.setdefault(index, []).append(token)
        if index not in order:
            order.append(index)
    return [VisibleGpu(i, nvml.nvmlDeviceGetHandleByIndex(i), tuple(mig.get(i, ()))) for i in order]


def _resolve_token(nvml: Any, token: str, uuids: list[str]) -> int | None:
    if token.isdigit():
        index = int(token)
        return index if index < len(uuids) else None
    if token.startswith("GPU-"):
        matches = [i for i, u in enumerate(uuids) if u.startswith(token)]
        return matches[0] if len(matches) == 1 else None
    if token.startswith("MIG-"):
        try:
            mig_handle = nvml.nvmlDeviceGetHandleByUUID(token)
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig_handle)
            parent_uuid = _decode(nvml.nvmlDeviceGetUUID(parent))
        except nvml.NVMLError:
            return None
        return uuids.index(parent_uuid) if parent_uuid in uuids else None
    return None


class NvmlMeter:
    """Energy and power of this process's NVIDIA GPUs.

    Args:
        nvml: the ``pynvml`` module, or a test double with the same calls (default: import it).
        gpu_indices: indices into the *visible* GPUs (as torch numbers them), e.g. ``[local_rank]``
            in DDP so that each rank measures only its own device. ``None``: all visible GPUs.
        environ: where ``CUDA_VISIBLE_DEVICES`` is read (default ``os.environ``).

    Raises:
        MeterUnavailableError: NVML cannot be initialised, or no visible GPU can be measured.
    """

    def __init__(
        self,
        nvml: Any | None = None,
        *,
        gpu_indices: Sequence[int] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if nvml is None and (missing := missing_driver()) is not None:
            raise MeterUnavailableError(missing)
        self._nvml = nvml if nvml is not None else load_pynvml()
        env = os.environ if environ is None else environ
        self._environ = env
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as e:
            raise MeterUnavailableError(describe_nvml_error(self._nvml, e)) from e
        self._open = True
        try:
            gpus = visible_gpus(self._nvml, env.get("CUDA_VISIBLE_DEVICES"))
            gpus = _select(gpus, gpu_indices)
            self._channels: list[Channel] = []
            self._handles: dict[str, Any] = {}
            self._start_mj: dict[str, int] = {}
            self._share: dict[str, float] = {}
            self.not_counted: dict[str, str] = {}
            driver = _decode(self._nvml.nvmlSystemGetDriverVersion())
            for gpu in gpus:
                self._add_gpu(gpu, driver)
        except BaseException:
            self.close()
            raise
        if not self._channels:
            self.close()
            raise MeterUnavailableError(
                "no visible GPU can be measured through NVML"
                + (
                    ": " + "; ".join(f"{k} {v}" for k, v in self.not_counted.items())
                    if self.not_counted
                    else " (CUDA_VISIBLE_DEVICES hides all)"
                )
            )

    def _add_gpu(self, gpu: VisibleGpu, driver: str) -> None:
        nvml, handle = self._nvml, gpu.handle
        cid = f"gpu{gpu.nvml_index}"
        energy_method: str | None = None
        try:
            self._start_mj[cid] = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            energy_method = ENERGY_COUNTER
        except nvml.NVMLError:
            energy_method = None
        power_method = self._probe_power(handle)
        details: dict[str, Any] = {
            "vendor": "NVIDIA",
            "nvml_index": gpu.nvml_index,
            "uuid": _decode(nvml.nvmlDeviceGetUUID(handle)),
            "driver": driver,
            "power_limit_w": _optional(
                lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
            ),
            "memory_total_bytes": _optional(
                lambda: int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
            ),
        }
        probed = stored_probe(details["uuid"], driver, self._environ)  # devices --probe
        if probed is not None:  # the board's measured update intervals (meters/probe.py)
            details["probe"] = probed.for_meta()
        name = _decode(nvml.nvmlDeviceGetName(handle))
        share = 1.0
        if _mig_enabled(nvml, handle) or gpu.mig_instances:
            found = mig_share(nvml, handle, gpu.mig_instances)
            if isinstance(found, str):
                self.not_counted[cid] = f"{name} (MIG): {found}"
                return
            share, mig = found
            name = mig.pop("name")
            details["mig"] = mig
            details["gpu_uuid"] = details["uuid"]
            details["uuid"] = ",".join(mig["instances"])  # the account's key for the slice
            if details["power_limit_w"] is not None:
                details["gpu_power_limit_w"] = details["power_limit_w"]
                details["power_limit_w"] *= share
        if energy_method is None and power_method is None:
            self.not_counted[cid] = (
                f"{name}: neither the energy counter nor power readings are supported"
            )
            return
        if energy_method is None:
            details["note"] = (
                "no energy counter on this GPU: energy is the integral of sampled power"
            )
        if "mig" in details:
            energy_method = energy_method + MIG_SHARE if energy_method else None
            power_method = power_method + MIG_SHARE if power_method else None
        self._channels.append(
            Channel(cid, "gpu", name, "measured", energy_method, power_method, details)
        )
        self._handles[cid] = handle
        self._share[cid] = share

    def _probe_power(self, handle: Any) -> str | None:
        """The best power method the GPU supports (the base method, before any MIG share)."""
        nvml = self._nvml
        try:
            values = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT])
            if values[0].nvmlReturn == nvml.NVML_SUCCESS:
                return POWER_INSTANT
        except nvml.NVMLError:
            pass
        try:
            nvml.nvmlDeviceGetPowerUsage(handle)
            return POWER_USAGE
        except nvml.NVMLError:
            return None

    @property
    def channels(self) -> Sequence[Channel]:
        return tuple(self._channels)

    def _counters_mj(self) -> dict[str, int]:
        """The total-energy counter (mJ since driver load) of every channel that has one."""
        out: dict[str, int] = {}
        for ch in self._channels:
            if ch.energy_method is None:
                continue
            try:
                out[ch.id] = int(
                    self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handles[ch.id])
                )
            except self._nvml.NVMLError as e:
                raise MeterError(f"{ch.id}: {describe_nvml_error(self._nvml, e)}") from e
        return out

    def read_energy_j(self) -> dict[str, float]:
        return {
            cid: (mj - self._start_mj[cid]) / 1000.0 * self._share[cid]
            for cid, mj in self._counters_mj().items()
        }

    def device_counters_j(self) -> dict[str, tuple[str, float]]:
        """Per channel with an energy counter: ``(GPU UUID, joules since driver load)``.

        Unlike :meth:`read_energy_j` this is device-wide and the same for every process that
        reads it, which is what lets concurrent clients' windows be reconciled
        (:mod:`greentrack.analysis.attribution`)."""
        uuids = {ch.id: str(ch.details.get("uuid", ch.id)) for ch in self._channels}
        return {
            cid: (uuids[cid], mj / 1000.0 * self._share[cid])
            for cid, mj in self._counters_mj().items()
        }

    def read_power_w(self) -> dict[str, float]:
        nvml = self._nvml
        out: dict[str, float] = {}
        for ch in self._channels:
            handle = self._handles[ch.id]
            try:
                base = ch.power_method.removesuffix(MIG_SHARE) if ch.power_method else None
                if base == POWER_INSTANT:
                    value = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT])[
                        0
                    ]
                    if value.nvmlReturn != nvml.NVML_SUCCESS:
                        raise MeterError(
                            f"{ch.id}: power field returned NVML code {value.nvmlReturn}"
                        )
                    out[ch.id] = value.value.uiVal / 1000.0 * self._share[ch.id]
                elif base == POWER_USAGE:
                    out[ch.id] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0 * self._share[ch.id]
            except nvml.NVMLError as e:
                raise MeterError(f"{ch.id}: {describe_nvml_error(nvml, e)}") from e
        return out

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()


def _select(gpus: list[VisibleGpu], gpu_indices: Sequence[int] | None) -> list[VisibleGpu]:
    if gpu_indices is None:
        return gpus
    bad = [i for i in gpu_indices if not 0 <= i < len(gpus)]
    if bad:
        raise MeterUnavailableError(
            f"gpu_indices {bad} out of range: this process sees {plural(len(gpus), 'GPU')} "
            "(indices count the GPUs left visible by CUDA_VISIBLE_DEVICES, as torch does)"
        )
    return [gpus[i] for i in dict.fromkeys(gpu_indices)]


def _mig_enabled(nvml: Any, handle: Any) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except (nvml.NVMLError, AttributeError):
        return False
    return bool(current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1))


def mig_share(nvml: Any, parent: Any, tokens: Sequence[str]) -> tuple[float, dict[str, Any]] | str:
    """This process's share of a MIG-enabled GPU: ``(share, details)``, or why it cannot be
    known. ``tokens`` are the ``MIG-`` UUIDs of this GPU that ``CUDA_VISIBLE_DEVICES`` names;
    none named: the GPU's only MIG device, if it has exactly one."""
    if tokens:
        try:
            handles = [nvml.nvmlDeviceGetHandleByUUID(t) for t in tokens]
        except nvml.NVMLError as e:
            return f"a MIG device of CUDA_VISIBLE_DEVICES cannot be opened ({e})"
    else:
        handles = _existing_mig_devices(nvml, parent)
        if len(handles) != 1:
            return (
                f"MIG is enabled with {plural(len(handles), 'MIG device')} and "
                "CUDA_VISIBLE_DEVICES does not say which this process uses, so its share cannot "
                "be known: set CUDA_VISIBLE_DEVICES=MIG-<uuid> (`nvidia-smi -L` lists them)"
                if handles
                else "MIG is enabled but the GPU has no MIG device: nothing can run on it"
            )
    total = _gpu_slices(nvml, parent)
    if total is None:
        return "NVML reports no GPU-instance profile, so the GPU's slices are unknown"
    slices = []
    for h in handles:
        try:
            attrs = nvml.nvmlDeviceGetAttributes(h)
        except (nvml.NVMLError, AttributeError) as e:
            uuid = _decode(nvml.nvmlDeviceGetUUID(h))
            return f"NVML gives no attributes for MIG device {uuid} ({e})"
        slices.append(int(attrs.computeInstanceSliceCount))
    uuids = [_decode(nvml.nvmlDeviceGetUUID(h)) for h in handles]
    names = [_decode(nvml.nvmlDeviceGetName(h)) for h in handles]
    share = min(sum(slices) / total, 1.0)
    return share, {
        "enabled": True,
        "name": names[0] if len(set(names)) == 1 else " + ".join(names),
        "instances": uuids,
        "compute_slices": sum(slices),
        "gpu_slices": total,
        "share": share,
        "note": (
            "attribution: NVML measures the whole GPU; this process's "
            f"{'MIG device holds' if len(handles) == 1 else 'MIG devices hold'} "
            f"{sum(slices)} of its {total} compute slices and count that share of its energy "
            "and power, whatever the other slices do"
        ),
    }


def _existing_mig_devices(nvml: Any, parent: Any) -> list[Any]:
    try:
        count = int(nvml.nvmlDeviceGetMaxMigDeviceCount(parent))
    except (nvml.NVMLError, AttributeError):
        return []
    found = []
    for i in range(count):
        try:
            found.append(nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, i))
        except nvml.NVMLError:
            continue  # an empty slot
    return found


def _gpu_slices(nvml: Any, parent: Any) -> int | None:
    """The compute slices of the whole GPU: the largest GPU-instance profile it supports,
    else the most MIG devices it can hold."""
    best = 0
    for name in _PROFILES:
        profile = getattr(nvml, name, None)
        if profile is None:
            continue
        try:
            best = max(
                best, int(nvml.nvmlDeviceGetGpuInstanceProfileInfo(parent, profile).sliceCount)
            )
        except (nvml.NVMLError, AttributeError):
            continue
    if best:
        return best
    try:
        count = int(nvml.nvmlDeviceGetMaxMigDeviceCount(parent))
    except (nvml.NVMLError, AttributeError):
        return None
    return count or None


def _optional(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # vendor query that some GPUs lack: metadata only, never fatal
        return None
