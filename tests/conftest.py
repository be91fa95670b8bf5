"""Fakes at the OS boundary: a powercap sysfs tree in tmp_path and a fake pynvml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from greentrack.meters.fake import FakeGpu, FakeNvml, ManualClock


class FakePowercap:
    """Builds ``/sys/class/powercap``-like trees: packages with optional DRAM subzones."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def zone(self, rel: str, name: str, energy_uj: int = 0, max_uj: int = 262_143_328_850) -> Path:
        path = self.root / rel
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
        (path / "energy_uj").write_text(f"{energy_uj}\n")
        return path

    def package(
        self, socket: int, *, dram: bool = True, energy_uj: int = 0, max_uj: int = 262_143_328_850
    ) -> None:
        top = f"intel-rapl:{socket}"
        self.zone(top, f"package-{socket}", energy_uj, max_uj)
        self.zone(f"{top}/{top}:0", "core", 0)
        if dram:
            self.zone(f"{top}/{top}:1", "dram", 0, max_uj)

    def set(self, rel: str, energy_uj: int) -> None:
        (self.root / rel / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "powercap")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_nvml(clock: ManualClock) -> Callable[..., FakeNvml]:
    def make(n: int = 1, **gpu_kwargs: object) -> FakeNvml:
        gpus = [
            FakeGpu(uuid=f"GPU-{i}{i}{i}{i}aaaa-0000-0000-0000-00000000000{i}", **gpu_kwargs)  # type: ignore[arg-type]
            for i in range(n)
        ]
        return FakeNvml(gpus, clock)

    return make
