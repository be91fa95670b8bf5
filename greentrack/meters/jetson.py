"""NVIDIA Jetson power from the module's INA3221 rail monitors, labelled as board rails.

Jetson modules have no NVML. Their power is measured by TI INA3221 monitors on the board,
three rails each, which Jetson Linux (JetPack 5 and later) exposes through the kernel's
``ina3221`` hwmon driver (Documentation/hwmon/ina3221.rst), under the sysfs root::

    class/hwmon/hwmonM/name            "ina3221"
    class/hwmon/hwmonM/inN_label       the rail's name from the device tree (VDD_IN...)
    class/hwmon/hwmonM/inN_input       bus voltage, millivolts        (N = 1, 2, 3)
    class/hwmon/hwmonM/currN_input     current, milliamperes
    class/hwmon/hwmonM/powerN_input    microwatts, where a Jetson kernel adds it
    firmware/devicetree/base/model     "NVIDIA Jetson Orin Nano Developer Kit"

Power = bus voltage x current (or ``powerN_input``), sampled at ``power_hz`` and integrated
(there is no energy counter).

Which rails are counted (rail names from NVIDIA's Jetson Linux developer guide, "Platform
Power and Performance", and the L4T device trees as catalogued by energymon):

* the module's input rail (``VDD_IN``; ``POM_5V_IN`` on the Nano; ``5V_IN``) covers the whole
  module (CPU, GPU, SoC, memory): where it exists it is the one channel (component ``gpu``:
  the module is the accelerator), the CPU and DRAM are measured within it, and the other
  rails are recorded, not added (they are inside it);
* without it (AGX Xavier, AGX Orin: the module is the sum of its rails) each module rail is a
  channel: rails naming the GPU are ``gpu``, the CPU ``cpu``, memory (DDR, VDDRQ, VDDQ)
  ``dram``, and the rest (SoC, CV, 5 V system) ``gpu`` as parts of the accelerator module;
* carrier-board rails (``VDD_MUX``, the IO and M.2 rails) are outside the module: not counted.

A combined rail (``VDD_CPU_GPU_CV``) is one channel and says so; the CPU is then measured in it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.meters.base import Channel, Component
from greentrack.meters.sysfs import Hwmon, all_hwmons, read_int, read_optional, sysfs_root

RAIL_POWER = "jetson-ina3221-board-rail (bus mV x mA)"
RAIL_POWER_FILE = "jetson-ina3221-board-rail (powerN_input)"
MODULE_INPUT = frozenset({"VDD_IN", "POM_5V_IN", "5V_IN"})
CARRIER = frozenset(
    {
        "VDD_MUX",
        "VDD_5V_IO_SYS",
        "VDD_3V3_SYS",
        "VDD_3V3_IO",
        "VDD_3V3_IO_SLP",
        "VDD_1V8_IO",
        "VDD_M2_IN",
        "VDD_3V3_SYS_M2",
    }
)
_UNLABELLED = frozenset({"", "NC", "N/A"})


@dataclass(frozen=True, slots=True)
class Rail:
    """One INA3221 channel: its label and the files its power is read from."""

    label: str
    hwmon: Path
    n: int

    @property
    def power_file(self) -> Path | None:
        path = self.hwmon / f"power{self.n}_input"
        return path if path.is_file() else None

    def read_w(self) -> float:
        power = self.power_file
        if power is not None:
            return read_int(power) / 1e6
        millivolts = read_int(self.hwmon / f"in{self.n}_input")
        milliamps = read_int(self.hwmon / f"curr{self.n}_input")
        return millivolts * milliamps / 1e6


def rails(root: Path) -> list[Rail]:
    """The labelled, enabled INA3221 rails under ``root`` (channels 1-3 of each monitor)."""
    out = []
    for mon in (h for h in all_hwmons(root) if h.name == "ina3221"):
        out.extend(_rails_of(mon))
    return out


def _rails_of(mon: Hwmon) -> list[Rail]:
    out = []
    for n in (1, 2, 3):
        label = (read_optional(mon.path / f"in{n}_label") or "").strip()
        if label.upper() in _UNLABELLED:
            continue
        if (read_optional(mon.path / f"in{n}_enable") or "1") == "0":
            continue
        if (mon.path / f"curr{n}_input").is_file() or (mon.path / f"power{n}_input").is_file():
            out.append(Rail(label, mon.path, n))
    return out


def board_model(root: Path) -> str:
    """The board's name from the device tree (``NVIDIA Jetson ...``), or a generic one."""
    raw = read_optional(root / "firmware" / "devicetree" / "base" / "model") or ""
    model = raw.replace("\x00", "").strip()
    return model or "NVIDIA Jetson"


def component_of(label: str) -> Component:
    """The component a module rail counts as (see the module docstring).

    >>> component_of("VDD_CPU_GPU_CV"), component_of("VDD_CPU_CV"), component_of("VDDRQ")
    ('gpu', 'cpu', 'dram')
    """
    name = label.upper()
    if "GPU" in name:
        return "gpu"
    if "CPU" in name:
        return "cpu"
    if "DDR" in name or name.startswith(("VDDRQ", "VDDQ")):
        return "dram"
    return "gpu"


def _cid(label: str) -> str:
    return "jetson_" + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


class JetsonMeter:
    """Power of a Jetson module's rails (see the module docstring for which are counted).

    Args:
        root: the sysfs root (default ``$GREENTRACK_SYSFS_ROOT``, else ``/sys``).
        environ: where ``GREENTRACK_SYSFS_ROOT`` is read.

    Attributes:
        not_counted: ``{rail: why}`` for rails found and not counted as channels of their
            own (inside the module input rail, or outside the module).
        covers: the components measured within this meter's channels (``cpu``, ``dram``)
            although no channel carries their name: the CPU inside ``VDD_IN``, say.

    Raises:
        MeterUnavailableError: no INA3221 rail, or none that belongs to the module.
    """

    def __init__(
        self, root: Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        root = sysfs_root(env) if root is None else root
        found = rails(root)
        if not found:
            raise MeterUnavailableError(f"no INA3221 power rails (hwmon 'ina3221') under {root}")
        model = board_model(root)
        self.not_counted: dict[str, str] = {}
        self.covers: dict[str, str] = {}
        total = [r for r in found if r.label.upper() in MODULE_INPUT]
        counted: list[tuple[Rail, Component, str]] = []
        if total:
            rail = total[0]
            counted.append((rail, "gpu", f"{model} {rail.label} board rail (whole module input)"))
            for other in found:
                if other is rail:
                    continue
                where = "carrier board" if other.label.upper() in CARRIER else rail.label
                self.not_counted[other.label] = (
                    f"board rail inside {rail.label} (counted within it, not added again)"
                    if where != "carrier board"
                    else "carrier-board rail, outside the module"
                )
            self.covers = {"cpu": rail.label, "dram": rail.label}
        else:
            for rail in found:
                if rail.label.upper() in CARRIER:
                    self.not_counted[rail.label] = "carrier-board rail, outside the module"
                    continue
                component = component_of(rail.label)
                counted.append((rail, component, f"{model} {rail.label} board rail"))
                name = rail.label.upper()
                if component == "gpu" and "CPU" in name:
                    self.covers["cpu"] = rail.label
        if not counted:
            raise MeterUnavailableError(
                "no INA3221 rail belongs to the Jetson module: "
                + "; ".join(f"{k}: {v}" for k, v in self.not_counted.items())
            )
        self._rails: dict[str, Rail] = {}
        channels = []
        for rail, component, name in counted:
            cid = _cid(rail.label)
            method = RAIL_POWER_FILE if rail.power_file is not None else RAIL_POWER
            details: dict[str, Any] = {
                "vendor": "NVIDIA",
                "board": model,
                "rail": rail.label,
                "hwmon": str(rail.hwmon),
                "channel": rail.n,
                "scope": "board rail (INA3221 shunt monitor), not an on-chip sensor",
            }
            if "CPU" in rail.label.upper() and component == "gpu":
                details["note"] = f"one rail for the CPU and GPU ({rail.label})"
            if rail.label.upper() in MODULE_INPUT:
                details["rails_inside"] = sorted(
                    k for k, v in self.not_counted.items() if "inside" in v
                )
            channels.append(Channel(cid, component, name, "measured", None, method, details))
            self._rails[cid] = rail
        self._channels = tuple(channels)
        try:
            self.read_power_w()
        except MeterError as e:
            raise MeterUnavailableError(str(e)) from e

    @property
    def channels(self) -> Sequence[Channel]:
        return self._channels

    def read_energy_j(self) -> dict[str, float]:
        return {}

    def read_power_w(self) -> dict[str, float]:
        out = {}
        for cid, rail in self._rails.items():
            try:
                out[cid] = rail.read_w()
            except (OSError, ValueError) as e:
                raise MeterError(
                    f"{cid}: cannot read rail {rail.label} in {rail.hwmon}: {e}"
                ) from e
        return out

    def close(self) -> None:
        """Nothing to release: the files are opened per read."""
