"""CO2e of a run: IT energy x PUE x intensity (annual, or a time series).

    CO2e [g] = E_IT [kWh] x PUE x I [gCO2e/kWh]            (Patterson et al. 2021)
    CO2e [g] = sum_k E_IT,k [kWh] x PUE x I_k              (Dodge et al. 2022, with a series)

Measured and estimated energy are kept apart: each gets its own CO2e figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greentrack.carbon.intensity import GridIntensity, explicit_intensity, resolve_region
from greentrack.carbon.pue import Pue, resolve_pue
from greentrack.carbon.series import EnergyCurve

if TYPE_CHECKING:
    from greentrack.run import Run

REGION_ENV = "GREENTRACK_REGION"


@dataclass(frozen=True)
class CarbonSettings:
    """The intensity and PUE a run applies, resolved and validated."""

    intensity: GridIntensity
    pue: Pue
    how_chosen: str

    def to_dict(self, components: list[str]) -> dict[str, Any]:
        return {
            "intensity": self.intensity.to_dict(),
            "pue": self.pue.to_dict(),
            "pue_applies_to": components,
            "region_chosen_by": self.how_chosen,
        }


def resolve_settings(
    region: str | None = None,
    *,
    intensity: float | None = None,
    intensity_source: str | None = None,
    pue: float | str | None = None,
    environ: Any = None,
) -> CarbonSettings | None:
    """Resolve what the user asked for; ``None`` when no region or intensity was given.

    ``region="auto"`` reads ``$GREENTRACK_REGION`` (explicit local configuration only: greentrack
    never geolocates). Errors name the problem and the fix before any training starts.
    """
    import os

    env = os.environ if environ is None else environ
    if intensity is not None and region is not None:
        raise ValueError("pass either region=... or intensity=..., not both")
    if intensity is not None:
        grid = explicit_intensity(intensity, intensity_source or "")
        how = "explicit intensity"
    elif region is not None:
        how = "given"
        if region == "auto":
            if not env.get(REGION_ENV):
                raise ValueError(
                    f"region='auto' reads ${REGION_ENV}, which is not set; set it (e.g. "
                    f"{REGION_ENV}=DE) or pass the region itself"
                )
            region, how = env[REGION_ENV], f"${REGION_ENV}"
        grid = resolve_region(region)
    else:
        if pue is not None:
            resolve_pue(pue)  # still validate it
        return None
    return CarbonSettings(grid, resolve_pue(pue, grid), how)


def energy_curve(run: Run, source: str | None = None) -> EnergyCurve:
    """Cumulative IT energy of ``run`` over UTC time (channels of ``source`` only, if given),
    starting at 0 J at the run's start."""
    import numpy as np

    wide = run._wide
    ids = [c["id"] for c in run.channels if source is None or c["source"] == source]
    t = np.concatenate([[run.meta["start_unix_s"]], wide["t_unix_s"].to_numpy(dtype=float)])
    total = np.zeros(len(t))
    for cid in ids:
        col = wide[f"{cid}_energy_j"].ffill().fillna(0.0).to_numpy(dtype=float)
        total[1:] += col
    if run.final is not None:  # the final fresh reading, exact
        t = np.append(t, run.final["end_unix_s"])
        total = np.append(total, sum(float(run.final["energy_j"].get(c, 0.0)) for c in ids))
    order = np.argsort(t, kind="stable")
    t, total = t[order], np.maximum.accumulate(total[order])
    keep = np.concatenate([[True], np.diff(t) > 0])
    return EnergyCurve(t[keep], total[keep])


def co2e_g(energy_j: float, settings: CarbonSettings) -> float:
    """Annual-intensity CO2e in grams of ``energy_j`` joules of IT energy."""
    return energy_j / 3.6e6 * settings.pue.value * settings.intensity.gco2e_per_kwh


def settings_from_meta(meta: dict[str, Any]) -> CarbonSettings | None:
    """The settings a run recorded at its start (reproducible even if tables change)."""
    from greentrack.carbon.intensity import Source

    carbon = meta.get("carbon")
    if not carbon:
        return None
    i = carbon["intensity"]
    grid = GridIntensity(
        region=i["region"],
        name=i["name"],
        gco2e_per_kwh=float(i["gco2e_per_kwh"]),
        year=i["year"],
        basis=i["basis"],
        source=Source(i["source_id"], i["source"], "", i["licence"], ""),
        grid_key=i["grid_key"],
        kind=i.get("kind", "average"),
    )
    p = carbon["pue"]
    return CarbonSettings(
        grid,
        Pue(float(p["pue"]), p["source"], p["year"], p["note"]),
        carbon.get("region_chosen_by", "given"),
    )
