"""Power Usage Effectiveness (PUE): facility energy / IT equipment energy.

greentrack multiplies the energy of the IT components it measured or estimated (GPUs, CPU
packages, DRAM: the energy the datacentre delivers to IT equipment) by PUE to include cooling
and power distribution. Presets carry their sources (``data/pue_presets.csv``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from greentrack.carbon.intensity import GridIntensity, _data_text, sources

PROVIDER_PRESET = {"gcp": "google", "aws": "aws", "azure": "azure"}


@dataclass(frozen=True, slots=True)
class Pue:
    """A PUE value with where it comes from."""

    value: float
    source: str
    year: int | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pue": self.value, "source": self.source, "year": self.year, "note": self.note}


@lru_cache(maxsize=1)
def presets() -> dict[str, Pue]:
    """Named PUE presets (``google``, ``aws``, ``azure``, ``meta``, ``uptime-2024``, ...)."""
    out = {}
    for row in _data_text("pue_presets.csv"):
        note = "; ".join(x for x in (row["scope"], row["note"]) if x)
        out[row["key"]] = Pue(
            float(row["pue"]), sources()[row["source"]].cite(), int(row["year"]), note
        )
    return out


def validate_pue(value: float) -> float:
    """Check that ``value`` is a PUE (>= 1.0): below 1 a facility would use less energy than
    its IT equipment."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a PUE is a number from 1.0 to 5.0 or a preset name, got {value!r}")
    if not 1.0 <= value <= 5.0:
        raise ValueError(
            f"a PUE of {value:.6g} is not a PUE: "  # raw value
            "it is facility energy / IT energy, from 1.0 (no overhead) to 5.0 (hyperscale "
            "clouds ~1.1, industry average ~1.56); give a number in that range or a preset: "
            + ", ".join(presets())
        )
    return float(value)


def resolve_pue(pue: float | str | None, region: GridIntensity | None = None) -> Pue:
    """The PUE to apply.

    ``pue`` is a number (validated), a preset name, or ``None``: then the cloud region's own
    published PUE, else its provider's fleet preset, else 1.0 (PUE not applied, said so).
    """
    if isinstance(pue, str):
        key = pue.strip().lower()
        table = presets()
        if key in table:
            return table[key]
        try:
            number = float(key)
        except ValueError:
            close = difflib.get_close_matches(key, list(table), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(
                f"unknown PUE preset {pue!r}{hint}; presets: {', '.join(table)}, or a number >= 1.0"
            ) from None
        return Pue(validate_pue(number), "given by the user")
    if pue is not None:
        return Pue(validate_pue(pue), "given by the user")
    if region is not None and region.pue is not None:
        return Pue(
            region.pue,
            region.pue_source or "region",
            region.pue_year,
            f"published PUE of {region.region}",
        )
    if region is not None and ":" in region.region:
        provider = region.region.split(":", 1)[0]
        if provider in PROVIDER_PRESET:
            return presets()[PROVIDER_PRESET[provider]]
    return Pue(1.0, "not applied", None, "PUE not given: energy is IT energy only (pass pue=...)")
