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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.account.accuracy import DECLARED
from greentrack.account.build import AccountOptions, carbon_basis, charge
from greentrack.account.figures import Figure
from greentrack.carbon.settings import resolve_settings

KEYS = {"label", "processor", "watts", "count", "hours", "region", "pue"}


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "hardware": self.hardware,
            "count": self.count,
            "hours": self.hours,
            "watts": self.watts,
            "watts_source": self.watts_source,
            "region": self.region,
            "provenance": "estimated",
            "accuracy": DECLARED.basis,
            "range_factors": [DECLARED.low, DECLARED.high],
            "energy_kwh": self.energy_kwh.to_dict(),
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "carbon_source": self.carbon_source,
        }


def load_declared(path: str | Path) -> list[DeclaredWork]:
    """The entries of a declaration file; errors name the file, the entry and the fix."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the declaration file {path}: {e}") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ValueError(f"{path} is not valid {kind}: {e}") from e
    entries = data.get("untracked") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a list under 'untracked:' (see docs/report.md)")
    return [_entry(path, i, e) for i, e in enumerate(entries, start=1)]


def _entry(path: Path, i: int, e: Any) -> DeclaredWork:
    where = f"{path}, entry {i}"
    if not isinstance(e, dict):
        raise ValueError(f"{where}: an entry is a mapping of {', '.join(sorted(KEYS))}")
    unknown = set(e) - KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(KEYS)}")
    label = str(e.get("label") or f"entry {i}")
    count, hours = e.get("count", 1), e.get("hours")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{where}: count must be a whole number of devices >= 1, got {count!r}")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0:
        raise ValueError(f"{where}: hours must be a positive number, got {hours!r}")
    if ("processor" in e) == ("watts" in e):
        raise ValueError(f"{where}: give either processor: KEY or watts: W per device")
    if "processor" in e:
        from greentrack.analysis.estimate import processor

        proc = processor(str(e["processor"]))
        if proc.measured_avg_w is not None:
            watts, source = proc.measured_avg_w, f"measured average of {proc.name} ({proc.source})"
        elif proc.tdp_w is not None:
            watts, source = proc.tdp_w, f"TDP of {proc.name} ({proc.source})"
        else:
            raise ValueError(f"{where}: {proc.key} has no power in the table: give watts")
        hardware = proc.name
    else:
        watts = e["watts"]
        if isinstance(watts, bool) or not isinstance(watts, int | float) or not 0 < watts < 5000:
            raise ValueError(f"{where}: watts must be a device's power in (0, 5000) W")
        watts, source, hardware = float(watts), "given in the declaration", "devices"
    kwh = count * hours * watts / 1000.0  # W x h = Wh; / 1000 = kWh
    energy = Figure.relative(kwh, DECLARED.low, DECLARED.high)
    co2e = carbon_source = None
    region = e.get("region")
    if region is not None:
        settings = resolve_settings(str(region), pue=e.get("pue"))
        basis = carbon_basis(settings, "declared", AccountOptions(), None) if settings else None
        co2e = charge(energy, basis)
        carbon_source = basis.source if basis else None
    elif e.get("pue") is not None:
        raise ValueError(f"{where}: pue needs a region")
    return DeclaredWork(
        label, hardware, count, float(hours), watts, source, region, energy, co2e, carbon_source
    )
