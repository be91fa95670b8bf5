"""The one sysfs root every sysfs meter reads, and the small readers they share.

Every meter that reads Linux sysfs (RAPL's powercap zones, the Intel and AMD GPU ``hwmon``
files, the Jetson INA3221 rails, the AMD KFD topology) reads it under one root:
``$GREENTRACK_SYSFS_ROOT``, default ``/sys``. A container that mounts the host's sysfs
elsewhere, or a test that builds a fake tree in a temporary directory, points it there once.

Layouts read (real paths, relative to the root)::

    class/powercap/intel-rapl:N/...              RAPL (greentrack.meters.rapl)
    class/drm/cardN/device/uevent                DRIVER=amdgpu|i915|xe, PCI_ID, PCI_SLOT_NAME
    class/drm/cardN/device/hwmon/hwmonM/name     the hwmon driver's name (amdgpu, i915, xe)
    class/hwmon/hwmonM/name                      every hwmon (ina3221 on Jetson)
    class/kfd/kfd/topology/nodes/N/properties    ROCm's device order (greentrack.meters.amd)

Counters here are microjoules (``energy*_input``) and power is microwatts (``power*_input``,
``power*_average``): the hwmon ABI's units (Documentation/hwmon/sysfs-interface).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SYSFS_ROOT_ENV = "GREENTRACK_SYSFS_ROOT"
DEFAULT_SYSFS_ROOT = Path("/sys")
_CARD = re.compile(r"^card(\d+)$")
_HWMON = re.compile(r"^hwmon(\d+)$")


def sysfs_root(environ: Mapping[str, str] | None = None) -> Path:
    """The sysfs root: ``$GREENTRACK_SYSFS_ROOT`` when set (it must be a directory), else
    ``/sys``.

    >>> sysfs_root({})
    PosixPath('/sys')
    """
    env = os.environ if environ is None else environ
    value = env.get(SYSFS_ROOT_ENV, "")
    if not value:
        return DEFAULT_SYSFS_ROOT
    path = Path(value)
    if not path.is_dir():
        raise ValueError(
            f"{SYSFS_ROOT_ENV}={value!r} is not a directory: point it at a mounted sysfs (or a "
            "copy of one), or unset it to read /sys"
        )
    return path


def powercap_root(environ: Mapping[str, str] | None = None) -> Path:
    """Where RAPL's powercap zones are: ``<sysfs root>/class/powercap``."""
    return sysfs_root(environ) / "class" / "powercap"


def read_text(path: Path) -> str:
    """A sysfs attribute's value, stripped (raises ``OSError`` as the file system does)."""
    return path.read_text().strip()


def read_int(path: Path) -> int:
    """A sysfs attribute as an integer (``OSError``, or ``ValueError`` for a non-number)."""
    return int(read_text(path))


def read_optional(path: Path) -> str | None:
    """A sysfs attribute's value, or ``None`` when it is absent or unreadable."""
    try:
        return read_text(path)
    except (OSError, UnicodeDecodeError):
        return None


def _numbered(parent: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    found = [(int(m.group(1)), p) for p in entries if (m := pattern.match(p.name))]
    return sorted(found, key=lambda item: item[0])


@dataclass(frozen=True, slots=True)
class Hwmon:
    """One hwmon directory and the name its driver gave it."""

    path: Path
    name: str


def hwmons_under(device: Path) -> list[Hwmon]:
    """The hwmon directories of one device (``<device>/hwmon/hwmonM``), in number order."""
    out = []
    for _, path in _numbered(device / "hwmon", _HWMON):
        name = read_optional(path / "name")
        if name is not None:
            out.append(Hwmon(path, name))
    return out


def all_hwmons(root: Path) -> list[Hwmon]:
    """Every hwmon of the machine (``class/hwmon/hwmonM``), in number order."""
    out = []
    for _, path in _numbered(root / "class" / "hwmon", _HWMON):
        name = read_optional(path / "name")
        if name is not None:
            out.append(Hwmon(path, name))
    return out


@dataclass(frozen=True, slots=True)
class DrmCard:
    """One DRM card (``class/drm/cardN``) and the PCI device behind it.

    Attributes:
        index: N of ``cardN``.
        device: the device directory (``cardN/device``).
        driver: the kernel driver (``DRIVER=`` of the device's ``uevent``).
        pci_id: ``vendor:device`` in hex (``PCI_ID=``), lower case, or ``""``.
        pci_slot: the PCI address (``PCI_SLOT_NAME=``), or the device directory's name.
    """

    index: int
    device: Path
    driver: str
    pci_id: str
    pci_slot: str

    @property
    def name(self) -> str:
        return f"card{self.index}"


def uevent(device: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of a device's ``uevent`` file (empty when unreadable)."""
    text = read_optional(device / "uevent") or ""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def drm_cards(root: Path, drivers: frozenset[str] | None = None) -> list[DrmCard]:
    """The DRM cards (not their connectors, ``card0-DP-1``), in card order; only those bound
    to one of ``drivers`` when given."""
    out = []
    for index, path in _numbered(root / "class" / "drm", _CARD):
        device = path / "device"
        event = uevent(device)
        driver = event.get("DRIVER", "")
        if not driver:
            try:
                driver = os.path.basename(os.readlink(device / "driver"))
            except OSError:
                driver = ""
        if drivers is not None and driver not in drivers:
            continue
        slot = event.get("PCI_SLOT_NAME") or _resolved_name(device)
        out.append(DrmCard(index, device, driver, event.get("PCI_ID", "").lower(), slot))
    return out


def _resolved_name(path: Path) -> str:
    try:
        return path.resolve().name
    except OSError:
        return path.name


def same_device(a: Path, b: Path) -> bool:
    """Whether two sysfs paths lead to the same device directory (symbolic links resolved)."""
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


class CounterTotal:
    """The running total of a cumulative energy counter in microjoules, from its first reading.

    A counter that goes down has either wrapped (a counter with a known ``wrap_uj``, read
    from the top half of its range: the driver's register ran past its maximum once) or been
    restarted by its driver (a module reload or a device reset sets the accumulator back to
    0): the energy since the restart is then the new value. Reads are far more frequent than
    either (the sampler reads every second), so at most one wrap lies between two reads.

    >>> c = CounterTotal(900, wrap_uj=1000)
    >>> c.update(100), c.update(40), c.restarts
    (200, 240, 1)
    """

    def __init__(self, first_uj: int, *, wrap_uj: int | None = None) -> None:
        self.last_uj = first_uj
        self.total_uj = 0
        self.wrap_uj = wrap_uj
        self.wraps = 0
        self.restarts = 0

    def update(self, raw_uj: int) -> int:
        """Add the energy since the previous reading; returns the total since the first."""
        if raw_uj >= self.last_uj:
            self.total_uj += raw_uj - self.last_uj
        elif self.wrap_uj is not None and self.last_uj > self.wrap_uj // 2:
            self.total_uj += self.wrap_uj - self.last_uj + raw_uj
            self.wraps += 1
        else:
            self.total_uj += raw_uj
            self.restarts += 1
        self.last_uj = raw_uj
        return self.total_uj


def pci_ids_paths() -> tuple[Path, ...]:
    """Where distributions install the PCI ID database (pciutils / hwdata)."""
    return (
        Path("/usr/share/misc/pci.ids"),
        Path("/usr/share/hwdata/pci.ids"),
        Path("/usr/share/pci.ids"),
    )


PCI_IDS_MAX_BYTES = 8 * 2**20
"""The most of a pci.ids file that is read (the real one is about 1.4 MB)."""


def pci_device_name(pci_id: str, paths: tuple[Path, ...] | None = None) -> str | None:
    """The device's name in the PCI ID database (``"DG2 [Arc A770]"``), or ``None``.

    ``pci_id`` is ``vendor:device`` in hex. Read once per device at discovery, never while
    measuring; a missing database only costs the name.
    """
    vendor, _, device = pci_id.lower().partition(":")
    if not vendor or not device:
        return None
    for path in pci_ids_paths() if paths is None else paths:
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                text = f.read(PCI_IDS_MAX_BYTES)
        except OSError:
            continue
        return _find_pci_name(text, vendor, device)
    return None


def _find_pci_name(text: str, vendor: str, device: str) -> str | None:
    in_vendor = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith("\t"):
            if in_vendor:
                return None
            in_vendor = line[:4].lower() == vendor
            continue
        if in_vendor and not line.startswith("\t\t") and line[1:5].lower() == device:
            return line[5:].strip() or None
    return None
