"""CPU thermal design power (TDP) lookup in the bundled table.

The table ``data/cpu_tdp.csv`` (model name -> TDP in watts, 4,918 models) is CodeCarbon's
``codecarbon/data/hardware/cpu_power.csv`` from codecarbon 3.3.2 (MIT licence; see
``data/SOURCES.md``). TDP is a design envelope, not a measurement: anything computed from it
is labelled ``estimated``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

_NOISE = re.compile(r"\(r\)|\(tm\)|®|™|@.*$|\bcpu\b|\bprocessor\b|\d+-core\b|\bwith\b.*$")
_NOISE_MARKS = ("(r)", "(tm)", "®", "™", "@", "cpu", "processor", "-core", "with")
"""Substrings without one of which no part of :data:`_NOISE` can match."""


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
    text = name.lower()
    if any(mark in text for mark in _NOISE_MARKS):  # most names have none: skip the regex
        text = _NOISE.sub(" ", text)
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _lines() -> tuple[list[str], list[str]]:
    """The bundled table's data lines, as read and lower-cased (read once, ~1 ms; a line is
    parsed only when a lookup needs it)."""
    data = resources.files("greentrack.meters").joinpath("data/cpu_tdp.csv")
    lines = data.read_text(encoding="utf-8").splitlines()[1:]  # without the header
    return lines, [line.lower() for line in lines]


def _table(words: Sequence[str]) -> dict[str, tuple[str, float]]:
    """The normalised names of the rows whose name contains every one of ``words`` (a name
    can only match a model whose words it shares), each with its name and TDP; parsing and
    normalising only those keeps a lookup to about a millisecond."""
    out: dict[str, tuple[str, float]] = {}
    lines, lowered = _lines()
    for line, low in zip(lines, lowered, strict=True):
        if not all(w in low for w in words):  # the name or the TDP column: confirmed below
            continue
        for row in csv.reader([line]):
            try:
                name, tdp = row[0], float(row[1])
            except (IndexError, ValueError):
                continue  # a damaged row
            if all(w in name.lower() for w in words):
                out[normalize_cpu_name(name)] = (name, tdp)  # a later duplicate wins
    return out


@lru_cache(maxsize=64)
def lookup_tdp(model: str) -> TdpMatch | None:
    """Find the TDP of a CPU model: exact match after normalisation, else the longest table
    name (ending in a model number) that appears as whole words in ``model``. Cached: a
    Flower client discovers its meters for every message."""
    key = normalize_cpu_name(model)
    words = key.split()
    numbered = [w for w in words if any(c.isdigit() for c in w)]
    # an exact match shares every word; a partial one ends in one of the model's numbered words
    table = _table(words) if not numbered else {}
    for w in numbered:
        table.update(_table([w]))
    if key in table:
        name, tdp = table[key]
        return TdpMatch(model, name, tdp)
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
