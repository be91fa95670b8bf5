"""Fake sysfs trees in tmp_path, laid out as the kernel lays out the real one.

A PCI device is a directory under ``devices/pci0000:00/``, with the ``uevent`` the kernel
writes (``DRIVER=``, ``PCI_ID=``, ``PCI_SLOT_NAME=``) and a ``driver`` link into
``bus/pci/drivers``; its DRM card and hwmon directories sit under it, and ``class/drm/cardN``,
``class/drm/renderDN`` and ``class/hwmon/hwmonM`` are symbolic links to them, as on a real
machine. Values are written in the hwmon ABI's units (microjoules, microwatts, millivolts,
milliamperes).
"""

from __future__ import annotations

import os
from pathlib import Path


class FakeSysfs:
    """Builds a sysfs tree under ``root`` (pass ``root`` as ``GREENTRACK_SYSFS_ROOT``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._hwmons = 0

    def _link(self, link: Path, target: Path) -> None:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))

    def pci_device(self, slot: str, driver: str, pci_id: str, **files: str) -> Path:
        """A PCI device bound to ``driver`` (``pci_id`` as ``8086:56A0``), with extra
        attribute files (``unique_id``, ``product_name``, ``gpu_busy_percent``...)."""
        device = self.root / "devices" / "pci0000:00" / slot
        device.mkdir(parents=True)
        vendor, _, dev = pci_id.partition(":")
        (device / "uevent").write_text(
            f"DRIVER={driver}\nPCI_CLASS=38000\nPCI_ID={pci_id.upper()}\n"
            f"PCI_SUBSYS_ID={vendor.upper()}:0000\nPCI_SLOT_NAME={slot}\n"
            f"MODALIAS=pci:v0000{vendor.upper()}d0000{dev.upper()}sv\n"
        )
        (device / "vendor").write_text(f"0x{vendor.lower()}\n")
        (device / "device").write_text(f"0x{dev.lower()}\n")
        drivers = self.root / "bus" / "pci" / "drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        self._link(device / "driver", drivers)
        for name, value in files.items():
            (device / name).write_text(f"{value}\n")
        return device

    def drm_card(self, index: int, device: Path) -> Path:
        """``class/drm/cardN`` and ``renderD(128+N)`` for ``device``."""
        for name in (f"card{index}", f"renderD{128 + index}"):
            node = device / "drm" / name
            node.mkdir(parents=True)
            self._link(node / "device", device)
            (node / "uevent").write_text(f"MAJOR=226\nDEVNAME=dri/{name}\n")
            self._link(self.root / "class" / "drm" / name, node)
        # a connector, which is no card
        connector = device / "drm" / f"card{index}" / f"card{index}-DP-1"
        connector.mkdir()
        self._link(self.root / "class" / "drm" / f"card{index}-DP-1", connector)
        return self.root / "class" / "drm" / f"card{index}"

    def hwmon(self, device: Path, name: str, **files: int | str) -> Path:
        """``<device>/hwmon/hwmonM`` named ``name`` with attribute files, linked from
        ``class/hwmon/hwmonM``."""
        path = device / "hwmon" / f"hwmon{self._hwmons}"
        path.mkdir(parents=True)
        (path / "name").write_text(f"{name}\n")
        self._link(path / "device", device)
        for attr, value in files.items():
            (path / attr).write_text(f"{value}\n")
        self._link(self.root / "class" / "hwmon" / path.name, path)
        self._hwmons += 1
        return path

    def rapl_package(self, socket: int, energy_uj: int = 0) -> Path:
        """A RAPL package zone with a DRAM subzone under ``class/powercap``."""
        top = self.root / "class" / "powercap" / f"intel-rapl:{socket}"
        for path, name in ((top, f"package-{socket}"), (top / f"intel-rapl:{socket}:0", "dram")):
            path.mkdir(parents=True)
            (path / "name").write_text(f"{name}\n")
            (path / "max_energy_range_uj").write_text("262143328850\n")
            (path / "energy_uj").write_text(f"{energy_uj}\n")
        return top

    def kfd_node(self, number: int, *, gpu_id: int, render_minor: int = 0, **props: int) -> None:
        """``class/kfd/kfd/topology/nodes/N`` (``gpu_id`` 0 for a CPU node)."""
        node = self.root / "class" / "kfd" / "kfd" / "topology" / "nodes" / str(number)
        node.mkdir(parents=True)
        (node / "gpu_id").write_text(f"{gpu_id}\n")
        lines = {"cpu_cores_count": 0 if gpu_id else 64, "simd_count": 440 if gpu_id else 0}
        if gpu_id:
            lines["drm_render_minor"] = render_minor
        lines.update(props)
        (node / "properties").write_text("".join(f"{k} {v}\n" for k, v in lines.items()))

    @staticmethod
    def set(path: Path, value: int | str) -> None:
        path.write_text(f"{value}\n")

    def devicetree_model(self, model: str) -> None:
        """``firmware/devicetree/base/model``, NUL-terminated as the kernel writes it."""
        path = self.root / "firmware" / "devicetree" / "base" / "model"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model.encode() + b"\x00")

    def ina3221(self, i2c: str, rails: dict[int, tuple[str, int, int]]) -> Path:
        """An INA3221 on I2C device ``i2c`` (``1-0040``) with ``{channel: (label, mV, mA)}``,
        under ``bus/i2c/drivers/ina3221/<i2c>/hwmon/hwmonM`` as Jetson Linux lays it out."""
        device = self.root / "devices" / "platform" / "bus@0" / "c240000.i2c" / "i2c-1" / i2c
        device.mkdir(parents=True)
        (device / "name").write_text("ina3221\n")
        self._link(self.root / "bus" / "i2c" / "drivers" / "ina3221" / i2c, device)
        files: dict[str, int | str] = {"update_interval": 1100, "samples": 512}
        for n, (label, millivolts, milliamps) in rails.items():
            files[f"in{n}_label"] = label
            files[f"in{n}_enable"] = 1
            files[f"in{n}_input"] = millivolts
            files[f"curr{n}_input"] = milliamps
            files[f"in{n + 3}_input"] = milliamps * 5  # the shunt voltage, uV (5 mOhm)
            files[f"shunt{n}_resistor"] = 5000
        files["in7_label"] = "sum of shunt voltage"
        files["in7_input"] = sum(ma * 5 for _, _, ma in rails.values())
        return self.hwmon(device, "ina3221", **files)
