"""How accurate each source of a figure is: the relative bounds behind every range.

Each entry is a factor pair (low, high) applied to the figure the source gives, with where
the bound comes from. docs/methodology.md ("Ranges") cites each one and says which are
published accuracies and which are greentrack's stated assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Accuracy:
    """The true value lies in ``[figure x low, figure x high]`` according to ``basis``."""

    low: float
    high: float
    basis: str


NVML = Accuracy(
    0.95,
    1.05,
    "NVML: power readings accurate to +/-5% where NVIDIA specifies it (NVML API reference, "
    "nvmlDeviceGetPowerUsage); the energy counter integrates the same sensor",
)
NVML_AVERAGED = Accuracy(
    0.65,
    1.35,
    "NVML ~1 s averaged power, sampled: Yang et al. (SC24) find that averaged sensors on "
    "A100/H100 see ~25% of the runtime, with energy errors their mitigations cut by 35% on "
    "average",
)
RAPL = Accuracy(
    0.9,
    1.1,
    "RAPL (Linux powercap): an on-chip model that tracks plug power closely since Haswell "
    "(Khan et al. 2018, ACM TOMPECS 3(2)); +/-10% is greentrack's stated bound",
)
CPU_MODEL = Accuracy(
    0.5,
    1.5,
    "CPU utilisation x TDP or per-vCPU power: a model, not a measurement; +/-50% is "
    "greentrack's stated assumption",
)
DRAM_MODEL = Accuracy(
    0.5,
    2.0,
    "DRAM W/GB x installed memory: a contested constant-power model; x0.5 to x2 is "
    "greentrack's stated assumption",
)
PROFILE_MODEL = Accuracy(
    0.5,
    2.0,
    "device profile (phone/laptop/edge power x time): a model of a device not measured; "
    "x0.5 to x2 is greentrack's stated assumption",
)
UNKNOWN_MEASURED = Accuracy(0.9, 1.1, "a measured source greentrack has no accuracy for")
UNKNOWN_ESTIMATED = Accuracy(0.5, 1.5, "an estimate greentrack has no accuracy for")

ENERGY_METHODS: dict[str, Accuracy] = {
    "nvml-total-energy-counter": NVML,
    "integral of nvml-field-power-instant": NVML,
    "integral of nvml-power-usage (~1 s average on recent GPUs)": NVML_AVERAGED,
    "rapl-powercap-energy-counter": RAPL,
    "tdp-x-utilisation": CPU_MODEL,
    "per-vcpu-specpower-coefficients": CPU_MODEL,
    "w-per-gb-x-installed-memory": DRAM_MODEL,
}

ANNUAL_INTENSITY = Accuracy(
    0.85,
    1.15,
    "an annual average applied to the hours of one run: the grid's mix varies by hour and "
    "year (Dodge et al. 2022); +/-15% is greentrack's stated assumption",
)
SERIES_INTENSITY = Accuracy(
    0.95,
    1.05,
    "a time series of the run's own hours: +/-5% for the provider's estimate of each "
    "interval is greentrack's stated assumption",
)
EXPLICIT_INTENSITY = Accuracy(1.0, 1.0, "given by the user, without a range")
PUE_OVERHEAD = (0.5, 1.5)
"""A published PUE (fleet or region) applied to one site: its overhead (PUE - 1) scaled by
these factors; greentrack's stated assumption."""


def energy_accuracy(method: str, provenance: str) -> Accuracy:
    """The accuracy of a channel's energy by its method (and provenance when unknown)."""
    if provenance == "modeled":
        return PROFILE_MODEL
    found = ENERGY_METHODS.get(method)
    if found is not None:
        return found
    return UNKNOWN_MEASURED if provenance == "measured" else UNKNOWN_ESTIMATED


def pue_bounds(pue: float, source: str) -> tuple[float, float]:
    """Low and high PUE for a value from ``source`` (a user's figure or 'not applied' is exact;
    a published preset applies to one site only approximately).

    >>> pue_bounds(1.1, "Google Environmental Report 2024")
    (1.05, 1.15)
    """
    if source in ("given by the user", "not applied"):
        return pue, pue
    over = pue - 1.0
    return round(1.0 + over * PUE_OVERHEAD[0], 6), round(1.0 + over * PUE_OVERHEAD[1], 6)


DECLARED = Accuracy(
    0.5,
    1.5,
    "work declared, not tracked: devices x hours x power (a processor's measured average or "
    "TDP, or the watts given); greentrack's stated assumption for an estimate of that kind",
)
