"""AMD GPU devices: which exist, how each is read, which share one reading, which are visible.

The meter (:mod:`greentrack.meters.amd`) measures what this module finds: each device (a die
of a multi-die part is one) with its energy and power methods, from amdsmi or from the amdgpu
hwmon files (see that module's docstring for the sources, the dies that share a reading and the
visibility variables).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greentrack.meters.sysfs import (
    DrmCard,
    hwmons_under,
    pci_device_name,
    read_optional,
    same_device,
)

KFD_DEVICE = Path("/dev/kfd")
SMI_ENERGY = "amdsmi-energy-accumulator"
SMI_POWER = "amdsmi-current-socket-power"
SMI_POWER_AVERAGE = "amdsmi-average-socket-power (firmware average)"
HWMON_ENERGY = "amdgpu-hwmon-energy1_input"
HWMON_POWER = "amdgpu-hwmon-power1_input"
HWMON_POWER_AVERAGE = "amdgpu-hwmon-power1_average (firmware average)"
SHARED = " x die share (attribution)"
NOT_SUPPORTED = 2  # AMDSMI_STATUS_NOT_SUPPORTED (amdsmi_wrapper)
_NA = "N/A"


def smi_error(smi: Any, err: Exception) -> str:
    """What an amdsmi exception means, in one phrase (``AMDSMI_STATUS_NOT_SUPPORTED``: the
    call AMD documents as unsupported on virtual machine guests)."""
    code = getattr(err, "get_error_code", lambda: None)()
    info = getattr(err, "get_error_info", lambda: str(err))()
    if code == NOT_SUPPORTED:
        return (
            f"not supported here ({info}; AMD documents it as unsupported on virtual machine "
            "guests)"
        )
    return f"amdsmi error {code}: {info}"


@dataclass
class AmdDie:
    """One AMD GPU device (a die of a multi-die part is one device) and how it is read."""

    smi_index: int  # amd-smi's order (PCI bus order)
    name: str
    uuid: str
    ids: frozenset[str]  # what a ROCR/HIP GPU- UUID token may match (lower case)
    pci_slot: str
    driver: str
    order_key: int  # HIP order: sorts the dies as HIP numbers them
    handle: Any = None  # amdsmi processor handle (None: read from hwmon)
    hwmon: Path | None = None
    card: DrmCard | None = None
    energy_method: str | None = None
    power_method: str | None = None
    resolution_uj: float | None = None
    power_limit_w: float | None = None
    secondary: bool = False  # its package's reading is on another die
    notes: list[str] = field(default_factory=list)


# --- amdsmi ----------------------------------------------------------------------------------


def smi_dies(smi: Any, cards: list[DrmCard], root: Path) -> list[AmdDie]:
    flags = getattr(smi, "AmdSmiInitFlags", None)
    if flags is not None:
        smi.amdsmi_init(flags.INIT_AMD_GPUS)
    else:
        smi.amdsmi_init()
    handles = list(smi.amdsmi_get_processor_handles())
    enum_info = getattr(smi, "amdsmi_get_gpu_enumeration_info", None)
    kfd_info = getattr(smi, "amdsmi_get_gpu_kfd_info", None)
    dies = []
    for i, h in enumerate(handles):
        asic = _call(smi.amdsmi_get_gpu_asic_info, h) or {}
        name = str(asic.get("market_name") or "AMD GPU")
        name = name if name.upper().startswith("AMD") else f"AMD {name}"
        uuid = str(_call(smi.amdsmi_get_gpu_device_uuid, h) or f"amd-smi-{i}")
        slot = str(_call(smi.amdsmi_get_gpu_device_bdf, h) or "")
        serial = str(asic.get("asic_serial") or "")
        driver = (_call(smi.amdsmi_get_gpu_driver_info, h) or {}).get("driver_version")
        order = None
        if enum_info is not None:
            order = _int_or_none((_call(enum_info, h) or {}).get("hip_id"))
        elif kfd_info is not None:
            order = _int_or_none((_call(kfd_info, h) or {}).get("node_id"))
        die = AmdDie(
            smi_index=i,
            name=name,
            uuid=uuid,
            ids=_ids(uuid, serial),
            pci_slot=slot,
            driver=f"amdgpu {driver}" if driver else "amdgpu",
            order_key=order if order is not None else i,
            handle=h,
            card=next((c for c in cards if c.pci_slot == slot), None),
        )
        if order is None:
            die.notes.append("HIP order unknown (amdsmi older than 6.3): amd-smi order used")
        _smi_probe(smi, die, root)
        dies.append(die)
    return dies


def _smi_probe(smi: Any, die: AmdDie, root: Path) -> None:
    """Choose the die's energy and power methods (falling back to hwmon for a die amdsmi
    cannot read, e.g. on a virtual machine guest), and whether it is a secondary die."""
    h = die.handle
    try:
        d = smi.amdsmi_get_energy_count(h)
        raw = int(d["energy_accumulator"] if "energy_accumulator" in d else d["power"])
        resolution = float(d["counter_resolution"])
        if raw == 0:
            die.secondary = True  # AMD's rocm-smi: a secondary die's accumulator reads 0
        elif resolution > 0:
            die.energy_method, die.resolution_uj = SMI_ENERGY, resolution
        else:
            die.notes.append(f"amdsmi energy counter has resolution {resolution}: not used")
    except Exception as e:
        die.notes.append(f"amdsmi_get_energy_count: {smi_error(smi, e)}")
    try:
        info = smi.amdsmi_get_power_info(h)
        for key, method in (
            ("current_socket_power", SMI_POWER),
            ("average_socket_power", SMI_POWER_AVERAGE),
        ):
            if info.get(key, _NA) != _NA and not die.secondary:
                die.power_method = method
                break
        else:
            if not die.secondary:
                die.notes.append("amdsmi_get_power_info gives no socket power (N/A)")
    except Exception as e:
        die.notes.append(f"amdsmi_get_power_info: {smi_error(smi, e)}")
    cap = (_call(smi.amdsmi_get_power_cap_info, h) or {}).get("power_cap")
    if isinstance(cap, int | float) and cap > 0:
        die.power_limit_w = cap / 1e6
    if die.energy_method is None and die.power_method is None and not die.secondary:
        _hwmon_probe(die, root, fallback=True)


def _ids(uuid: str, serial: str) -> frozenset[str]:
    out = {uuid.lower(), uuid.lower().removeprefix("gpu-")}
    hexserial = serial.lower().removeprefix("0x")
    if hexserial and hexserial != "n/a":
        out.add(hexserial.zfill(16))
    return frozenset(x for x in out if x)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or ``None`` where the library fails: a query some devices lack, whose
    answer is metadata only."""
    try:
        return fn(*args)
    except Exception:
        return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- hwmon -----------------------------------------------------------------------------------


def hwmon_dies(root: Path, cards: list[DrmCard]) -> list[AmdDie]:
    order = _kfd_order(root)
    version = read_optional(root / "module" / "amdgpu" / "version")
    dies = []
    for i, card in enumerate(sorted(cards, key=lambda c: c.pci_slot)):
        unique = read_optional(card.device / "unique_id") or ""
        name = read_optional(card.device / "product_name") or pci_device_name(card.pci_id)
        model = name if name else f"GPU [{card.pci_id or 'unknown PCI id'}]"
        model = model if model.upper().startswith("AMD") else f"AMD {model}"
        key = next((k for k, dev in order if same_device(dev, card.device)), None)
        die = AmdDie(
            smi_index=i,
            name=model,
            uuid=f"GPU-{unique}" if unique else f"PCI-{card.pci_slot}",
            ids=_ids(f"GPU-{unique}" if unique else "", unique),
            pci_slot=card.pci_slot,
            driver=f"amdgpu {version}" if version else "amdgpu",
            order_key=key if key is not None else 1_000_000 + i,
            card=card,
        )
        if key is None and order:
            die.notes.append("not in the KFD topology: HIP order assumed to be PCI order")
        _hwmon_probe(die, root)
        dies.append(die)
    _mark_secondary_hwmon(dies)
    return dies


def _hwmon_probe(die: AmdDie, root: Path, *, fallback: bool = False) -> None:
    if die.card is None:
        die.notes.append("no amdgpu card in sysfs to read instead")
        return
    mon = next((m for m in hwmons_under(die.card.device) if m.name == "amdgpu"), None)
    if mon is None:
        die.notes.append(f"no amdgpu hwmon under {die.card.device}")
        return
    die.hwmon = mon.path
    if (mon.path / "energy1_input").is_file():
        die.energy_method = HWMON_ENERGY
    for name, method in (("power1_input", HWMON_POWER), ("power1_average", HWMON_POWER_AVERAGE)):
        if read_optional(mon.path / name) is not None:
            die.power_method = method
            break
    cap = read_optional(mon.path / "power1_cap")
    if cap and cap.isdigit() and int(cap) > 0 and die.power_limit_w is None:
        die.power_limit_w = int(cap) / 1e6
    if fallback and (die.energy_method or die.power_method):
        die.handle = None  # read from hwmon from now on
        die.notes.append("read from the amdgpu hwmon files instead")


def _mark_secondary_hwmon(dies: list[AmdDie]) -> None:
    """Without amdsmi, a die with no power reading (or 0 W) next to a die of the same model
    that reads power is a secondary die."""
    for die in dies:
        if die.energy_method is not None or die.hwmon is None:
            continue
        watts = _hwmon_watts(die)
        if watts is not None and watts > 0:
            continue
        if any(_partner_ok(die, other) and (_hwmon_watts(other) or 0) > 0 for other in dies):
            die.secondary, die.power_method = True, None


def _hwmon_watts(die: AmdDie) -> float | None:
    if die.hwmon is None or die.power_method is None:
        return None
    name = "power1_input" if die.power_method == HWMON_POWER else "power1_average"
    value = read_optional(die.hwmon / name)
    return int(value) / 1e6 if value and value.lstrip("-").isdigit() else None


def _kfd_order(root: Path) -> list[tuple[int, Path]]:
    """KFD's GPU nodes in node order, each with the device behind its render node."""
    nodes = root / "class" / "kfd" / "kfd" / "topology" / "nodes"
    try:
        entries = sorted((int(p.name), p) for p in nodes.iterdir() if p.name.isdigit())
    except OSError:
        return []
    out = []
    for number, node in entries:
        if (read_optional(node / "gpu_id") or "0") == "0":
            continue  # a CPU node
        props = dict(
            line.split(None, 1)
            for line in (read_optional(node / "properties") or "").splitlines()
            if len(line.split(None, 1)) == 2
        )
        minor = props.get("drm_render_minor", "").strip()
        if minor.isdigit():
            out.append((number, root / "class" / "drm" / f"renderD{minor}" / "device"))
    return out


# --- dies that share a reading ------------------------------------------------------------------


def _partner_ok(die: AmdDie, other: AmdDie) -> bool:
    return (
        other is not die
        and not other.secondary
        and other.name == die.name
        and abs(other.smi_index - die.smi_index) == 1
    )


def package_groups(dies: list[AmdDie]) -> dict[int, tuple[AmdDie, int]]:
    """For each die of a package that reports on one die: ``{smi_index: (the reporting die,
    the package's die count)}``. A secondary die's partner is the die next to it in amd-smi
    order (``index ^ 1`` first: MI250's GCDs come in pairs), with the same model."""
    by_index = {d.smi_index: d for d in dies}
    members: dict[int, list[AmdDie]] = {}
    for die in dies:
        if not die.secondary:
            continue
        candidates = [by_index.get(die.smi_index ^ 1), by_index.get(die.smi_index - 1)]
        candidates.append(by_index.get(die.smi_index + 1))
        primary = next((c for c in candidates if c is not None and _partner_ok(die, c)), None)
        if primary is None:
            die.notes.append(
                "a secondary die (its energy counter reads 0): the die that reports its "
                "package's power was not found"
            )
            continue
        members.setdefault(primary.smi_index, [primary]).append(die)
    out: dict[int, tuple[AmdDie, int]] = {}
    for group in members.values():
        for die in group:
            out[die.smi_index] = (group[0], len(group))
    return out


# --- visibility ------------------------------------------------------------------------------


def rocm_visible(dies: Sequence[AmdDie], environ: Mapping[str, str]) -> list[AmdDie]:
    """The dies this process sees, in HIP order: ``ROCR_VISIBLE_DEVICES`` first, then
    ``HIP_VISIBLE_DEVICES`` (``CUDA_VISIBLE_DEVICES`` when unset) over what is left. Entries
    are indices or ``GPU-`` UUIDs; like PyTorch, parsing stops at the first invalid entry."""
    out = list(dies)
    rocr = environ.get("ROCR_VISIBLE_DEVICES")
    if rocr is not None:
        out = _apply(out, rocr, "ROCR_VISIBLE_DEVICES")
    name = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in environ else "CUDA_VISIBLE_DEVICES"
    hip = environ.get(name)
    if hip is not None:
        out = _apply(out, hip, name)
    return out


def _apply(dies: list[AmdDie], value: str, variable: str) -> list[AmdDie]:
    out: list[AmdDie] = []
    for raw in value.split(","):
        token = raw.strip()
        found: AmdDie | None = None
        if token.isdigit() and int(token) < len(dies):
            found = dies[int(token)]
        elif token.upper().startswith("GPU-"):
            key = token[4:].lower()
            matches = [d for d in dies if key in d.ids or f"gpu-{key}" in d.ids]
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            if token:
                warnings.warn(
                    f"{variable} entry {token!r} matches no AMD GPU; like the ROCm runtime, "
                    "greentrack ignores it and every entry after it",
                    stacklevel=4,
                )
            break
        if found not in out:
            out.append(found)
    return out
