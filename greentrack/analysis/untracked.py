"""Work that was not tracked, declared in a small file and added to a project's footprint.

Papers ask for the project, not only the final run (Patterson et al. 2021; Dodge et al. 2022):
early exploration, failed jobs, a cluster's idle reservations. Declare them in YAML or JSON::

    untracked:
      - label: early exploration
        processor: a100-sxm4-40gb     # a key of `greentrack estimate --list-processors`
        count: 8                      # devices
        hours: 40
        region: US-CA                 # any greentrack region; optional
        pue: 1.1                      # optional (a number or a preset)
      - label: failed jobs
        watts: 300                    # instead of a processor: watts per device
        count: 2
        hours: 12
        region: DE

Each entry is an estimate (``count x hours x watts``, the processor's measured average power
where the table has one, else its TDP), labelled so, with the range of
:data:`greentrack.account.accuracy.DECLARED`; its CO2e comes from the account's formula at the
entry's own region and PUE.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.account.accuracy import DECLARED
from greentrack.account.build import AccountOptions, carbon_basis, charge
from greentrack.account.figures import Figure
from greentrack.carbon.settings import resolve_settings
from greentrack.numbers import num
from greentrack.safeload import shown

KEYS = {"label", "processor", "watts", "count", "hours", "region", "pue"}
MAX_COUNT = 1_000_000  # devices in one entry
MAX_HOURS = 100_000.0  # hours per device (about 11 years)
MAX_WATTS = 5000.0  # per device


@dataclass(frozen=True)
class DeclaredWork:
    """One declared entry with its figures (IT kWh, grams)."""

    label: str
    hardware: str
    count: int
    hours: float
    watts: float
    watts_source: str
    region: str | None
    energy_kwh: Figure
    co2e_g: Figure | None
    carbon_source: str | None
    gpu_hours: float | None = None  # devices x hours where the processor is a GPU
    region_name: str | None = None
    pue: float | None = None
    gco2e_per_kwh: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "hardware": self.hardware,
            "count": self.count,
            "hours": self.hours,
            "watts": self.watts,
            "watts_source": self.watts_source,
            "gpu_hours": self.gpu_hours,
            "region": self.region,
            "region_name": self.region_name,
            "pue": self.pue,
            "gco2e_per_kwh": self.gco2e_per_kwh,
            "provenance": "estimated",
            "accuracy": DECLARED.basis,
            "range_factors": [DECLARED.low, DECLARED.high],
            "energy_kwh": self.energy_kwh.to_dict(),
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "carbon_source": self.carbon_source,
        }


def load_declared(path: str | Path) -> list[DeclaredWork]:
    """The entries of a declaration file; errors are one line that names the file, the
    entry and the fix. The file is read within :data:`greentrack.safeload.FILE_LIMITS` (1 MiB,
    plain YAML or JSON, bounded nesting and aliases)."""
    from greentrack.safeload import load_file

    path = Path(path)
    data = load_file(path, what="declaration file")
    entries = data.get("untracked") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f"{path}: expected one entry or more in a list under 'untracked:' (see docs/report.md)"
        )
    return [_entry(path, i, e) for i, e in enumerate(entries, start=1)]


def _number(where: str, key: str, value: Any, low: float, high: float) -> float:
    """``value`` as a finite number in ``(low, high]``; YAML 1.1 reads ``1e3`` as text, so a
    string that is a number is taken."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {key} must be a number, got {shown(value)}")
    if not math.isfinite(value) or not low < value <= high:
        raise ValueError(
            f"{where}: {key} must be in ({num(low, 6)}, {num(high, 6)}], got {shown(value)}"
        )
    return float(value)


def _entry(path: Path, i: int, e: Any) -> DeclaredWork:
    where = f"{path}, entry {i}"
    if not isinstance(e, dict):
        raise ValueError(f"{where}: an entry is a mapping of {', '.join(sorted(KEYS))}")
    unknown = set(e) - KEYS
    if unknown:
        raise ValueError(
            f"{where}: unknown {'key' if len(unknown) == 1 else 'keys'} "
            f"{sorted(map(str, unknown))}; known: {sorted(KEYS)}"
        )
    label = e.get("label", f"entry {i}")
    if (
        not isinstance(label, str | int | float)
        or isinstance(label, bool)
        or not str(label).strip()
    ):
        raise ValueError(f"{where}: label must be a non-empty text")
    label = str(label).strip()
    count = e.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(
            f"{where}: count must be a whole number of devices from 1 to {MAX_COUNT:,}, "
            f"got {shown(count)}"
        )
    if "hours" not in e:
        raise ValueError(f"{where}: hours is missing (hours per device, e.g. hours: 40)")
    hours = _number(where, "hours", e["hours"], 0.0, MAX_HOURS)
    if ("processor" in e) == ("watts" in e):
        raise ValueError(f"{where}: give either processor: KEY or watts: W per device")
    gpu_hours = None
    if "processor" in e:
        from greentrack.analysis.estimate import processor

        try:
            proc = processor(str(e["processor"]))
        except ValueError:
            raise ValueError(
                f"{where}: unknown processor {shown(e['processor'])}; `greentrack estimate "
                "--list-processors` lists the keys, or give watts: W per device instead"
            ) from None
        if proc.measured_avg_w is not None:
            watts, source = proc.measured_avg_w, f"measured average of {proc.name} ({proc.source})"
        elif proc.tdp_w is not None:
            watts, source = proc.tdp_w, f"TDP of {proc.name} ({proc.source})"
        else:
            raise ValueError(f"{where}: {proc.key} has no power in the table: give watts")
        hardware = proc.name
        gpu_hours = count * hours if proc.kind == "gpu" else None
    else:
        watts = _number(where, "watts", e["watts"], 0.0, MAX_WATTS)
        source, hardware = "given in the declaration", f"{num(watts, 4)} W devices"
    kwh = count * hours * watts / 1000.0  # W x h = Wh; / 1000 = kWh
    energy = Figure.relative(kwh, DECLARED.low, DECLARED.high)
    co2e = carbon_source = region_name = pue = intensity = None
    region = e.get("region")
    if region is not None:
        if not isinstance(region, str) or not region.strip():
            raise ValueError(f"{where}: region must be a region key such as DE or US-CA")
        try:
            settings = resolve_settings(region, pue=e.get("pue"))
        except (ValueError, LookupError, TypeError) as err:
            if "pue" in str(err).lower() and e.get("pue") is not None:
                raise ValueError(f"{where}: {err}") from None
            raise ValueError(
                f"{where}: unknown region {region!r}; `greentrack regions` lists them "
                "(or leave region out: energy without CO2e)"
            ) from None
        basis = carbon_basis(settings, "declared", AccountOptions(), None) if settings else None
        co2e = charge(energy, basis)
        carbon_source = basis.source if basis else None
        if settings is not None:
            region_name = settings.intensity.name
            pue, intensity = settings.pue.value, settings.intensity.gco2e_per_kwh
    elif e.get("pue") is not None:
        raise ValueError(f"{where}: pue needs a region")
    return DeclaredWork(
        label,
        hardware,
        count,
        hours,
        watts,
        source,
        region,
        energy,
        co2e,
        carbon_source,
        gpu_hours,
        region_name,
        pue,
        intensity,
    )
