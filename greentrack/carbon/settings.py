"""The carbon settings of a run: which grid intensity and which PUE apply, resolved, checked
and recorded with their sources (the CO2e itself is computed by :mod:`greentrack.account`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from greentrack.carbon.intensity import (
    MAX_GCO2E_PER_KWH,
    GridIntensity,
    explicit_intensity,
    resolve_region,
)
from greentrack.carbon.pue import Pue, resolve_pue, validate_pue
from greentrack.numbers import num

REGION_ENV = "GREENTRACK_REGION"


@dataclass(frozen=True)
class CarbonSettings:
    """The intensity and PUE a run applies, resolved and validated."""

    intensity: GridIntensity
    pue: Pue
    how_chosen: str

    @classmethod
    def resolve(
        cls,
        region: str | None = None,
        *,
        pue: float | str | None = None,
        intensity: float | None = None,
        intensity_source: str | None = None,
    ) -> CarbonSettings:
        """Settings for a region (``"DE"``, ``"aws:eu-west-1"``, ``"auto"``) or an explicit
        intensity, with a PUE; checked now, before any training starts.

        >>> CarbonSettings.resolve("DE", pue=1.1).pue.value
        1.1
        """
        settings = resolve_settings(
            region, intensity=intensity, intensity_source=intensity_source, pue=pue
        )
        if settings is None:
            raise ValueError(
                "carbon settings need a region (e.g. 'DE', 'US-CA', 'aws:eu-west-1') or an "
                "intensity in gCO2e/kWh"
            )
        return settings

    def to_dict(self) -> dict[str, Any]:
        """What ``meta.json`` records under ``carbon`` (read back by
        :func:`settings_from_meta`)."""
        return {
            "intensity": self.intensity.to_dict(),
            "pue": self.pue.to_dict(),
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
    never geolocates). A PUE without a region or an intensity is refused rather than dropped
    (it would apply to nothing). Errors name the problem and the fix before any training
    starts.

    >>> resolve_settings(pue=1.2)
    Traceback (most recent call last):
    ...
    ValueError: a PUE (1.2) was given without a region or an intensity, so there is no CO2e \
for it to apply to: give the grid too (--region DE, or region='DE'), or leave the PUE out
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
            resolve_pue(pue)  # a bad PUE is named as such first
            raise ValueError(
                f"a PUE ({pue}) was given without a region or an intensity, so there is no "
                "CO2e for it to apply to: give the grid too (--region DE, or region='DE'), "
                "or leave the PUE out"
            )
        return None
    return CarbonSettings(grid, resolve_pue(pue, grid), how)


def carbon_arguments(
    *,
    region: str | None = None,
    pue: float | str | None = None,
    intensity: float | None = None,
    intensity_source: str | None = None,
    carbon: CarbonSettings | dict[str, Any] | None = None,
) -> CarbonSettings | None:
    """The carbon settings of every entry point (``track``, the Lightning and Transformers
    callbacks, the Flower strategy, ``greentrack run``), from the same arguments: ``region=``
    (``"DE"``, ``"aws:eu-west-1"``, ``"auto"``) or ``intensity=`` (gCO2e/kWh, with
    ``intensity_source=``), ``pue=``; or ``carbon=`` (a :class:`CarbonSettings`, or the dict
    that ``meta.json`` records) instead of them. Checked now, before training starts.

    >>> carbon_arguments(region="DE", pue=1.2).pue.value
    1.2
    >>> carbon_arguments() is None
    True
    """
    if carbon is None:
        return resolve_settings(
            region, intensity=intensity, intensity_source=intensity_source, pue=pue
        )
    given = [
        name
        for name, value in (
            ("region", region),
            ("pue", pue),
            ("intensity", intensity),
            ("intensity_source", intensity_source),
        )
        if value is not None
    ]
    if given:
        raise ValueError(
            f"pass carbon=CarbonSettings.resolve(...) or {', '.join(n + '=' for n in given)}, "
            "not both "
            "(carbon= already holds the region, intensity and PUE)"
        )
    if isinstance(carbon, dict):  # restored from a checkpoint or a meta.json
        try:
            carbon = _settings_from_block(carbon)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(
                f"carbon={{...}} is not the carbon block greentrack records ({type(e).__name__}: "
                f"{e}); pass CarbonSettings.resolve('DE', pue=1.1) or region=/pue= instead"
            ) from None
    if not isinstance(carbon, CarbonSettings):
        raise TypeError(
            "carbon takes greentrack.CarbonSettings (CarbonSettings.resolve('DE', pue=1.1)), or "
            f"pass region='DE', pue=1.1 instead; got {type(carbon).__name__}"
        )
    value = carbon.intensity.gco2e_per_kwh
    if not (math.isfinite(value) and 0 <= value <= MAX_GCO2E_PER_KWH):
        raise ValueError(
            f"carbon= holds an intensity of {value!r} gCO2e/kWh, not a number from 0 to "
            f"{num(MAX_GCO2E_PER_KWH, 6)}: build it with CarbonSettings.resolve(...)"
        )
    validate_pue(carbon.pue.value)
    return carbon


def settings_from_meta(meta: dict[str, Any]) -> CarbonSettings | None:
    """The settings a run recorded at its start (reproducible even if tables change)."""
    carbon = meta.get("carbon")
    if not carbon:
        return None
    try:
        return _settings_from_block(carbon)
    except (KeyError, TypeError, ValueError) as e:
        from greentrack.errors import RunFormatError

        raise RunFormatError(
            f"the carbon block of meta.json is damaged ({type(e).__name__}: {e}); charge the run "
            "explicitly instead (--region REGION, e.g. --region DE)"
        ) from e


def _settings_from_block(carbon: dict[str, Any]) -> CarbonSettings:
    from greentrack.carbon.intensity import Source

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
