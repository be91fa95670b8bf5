"""Intel GPU energy (Arc, Data Center GPU Flex and Max) from the ``xe`` and ``i915`` hwmon files.

Layout read, under the sysfs root (:mod:`greentrack.meters.sysfs`)::

    class/drm/cardN/device/uevent                  DRIVER=xe or i915, PCI_ID, PCI_SLOT_NAME
    class/drm/cardN/device/hwmon/hwmonM/name       "xe" or "i915": the device-level hwmon
    class/drm/cardN/device/hwmon/hwmonM/energy1_input   cumulative microjoules
    class/drm/cardN/device/hwmon/hwmonM/energy2_input   xe only: the package, microjoules

The xe ABI (Documentation/ABI/testing/sysfs-driver-intel-xe-hwmon) documents
``energy1_input`` as the card's energy and ``energy2_input`` as the package's; i915's
(sysfs-driver-intel-i915-hwmon) documents ``energy1_input`` as the device's energy. Both
drivers register hwmon on discrete GPUs only: an integrated GPU's energy is part of the CPU
package's RAPL counter and is counted there. i915 also registers a hwmon per tile
(``i915_gt0``...); those overlap the device-level counter and are recorded, not counted.

Both drivers extend a 32-bit hardware register into a 63-bit value each time the file is
read: the register wraps in about 4.4 minutes at 1 kW (xe_hwmon.c), so the file must be read
more often than that; greentrack reads it every timeline row (1 s). A value that goes down
means the driver restarted its accumulator (a reload or a device reset) and is handled by
:class:`greentrack.meters.sysfs.CounterTotal`.

Which devices this process uses: Level Zero's view, as PyTorch's ``xpu`` backend sees it.
``ZE_FLAT_DEVICE_HIERARCHY=FLAT`` (the default) or ``COMBINED`` makes each stack (tile) of a
card a device, ``COMPOSITE`` makes each card one; ``ZE_AFFINITY_MASK`` (``0,1`` or, in
COMPOSITE, ``0.1`` for stack 1 of card 0) keeps the devices it lists, in their own order.
Cards are numbered in PCI bus order (Level Zero's order with
``ZE_ENABLE_PCI_ID_DEVICE_ORDER=1``). A card is measured whole: a rank on one stack of a
two-stack card measures the card, and the account splits a card measured by several ranks.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel
from greentrack.meters.sysfs import (
    CounterTotal,
    DrmCard,
    Hwmon,
    drm_cards,
    hwmons_under,
    pci_device_name,
    read_int,
    read_optional,
    sysfs_root,
)
from greentrack.meters.visibility import select_devices

INTEL_DRIVERS = frozenset({"i915", "xe"})
CARD_ENERGY = "intel-hwmon-energy1_input"
PACKAGE_ENERGY = "intel-hwmon-energy2_input (package only)"
NO_HWMON = (
    "no energy counter: the i915 and xe drivers expose hwmon energy on discrete GPUs only; an "
    "integrated GPU's energy is inside the CPU package's RAPL counter (counted as cpu)"
)


@dataclass(frozen=True, slots=True)
class IntelCard:
    """One Intel GPU card and where its energy is read."""

    position: int  # in PCI bus order among the Intel cards
    card: DrmCard
    hwmon: Hwmon | None
    energy_file: Path | None
    stacks: int
    tile_hwmons: tuple[str, ...]

    @property
    def method(self) -> str | None:
        if self.energy_file is None:
            return None
        return CARD_ENERGY if self.energy_file.name == "energy1_input" else PACKAGE_ENERGY


def intel_cards(root: Path) -> list[IntelCard]:
    """The Intel GPU cards under ``root``, in PCI bus order, with their energy files."""
    cards = sorted(drm_cards(root, INTEL_DRIVERS), key=lambda c: c.pci_slot)
    out = []
    for position, card in enumerate(cards):
        hwmons = hwmons_under(card.device)
        main = next((h for h in hwmons if h.name == card.driver), None)
        energy: Path | None = None
        if main is not None:
            for name in ("energy1_input", "energy2_input"):
                if (main.path / name).is_file():
                    energy = main.path / name
                    break
        tiles = tuple(h.name for h in hwmons if h.name.startswith(f"{card.driver}_gt"))
        out.append(IntelCard(position, card, main, energy, _stacks(root, card), tiles))
    return out


def _stacks(root: Path, card: DrmCard) -> int:
    """How many stacks (tiles) the card has: xe lists ``device/tileN``, i915 ``cardN/gt/gtN``."""
    if card.driver == "xe":
        found = _count(card.device, "tile")
    else:
        found = _count(root / "class" / "drm" / card.name / "gt", "gt")
    return max(found, 1)


def _count(parent: Path, prefix: str) -> int:
    try:
        return sum(
            1
            for p in parent.iterdir()
            if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
        )
    except OSError:
        return 0


@dataclass(frozen=True, slots=True)
class XpuDevice:
    """A device as Level Zero (and torch ``xpu:N``) numbers it: a card, or a stack of one."""

    card: int  # position among the Intel cards
    stack: int | None  # None: the whole card (COMPOSITE)


def level_zero_devices(
    stacks_per_card: Sequence[int], environ: Mapping[str, str]
) -> list[XpuDevice]:
    """The devices this process sees, in ``xpu:N`` order (see the module docstring).

    >>> level_zero_devices([2, 1], {})
    [XpuDevice(card=0, stack=0), XpuDevice(card=0, stack=1), XpuDevice(card=1, stack=0)]
    >>> level_zero_devices([2, 1], {"ZE_FLAT_DEVICE_HIERARCHY": "COMPOSITE",
    ...                             "ZE_AFFINITY_MASK": "1,0.1"})
    [XpuDevice(card=0, stack=None), XpuDevice(card=1, stack=None)]
    """
    composite = environ.get("ZE_FLAT_DEVICE_HIERARCHY", "FLAT").strip().upper() == "COMPOSITE"
    if composite:
        devices = [XpuDevice(c, None) for c in range(len(stacks_per_card))]
    else:
        devices = [XpuDevice(c, s) for c, n in enumerate(stacks_per_card) for s in range(n)]
    mask = environ.get("ZE_AFFINITY_MASK")
    if mask is None or not mask.strip():
        return devices
    keep: set[int] = set()
    for raw in mask.split(","):
        token = raw.strip()
        head, _, sub = token.partition(".")
        ok = head.isdigit() and int(head) < len(devices)
        if ok and sub:
            ok = composite and sub.isdigit() and int(sub) < stacks_per_card[int(head)]
        if not ok:
            warnings.warn(
                f"ZE_AFFINITY_MASK entry {token!r} matches no Intel GPU device "
                f"({len(devices)} seen); greentrack ignores it, as Level Zero does",
                stacklevel=3,
            )
            continue
        keep.add(int(head))
    return [d for i, d in enumerate(devices) if i in keep]


def _model(card: DrmCard) -> str:
    name = pci_device_name(card.pci_id) if card.pci_id else None
    pci = card.pci_id or "unknown PCI id"
    return f"Intel {name} [{pci}]" if name else f"Intel GPU [{pci}]"


class IntelGpuMeter:
    """Cumulative energy of this process's Intel GPU cards (energy only: the drivers expose
    no power sensor, so the timeline's power comes from energy differences).

    Args:
        root: the sysfs root (default ``$GREENTRACK_SYSFS_ROOT``, else ``/sys``).
        device_indices: indices into the visible ``xpu`` devices (``[local_rank]`` in DDP);
            ``None``: every visible device.
        environ: where ``ZE_AFFINITY_MASK`` and ``ZE_FLAT_DEVICE_HIERARCHY`` are read.
        pick: given how many devices this process sees, the indices it measures (a rank's
            device, :func:`greentrack.launcher.gpus_for`), when ``device_indices`` is not given.

    Attributes:
        not_counted: ``{card: why}`` for visible cards without an energy counter.
        devices: how many ``xpu`` devices this process sees (for the rank's device rule).

    Raises:
        MeterUnavailableError: no Intel GPU, or none visible with an energy counter.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        device_indices: Sequence[int] | None = None,
        environ: Mapping[str, str] | None = None,
        pick: Callable[[int], Sequence[int] | None] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        root = sysfs_root(env) if root is None else root
        cards = intel_cards(root)
        if not cards:
            raise MeterUnavailableError(f"no Intel GPU (i915 or xe driver) under {root}")
        devices = level_zero_devices([c.stacks for c in cards], env)
        self.devices = len(devices)
        if device_indices is None and pick is not None:
            device_indices = pick(len(devices))
        chosen = select_devices(devices, device_indices, "xpu")
        self.not_counted: dict[str, str] = {}
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[Path, CounterTotal]] = {}
        channels = []
        for position in dict.fromkeys(d.card for d in chosen):
            card = cards[position]
            stacks_used = [d.stack for d in chosen if d.card == position]
            channel = self._open(card, stacks_used)
            if channel is not None:
                channels.append(channel)
        self._channels = tuple(channels)
        if not self._channels:
            why = "; ".join(f"{k}: {v}" for k, v in self.not_counted.items())
            raise MeterUnavailableError(
                "no visible Intel GPU can be measured"
                + (f" ({why})" if why else " (ZE_AFFINITY_MASK hides all)")
            )

    def _open(self, card: IntelCard, stacks_used: list[int | None]) -> Channel | None:
        cid = f"intel{card.position}"
        model = _model(card.card)
        method = card.method
        if card.energy_file is None or method is None:
            self.not_counted[cid] = f"{model} ({card.card.name}): {NO_HWMON}"
            return None
        try:
            first = read_int(card.energy_file)
        except (OSError, ValueError) as e:
            self.not_counted[cid] = (
                f"{model} ({card.card.name}): cannot read {card.energy_file}: {e}"
            )
            return None
        self._counters[cid] = (card.energy_file, CounterTotal(first))
        details: dict[str, Any] = {
            "vendor": "Intel",
            "uuid": f"PCI-{card.card.pci_slot}",
            "pci_slot": card.card.pci_slot,
            "pci_id": card.card.pci_id,
            "card": card.card.name,
            "driver": card.card.driver,
            "energy_file": str(card.energy_file),
            "scope": "card" if method == CARD_ENERGY else "GPU package (no card counter)",
            "stacks": card.stacks,
        }
        limit = read_optional(card.hwmon.path / "power1_rated_max") if card.hwmon else None
        if limit and limit.isdigit() and int(limit) > 0:
            details["power_limit_w"] = int(limit) / 1e6
        if card.stacks > 1:
            used = [s for s in stacks_used if s is not None]
            details["stacks_used"] = used or "all"
            details["note"] = f"a card of {card.stacks} stacks is measured whole" + (
                f"; this process uses {'stack' if len(used) == 1 else 'stacks'} {used}"
                if used
                else ""
            )
        if card.tile_hwmons:
            details["tile_hwmons"] = list(card.tile_hwmons)
        return Channel(cid, "gpu", model, "measured", method, None, details)

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def read_energy_j(self) -> dict[str, float]:
        with self._lock:
            out = {}
            for cid, (path, total) in self._counters.items():
                try:
                    raw = read_int(path)
                except (OSError, ValueError) as e:
                    raise MeterError(f"{cid}: cannot read {path}: {e}") from e
                out[cid] = total.update(raw) / 1e6
            return out

    def read_power_w(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        """Nothing to release: the files are opened per read."""
