"""CPU thermal design power (TDP) lookup in the bundled table.

The table ``data/cpu_tdp.csv`` (model name -> TDP in watts, 4,918 models) is CodeCarbon's
``codecarbon/data/hardware/cpu_power.csv`` from codecarbon 3.3.2 (MIT licence; see
``data/SOURCES.md``). TDP is a design envelope, not a measurement: anything computed from it
is labelled ``estimated``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

_NOISE = re.compile(r"\(r\)|\(tm\)|®|™|@.*$|\bcpu\b|\bprocessor\b|\d+-core\b|\bwith\b.*$")


@dataclass(frozen=True, slots=True)
class TdpMatch:
    """A table row matched to a CPU model string."""

    model: str
    table_name: str
    tdp_w: float


def normalize_cpu_name(name: str) -> str:
    """Lower-case a CPU model string and drop marks, clock speed and filler words.

    >>> normalize_cpu_name("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz")
    'intel xeon gold 6248'
    """
    text = _NOISE.sub(" ", name.lower())
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, float]]:
    rows: dict[str, tuple[str, float]] = {}
    data = resources.files("greentrack.meters").joinpath("data/cpu_tdp.csv")
    with data.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                rows[normalize_cpu_name(row["Name"])] = (row["Name"], float(row["TDP"]))
            except (KeyError, ValueError):
                continue
    return rows


@lru_cache(maxsize=64)
def lookup_tdp(model: str) -> TdpMatch | None:
    """Find the TDP of a CPU model: exact match after normalisation, else the longest table
    name (ending in a model number) that appears as whole words in ``model``. Cached: a
    Flower client discovers its meters for every message."""
    key = normalize_cpu_name(model)
    table = _table()
    if key in table:
        name, tdp = table[key]
        return TdpMatch(model, name, tdp)
    words = key.split()
    best: tuple[int, str] | None = None
    for i in range(len(words)):  # every run of whole words of the model, looked up
        for j in range(i + 2, len(words) + 1):  # two words at least
            candidate = " ".join(words[i:j])
            if candidate not in table or not any(c.isdigit() for c in words[j - 1]):
                continue
            if best is None or len(candidate) > best[0]:
                best = (len(candidate), candidate)
    if best is None:
        return None
    name, tdp = table[best[1]]
    return TdpMatch(model, name, tdp)


@lru_cache(maxsize=8)
def cpu_model_and_packages(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, int]:
    """The CPU model name and the number of physical packages, from ``/proc/cpuinfo``
    (cached: the hardware does not change while the process runs)."""
    import platform

    try:
        text = cpuinfo.read_text()
    except OSError:
        return platform.processor() or "unknown", 1
    model = "unknown"
    packages: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key == "physical id":
            packages.add(value.strip())
    return model, max(1, len(packages))
