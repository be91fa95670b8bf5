"""AMD GPU energy (Instinct, Radeon): ``amdsmi`` (ROCm's Python API), else the amdgpu hwmon files.

Sources, best first (each channel records which one it uses):

* ``amdsmi_get_energy_count``: an energy accumulator since the driver loaded, its
  ``counter_resolution`` (microjoules a count; 15.3 on MI200 and MI300) and the firmware's
  ``timestamp`` of the reading. Energy = accumulator x resolution. A timestamp that goes back
  means the GPU was reset: counting restarts from the new value. AMD documents the call as
  unsupported on virtual machine guests (amdsmi Python API reference); there, and wherever it
  fails, the die falls back to power.
* ``amdsmi_get_power_info``: ``current_socket_power`` (whole watts), else
  ``average_socket_power``, sampled and integrated.
* without amdsmi (not installed, or failing to start): the amdgpu hwmon files of the card,
  ``energy1_input`` (microjoules) where a kernel has it, ``power1_input`` (instantaneous) or
  ``power1_average`` (microwatts; on APUs they include the CPU, per the amdgpu docs).

amdsmi is imported only where AMD device files exist (``/dev/kfd``, or a DRM card bound to
amdgpu under the sysfs root), as NVML is only loaded where an NVIDIA driver is.

**Dies that share one reading.** A multi-die part (MI250/MI250X: two GCDs, each its own
device) reports the package's power on one die only; the other's energy accumulator reads 0
(AMD's rocm-smi tells a "secondary die" by exactly that, and says the primary "usually one
above or below" shows both dies' power). Each die is reported: a die of such a package counts
an equal share of the primary's reading (``x die share (attribution)`` in its method), never a
silent 0. A die that reads 0 W while its engine is busy (``gfx_activity`` > 0) is a failed
reading: it raises :class:`MeterError`, which the ledger records as a labelled gap.

**Which devices.** Devices are numbered as HIP numbers them (``cuda:N`` in PyTorch's ROCm
build): ``amdsmi_get_gpu_enumeration_info`` (ROCm 6.4+) gives each device's HIP index, else
the KFD topology order (``amdsmi_get_gpu_kfd_info``'s node id, or ``class/kfd`` in sysfs).
``ROCR_VISIBLE_DEVICES`` (indices or ``GPU-`` UUIDs) is applied first, then
``HIP_VISIBLE_DEVICES`` (``CUDA_VISIBLE_DEVICES`` when unset) to what is left, as PyTorch
does (``torch.cuda._parse_visible_devices``); a rank measures the device it drives.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.amd_devices import HWMON_ENERGY as HWMON_ENERGY
from greentrack.meters.amd_devices import HWMON_POWER as HWMON_POWER
from greentrack.meters.amd_devices import HWMON_POWER_AVERAGE as HWMON_POWER_AVERAGE
from greentrack.meters.amd_devices import KFD_DEVICE as KFD_DEVICE
from greentrack.meters.amd_devices import SHARED as SHARED
from greentrack.meters.amd_devices import SMI_ENERGY as SMI_ENERGY
from greentrack.meters.amd_devices import SMI_POWER as SMI_POWER
from greentrack.meters.amd_devices import SMI_POWER_AVERAGE as SMI_POWER_AVERAGE
from greentrack.meters.amd_devices import (
    AmdDie,
    hwmon_dies,
    package_groups,
    rocm_visible,
    smi_dies,
    smi_error,
)
from greentrack.meters.base import Channel
from greentrack.meters.sysfs import CounterTotal, drm_cards, read_int, read_text, sysfs_root
from greentrack.meters.visibility import select_devices
from greentrack.numbers import num


def amd_present(root: Path, kfd: Path = KFD_DEVICE) -> bool:
    """Whether AMD GPU device files exist: ``/dev/kfd`` or a DRM card bound to amdgpu."""
    return kfd.exists() or bool(drm_cards(root, frozenset({"amdgpu"})))


def load_amdsmi() -> tuple[Any | None, str]:
    """``(amdsmi module, "")``, or ``(None, why not)``. amdsmi prints to stdout when its
    library is missing and raises more than ``ImportError`` on a version mismatch; both are
    contained here."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import amdsmi  # type: ignore[import-not-found]
    except ImportError:
        return None, "amdsmi (ROCm's Python API) is not installed"
    except Exception as e:  # a library/package mismatch: OSError, AttributeError, KeyError
        return None, (
            f"amdsmi could not be imported ({type(e).__name__}: {e}); install the amdsmi "
            "package that matches the installed ROCm"
        )
    return amdsmi, ""


class _Reader:
    """Reads one die's energy and power (amdsmi or hwmon), under one lock for the session."""

    def __init__(self, smi: Any) -> None:
        self.smi: Any = smi
        self.lock = threading.Lock()
        self._users = 0

    def energy_raw(self, die: AmdDie) -> tuple[int, int | None]:
        """(the accumulator in counts, or hwmon microjoules; the firmware timestamp or None)."""
        if die.energy_method == SMI_ENERGY:
            d = self.smi.amdsmi_get_energy_count(die.handle)
            raw = d["energy_accumulator"] if "energy_accumulator" in d else d["power"]
            return int(raw), int(d.get("timestamp") or 0)
        assert die.hwmon is not None
        return read_int(die.hwmon / "energy1_input"), None

    def power_w(self, die: AmdDie) -> float:
        if die.power_method in (SMI_POWER, SMI_POWER_AVERAGE):
            info = self.smi.amdsmi_get_power_info(die.handle)
            key = (
                "current_socket_power" if die.power_method == SMI_POWER else "average_socket_power"
            )
            value = info[key]
            if value == "N/A":  # the library's "not available"
                raise MeterError(f"amdsmi gave no {key} (N/A)")
            return float(value)
        assert die.hwmon is not None
        name = "power1_input" if die.power_method == HWMON_POWER else "power1_average"
        return read_int(die.hwmon / name) / 1e6

    def busy_percent(self, die: AmdDie) -> float | None:
        try:
            if die.handle is not None and self.smi is not None:
                value = self.smi.amdsmi_get_gpu_activity(die.handle)["gfx_activity"]
            elif die.card is not None:
                value = read_text(die.card.device / "gpu_busy_percent")
            else:
                return None
            return float(value)
        except Exception:  # no activity reading: the check cannot be made
            return None

    def acquire(self) -> None:
        self._users += 1

    def release(self) -> None:
        """One meter fewer; amdsmi is shut down with the last one."""
        self._users -= 1
        self.close_if_unused()

    def close_if_unused(self) -> None:
        if self._users <= 0 and self.smi is not None:
            smi, self.smi = self.smi, None
            with contextlib.suppress(Exception):
                smi.amdsmi_shut_down()


class AmdDieMeter:
    """One AMD device's channel: its own reading, or its share of the die that reports its
    package (see the module docstring). One meter a die, so that a die whose reading fails
    leaves a gap in its own channel only."""

    def __init__(
        self, cid: str, die: AmdDie, source: AmdDie, share_n: int, reader: _Reader
    ) -> None:
        self._die, self._source, self._n, self._reader = die, source, share_n, reader
        self._cid = cid
        self._counter: CounterTotal | None = None
        self._last_ts: int | None = None
        suffix = SHARED if share_n > 1 else ""
        energy = source.energy_method + suffix if source.energy_method else None
        power = source.power_method + suffix if source.power_method else None
        details: dict[str, Any] = {
            "vendor": "AMD",
            "uuid": die.uuid,
            "pci_slot": die.pci_slot,
            "driver": die.driver,
            "backend": "amdsmi" if source.handle is not None else "amdgpu hwmon",
            "power_limit_w": source.power_limit_w / share_n if source.power_limit_w else None,
        }
        if source.resolution_uj is not None:
            details["counter_resolution_uj"] = source.resolution_uj
        if share_n > 1:
            details["package"] = {
                "dies": share_n,
                "reported_on": source.uuid,
                "share": 1.0 / share_n,
                "note": (
                    f"the package's {share_n} dies report one reading (on {source.name} "
                    f"{source.pci_slot}); each die counts 1/{share_n} of it, an equal split"
                ),
            }
        if die.notes:
            details["notes"] = list(die.notes)
        with reader.lock:
            if energy is not None:
                raw, ts = reader.energy_raw(source)
                self._counter, self._last_ts = CounterTotal(raw), ts
        reader.acquire()
        self._open = True
        self._channel = Channel(cid, "gpu", die.name, "measured", energy, power, details)

    @property
    def channels(self) -> Sequence[Channel]:
        return (self._channel,)

    def _uj_per_count(self) -> float:
        return self._source.resolution_uj if self._source.resolution_uj else 1.0

    def read_energy_j(self) -> dict[str, float]:
        if self._counter is None:
            return {}
        with self._reader.lock:
            try:
                raw, ts = self._reader.energy_raw(self._source)
            except MeterError:
                raise
            except Exception as e:
                raise MeterError(f"{self._cid}: energy read failed: {e}") from e
            counter = self._counter
            before = counter.total_uj
            if ts is not None and self._last_ts is not None and ts < self._last_ts:
                counter.last_uj = 0  # the GPU was reset: its accumulator restarted
                counter.restarts += 1
            total = counter.update(raw)
            fresh = ts is not None and self._last_ts is not None and ts > self._last_ts
            self._last_ts = ts if ts is not None else self._last_ts
            if fresh and total == before and self._channel.power_method is None:
                self._zero_while_busy("its energy counter did not advance")
            return {self._cid: total * self._uj_per_count() / 1e6 / self._n}

    def read_power_w(self) -> dict[str, float]:
        if self._channel.power_method is None:
            return {}
        with self._reader.lock:
            try:
                watts = self._reader.power_w(self._source)
            except MeterError as e:
                raise MeterError(f"{self._cid}: {e}") from e
            except Exception as e:
                raise MeterError(f"{self._cid}: power read failed: {e}") from e
            if watts <= 0.0:
                self._zero_while_busy("it reads 0 W")
            return {self._cid: watts / self._n}

    def _zero_while_busy(self, what: str) -> None:
        busy = self._reader.busy_percent(self._die)
        if busy is not None and busy > 0:
            raise MeterError(
                f"{self._cid} {self._die.name}: {what} while {num(busy, 4)}% busy: a failed "
                "reading, recorded as a gap (not as 0 W)"
            )

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            self._reader.release()


@dataclass
class AmdGpus:
    """What :func:`open_amd` found: a meter per measured die, why others are not counted,
    how many devices this process sees, and how they are read."""

    meters: list[AmdDieMeter]
    not_counted: dict[str, str]
    visible: int
    backend: str


def open_amd(
    root: Path | None = None,
    *,
    amdsmi: Any = None,
    device_indices: Sequence[int] | None = None,
    environ: Mapping[str, str] | None = None,
    kfd: Path = KFD_DEVICE,
    pick: Callable[[int], Sequence[int] | None] | None = None,
) -> AmdGpus:
    """Open a meter for each AMD device this process uses.

    Args:
        root: the sysfs root (default ``$GREENTRACK_SYSFS_ROOT``, else ``/sys``).
        amdsmi: the ``amdsmi`` module or a test double; ``False`` reads hwmon only; ``None``
            imports it (only when AMD device files exist).
        device_indices: indices into the visible devices (HIP order after the visibility
            variables): ``[local_rank]`` in DDP. ``None``: all visible.
        environ: where the visibility variables and ``GREENTRACK_SYSFS_ROOT`` are read.
        kfd: the ROCm compute device file whose presence says AMD GPUs may be here.
        pick: given how many devices this process sees, the indices it measures (a rank's
            device, :func:`greentrack.launcher.gpus_for`), when ``device_indices`` is not given.

    Raises:
        MeterUnavailableError: no AMD GPU, or none this process sees can be measured.
    """
    env = os.environ if environ is None else environ
    root = sysfs_root(env) if root is None else root
    if amdsmi is None and not amd_present(root, kfd):
        raise MeterUnavailableError(f"no AMD GPU ({kfd} and amdgpu cards under {root} absent)")
    cards = drm_cards(root, frozenset({"amdgpu"}))
    smi, why_not_smi = (None, "amdsmi disabled") if amdsmi is False else (amdsmi, "")
    if smi is None and amdsmi is not False:
        smi, why_not_smi = load_amdsmi()
    dies: list[AmdDie] = []
    backend = "amdsmi"
    if smi is not None:
        try:
            dies = smi_dies(smi, cards, root)
        except Exception as e:  # amdsmi failed to start or enumerate: read hwmon
            why_not_smi = f"amdsmi failed ({smi_error(smi, e)})"
            with contextlib.suppress(Exception):
                smi.amdsmi_shut_down()
            smi = None
    if smi is None:
        dies = hwmon_dies(root, cards)
        backend = f"amdgpu hwmon: {why_not_smi}"
    reader = _Reader(smi)
    if not dies:
        reader.close_if_unused()
        raise MeterUnavailableError(f"no AMD GPU found through {backend}")
    dies.sort(key=lambda d: d.order_key)
    meters: list[AmdDieMeter] = []
    not_counted: dict[str, str] = {}
    try:
        visible = rocm_visible(dies, env)
        if device_indices is None and pick is not None:
            device_indices = pick(len(visible))
        chosen = select_devices(visible, device_indices, "AMD GPU")
        groups = package_groups(dies)
        for die in chosen:
            cid = f"amd{visible.index(die)}"
            source, n = groups.get(die.smi_index, (die, 1))
            if source.energy_method is None and source.power_method is None:
                why = "; ".join(source.notes) or "neither energy nor power can be read"
                not_counted[cid] = f"{die.name} ({die.pci_slot}): {why}"
                continue
            meters.append(AmdDieMeter(cid, die, source, n, reader))
    except BaseException:
        for m in meters:
            m.close()
        reader.close_if_unused()
        raise
    if not meters:
        reader.close_if_unused()
        why = "; ".join(f"{k}: {v}" for k, v in not_counted.items())
        raise MeterUnavailableError(
            "no visible AMD GPU can be measured"
            + (f" ({why})" if why else " (ROCR_VISIBLE_DEVICES/HIP_VISIBLE_DEVICES hide all)")
        )
    return AmdGpus(meters, not_counted, len(visible), backend)
