"""CPU package and DRAM energy from Linux powercap (RAPL), Intel and AMD.

Layout read (``root`` defaults to ``<sysfs root>/class/powercap``: ``/sys/class/powercap``,
or under ``$GREENTRACK_SYSFS_ROOT``, the one root of every sysfs meter,
:mod:`greentrack.meters.sysfs`)::

    intel-rapl:0/name              "package-0"
    intel-rapl:0/energy_uj         cumulative microjoules, wraps at max_energy_range_uj
    intel-rapl:0/max_energy_range_uj
    intel-rapl:0/intel-rapl:0:2/name   "dram"   (subzones: core, uncore, dram)

AMD Zen CPUs appear under the same ``intel-rapl`` names (kernel >= 5.8) without a DRAM zone.
``psys`` (whole platform, overlaps the packages) and ``intel-rapl-mmio`` (a second interface to
the same package counter) are skipped so nothing is counted twice.

The counters wrap at ``max_energy_range_uj`` (about 262 kJ: ~20 min at 200 W); the sampler
reads them every second, and each read adds the wrapped difference.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.sysfs import DEFAULT_SYSFS_ROOT, powercap_root

RAPL_METHOD = "rapl-powercap-energy-counter"
PERMISSION_FIX = (
    "since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694). Fix: run as root, or "
    "grant read access until the next reboot with "
    "`sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj` "
    "(or make it permanent with a udev rule or systemd-tmpfiles)"
)
_TOP_ZONE = re.compile(r"^(intel|amd)-rapl:(\d+)$")


@dataclass(frozen=True, slots=True)
class RaplZone:
    """One powercap zone that greentrack accounts."""

    channel_id: str
    component: str
    name: str
    path: Path
    max_range_uj: int


def discover_zones(root: Path | None = None) -> tuple[list[RaplZone], dict[str, str]]:
    """Find package and DRAM zones under ``root`` (default: the powercap directory under the
    sysfs root, :func:`greentrack.meters.sysfs.powercap_root`).

    Returns the zones and a dict of zones skipped on purpose, with the reason.
    Raises :class:`MeterUnavailableError` when no zone exists or none can be read.
    """
    root = powercap_root() if root is None else root
    if not root.is_dir():
        raise MeterUnavailableError(f"{root} does not exist ({_absence_reason(root)})")
    zones: list[RaplZone] = []
    skipped: dict[str, str] = {}
    for top in sorted(root.iterdir(), key=lambda p: p.name):
        if top.name.startswith("intel-rapl-mmio"):
            skipped[top.name] = "MMIO interface to the package counter already read via MSR"
            continue
        if not _TOP_ZONE.match(top.name):
            continue
        name = _read_text(top / "name")
        if not name.startswith("package-"):
            skipped[top.name] = f"{name!r} zone overlaps the package zones"
            continue
        socket = int(name.split("-", 1)[1])
        zones.append(_zone(f"cpu{socket}", "cpu", name, top))
        for sub in sorted(top.iterdir(), key=lambda p: p.name):
            is_subzone = sub.is_dir() and sub.name.startswith(top.name + ":")
            if is_subzone and _read_text(sub / "name") == "dram":
                zones.append(_zone(f"dram{socket}", "dram", f"dram-{socket}", sub))
    if not zones:
        raise MeterUnavailableError(
            f"{root} has no RAPL package zone (the intel_rapl_common kernel module is not loaded,"
            " or this CPU does not expose RAPL)"
        )
    for zone in zones:
        try:
            int(_read_text(zone.path / "energy_uj"))
        except PermissionError as e:
            raise MeterUnavailableError(
                f"{zone.path / 'energy_uj'} is not readable: {PERMISSION_FIX}"
            ) from e
    return zones, skipped


def _zone(channel_id: str, component: str, name: str, path: Path) -> RaplZone:
    return RaplZone(
        channel_id, component, name, path, int(_read_text(path / "max_energy_range_uj"))
    )


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _absence_reason(root: Path) -> str:
    if not root.parent.is_dir():
        return (
            "not Linux, or /sys is not mounted"
            if root.parent == DEFAULT_SYSFS_ROOT / "class"
            else f"{root.parent} does not exist either (check GREENTRACK_SYSFS_ROOT)"
        )
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return (
            "inside a container without the host's powercap tree; mount it read-only with "
            "`-v /sys/class/powercap:/sys/class/powercap:ro` (and make energy_uj readable)"
        )
    return "the kernel has no powercap RAPL driver loaded: try `sudo modprobe intel_rapl_common`"


class RaplMeter:
    """Cumulative energy of each CPU package and DRAM zone, with wraparound handled.

    Args:
        root: the powercap directory (a fake tree in tests); default ``class/powercap`` under
            the sysfs root (``$GREENTRACK_SYSFS_ROOT``, else ``/sys``).
        environ: where ``GREENTRACK_SYSFS_ROOT`` is read when ``root`` is not given.

    Raises:
        MeterUnavailableError: no readable RAPL zone; the message names the fix.
    """

    def __init__(
        self, root: Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self._zones, self.skipped = discover_zones(powercap_root(environ) if root is None else root)
        self._lock = threading.Lock()
        self._last_uj: dict[str, int] = {}
        self._total_uj: dict[str, int] = {}
        for zone in self._zones:
            self._last_uj[zone.channel_id] = self._read_raw(zone)
            self._total_uj[zone.channel_id] = 0
        self._channels = tuple(
            Channel(
                z.channel_id,
                "cpu" if z.component == "cpu" else "dram",
                z.name,
                "measured",
                RAPL_METHOD,
                None,
                {"zone": z.path.name, "max_energy_range_uj": z.max_range_uj},
            )
            for z in self._zones
        )

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    @staticmethod
    def _read_raw(zone: RaplZone) -> int:
        try:
            return int(_read_text(zone.path / "energy_uj"))
        except (OSError, ValueError) as e:
            raise MeterError(
                f"{zone.channel_id}: cannot read {zone.path / 'energy_uj'}: {e}"
            ) from e

    def read_energy_j(self) -> dict[str, float]:
        with self._lock:
            out: dict[str, float] = {}
            for zone in self._zones:
                raw = self._read_raw(zone)
                cid = zone.channel_id
                self._total_uj[cid] += wrapped_delta_uj(self._last_uj[cid], raw, zone.max_range_uj)
                self._last_uj[cid] = raw
                out[cid] = self._total_uj[cid] / 1e6
            return out

    def read_power_w(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass


def wrapped_delta_uj(previous: int, current: int, max_range_uj: int) -> int:
    """Energy between two raw counter values, assuming at most one wrap between them.

    The counter runs up to ``max_range_uj`` and then restarts at 0 (the last step is one
    counter unit, a few microjoules, and is neglected).

    >>> wrapped_delta_uj(100, 250, 1000)
    150
    >>> wrapped_delta_uj(900, 50, 1000)
    150
    """
    if current >= previous:
        return current - previous
    return max_range_uj - previous + current
