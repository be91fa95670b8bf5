"""Pre-run estimates of energy and CO2e: the accounting of Patterson et al. 2021.

    energy [kWh] = hours x processors x average power per processor [W] / 1000 x PUE
    CO2e  [kg]   = energy [kWh] x intensity [gCO2e/kWh] / 1000

``hours`` may instead come from a FLOP count: ``hours = FLOPs / (processors x peak FLOP/s x
utilisation) / 3600``, with the utilisation stated by the user (no default: it varies from
a few % to ~60 % between workloads). The average power is, in order of preference, what the
user gives, a measured average (Patterson et al. 2021, Table 3), or the TDP (an upper bound,
labelled as such). Every assumption is listed with the result.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from greentrack.account.charge import co2e_g
from greentrack.carbon.intensity import GridIntensity, explicit_intensity, resolve_region
from greentrack.carbon.pue import Pue, resolve_pue
from greentrack.numbers import Scale, num, quantity
from greentrack.units import G_PER_KG

SENSITIVITY_REGIONS = ("SE", "FR", "US-CA", "DE", "US-TX", "PL", "IN", "ZA")
SENSITIVITY_PUES = ("google", "uptime-2024", "on-premise")
FLOP = Scale(
    "compute",
    (
        ("YFLOP", 1e-24),
        ("ZFLOP", 1e-21),
        ("EFLOP", 1e-18),
        ("PFLOP", 1e-15),
        ("TFLOP", 1e-12),
        ("GFLOP", 1e-9),
        ("MFLOP", 1e-6),
        ("kFLOP", 1e-3),
        ("FLOP", 1.0),
    ),
    "FLOP",
)
"""Floating-point operations with SI prefixes, written by the one formatter (``314 ZFLOP``,
never ``3.14e+23 FLOPs``)."""


@dataclass(frozen=True, slots=True)
class Processor:
    key: str
    name: str
    kind: str
    tdp_w: float | None
    measured_avg_w: float | None
    peak_tflops: float | None
    source: str


@lru_cache(maxsize=1)
def processors() -> dict[str, Processor]:
    """The bundled processor table (``data/processors.csv``)."""
    path = resources.files("greentrack.analysis").joinpath("data/processors.csv")
    out = {}
    with path.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out[r["key"]] = Processor(
                r["key"],
                r["name"],
                r["kind"],
                float(r["tdp_w"]) if r["tdp_w"] else None,
                float(r["measured_avg_w"]) if r["measured_avg_w"] else None,
                float(r["peak_tflops_16bit_dense"]) if r["peak_tflops_16bit_dense"] else None,
                r["source"],
            )
    return out


def processor(key: str) -> Processor:
    """Look up a processor by key (case-insensitive); the error lists close keys."""
    import difflib

    table = processors()
    k = key.strip().lower()
    if k in table:
        return table[k]
    close = [name for name in table if name.startswith(k)]  # "h100" -> the H100 variants
    close += difflib.get_close_matches(k, list(table), n=4, cutoff=0.4)
    close = list(dict.fromkeys(close))[:4]
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise ValueError(
        f"unknown processor {key!r}{hint}. Known: {', '.join(table)}; or give --power-w"
    )


@dataclass(frozen=True)
class Estimate:
    """The result of :func:`estimate`, with every assumption spelled out."""

    count: int
    hours: float
    power_w_per_processor: float
    power_basis: str
    energy_kwh_it: float
    pue: float
    pue_source: str
    energy_kwh: float
    gco2e_per_kwh: float | None
    intensity_source: str | None
    co2e_kg: float | None
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _power(power_w: float | None, proc: Processor | None) -> tuple[float, str]:
    if power_w is not None:
        if power_w <= 0:
            raise ValueError(f"--power-w must be positive watts per processor, got {power_w}")
        return power_w, "given: average power per processor"
    if proc is None:
        raise ValueError("give the average power per processor (--power-w W) or a --processor")
    if proc.measured_avg_w is not None:
        return (
            proc.measured_avg_w,
            f"measured average of {proc.name} (Patterson et al. 2021, Table 3)",
        )
    if proc.tdp_w is not None:
        return proc.tdp_w, f"TDP of {proc.name} ({proc.source}): an upper bound on average power"
    raise ValueError(f"no power figure for {proc.name}; give --power-w")


def estimate(
    *,
    count: int,
    hours: float | None = None,
    power_w: float | None = None,
    processor_key: str | None = None,
    flops: float | None = None,
    utilization: float | None = None,
    pue: float | str | None = None,
    region: str | None = None,
    intensity: float | None = None,
    intensity_source: str | None = None,
) -> Estimate:
    """Energy and CO2e of a planned training run (see the module docstring)."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"--count must be a positive number of processors, got {count!r}")
    proc = processor(processor_key) if processor_key else None
    watts, basis = _power(power_w, proc)
    assumptions = [f"average power {num(watts, 4)} W per processor: {basis}"]
    if (hours is None) == (flops is None):
        raise ValueError("give exactly one of --hours or --flops (with --utilization)")
    if flops is not None:
        if proc is None or proc.peak_tflops is None:
            raise ValueError("--flops needs a --processor with a known peak throughput")
        if utilization is None or not 0 < utilization <= 1:
            raise ValueError(
                "--flops needs --utilization, the fraction of peak throughput achieved (0-1], "
                "e.g. 0.4; it varies widely between workloads, so greentrack does not assume one"
            )
        hours = flops / (count * proc.peak_tflops * 1e12 * utilization) / 3600.0
        assumptions.append(
            f"{num(hours, 4)} h = {quantity(flops, FLOP)} / ({count} x "
            f"{num(proc.peak_tflops, 4)} TFLOP/s peak x {num(utilization, 4)} utilisation)"
        )
    assert hours is not None
    if hours <= 0:
        raise ValueError(f"--hours must be positive, got {hours}")
    grid: GridIntensity | None = None
    if intensity is not None and region is not None:
        raise ValueError("give --region or --intensity, not both")
    if intensity is not None:
        grid = explicit_intensity(intensity, intensity_source or "given on the command line")
    elif region is not None:
        grid = resolve_region(region)
    chosen_pue: Pue = resolve_pue(pue, grid)
    energy_it = hours * count * watts / 1000.0
    energy = energy_it * chosen_pue.value
    assumptions.append(f"PUE {num(chosen_pue.value, 4)} ({chosen_pue.source})")
    co2e = None
    if grid is not None:
        co2e = co2e_g(energy_it, chosen_pue.value, grid.gco2e_per_kwh) / G_PER_KG
        assumptions.append(
            f"intensity {num(grid.gco2e_per_kwh, 4)} gCO2e/kWh ({grid.region}: {grid.source.cite()}"
            + (f", {grid.year}" if grid.year else "")
            + ")"
        )
    else:
        assumptions.append("no region or intensity: energy only")
    return Estimate(
        count,
        hours,
        watts,
        basis,
        energy_it,
        chosen_pue.value,
        chosen_pue.source,
        energy,
        grid.gco2e_per_kwh if grid else None,
        grid.source.cite() if grid else None,
        co2e,
        assumptions,
    )


@dataclass(frozen=True, slots=True)
class SensitivityRow:
    lever: str
    setting: str
    energy_kwh: float
    co2e_kg: float | None
    factor_vs_base: float | None


def sensitivity(
    base: Estimate, *, flops: float | None = None, utilization: float | None = None
) -> list[SensitivityRow]:
    """How the estimate moves with the levers Patterson et al. name: location (grid),
    datacentre (PUE) and, for FLOP-driven estimates, the accelerator."""
    rows: list[SensitivityRow] = []
    ref = base.co2e_kg if base.co2e_kg else base.energy_kwh

    def row(lever: str, setting: str, energy: float, gco2e: float | None) -> None:
        # ``energy`` is facility energy (PUE applied): charge it at PUE 1
        co2e = co2e_g(energy, 1.0, gco2e) / G_PER_KG if gco2e is not None else None
        value = co2e if base.co2e_kg else energy
        rows.append(
            SensitivityRow(
                lever, setting, energy, co2e, value / ref if value is not None and ref else None
            )
        )

    for key in SENSITIVITY_REGIONS:
        g = resolve_region(key)
        row("region", f"{key} ({g.gco2e_per_kwh:.0f} g/kWh)", base.energy_kwh, g.gco2e_per_kwh)
    for key in SENSITIVITY_PUES:
        p = resolve_pue(key)
        row("PUE", f"{key} ({num(p.value, 4)})", base.energy_kwh_it * p.value, base.gco2e_per_kwh)
    if flops is not None and utilization is not None:
        for proc in processors().values():
            watts = proc.measured_avg_w or proc.tdp_w
            if proc.peak_tflops is None or watts is None:
                continue
            hours = flops / (base.count * proc.peak_tflops * 1e12 * utilization) / 3600.0
            row(
                "accelerator",
                f"{proc.key} ({num(watts, 4)} W, {num(proc.peak_tflops, 4)} TFLOP/s)",
                hours * base.count * watts / 1000.0 * base.pue,
                base.gco2e_per_kwh,
            )
    return rows
