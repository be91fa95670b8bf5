"""Embodied carbon: the run's share of its GPUs' manufacturing emissions (optional, off by
default, always reported apart from the operational CO2e).

    embodied_g = (kgCO2e per device x 1000) x GPU device-seconds / lifetime_s

GPU device-seconds are each GPU's own time within the processes that measured it
(``RunAccount.gpu_s``): a job resumed on another GPU counts each GPU's hour, not both GPUs
for the whole job (:func:`embodied_of`). The device is taken as the run's alone while the
run uses it (time share of its lifetime); idle time in the device's life is not spread over
the runs, which understates the share on an underused cluster. Per-device figures are cited
presets; the lifetime is the user's (4 years by default, a stated assumption).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greentrack.account.figures import Figure

if TYPE_CHECKING:
    from greentrack.account.build import RunAccount

SECONDS_PER_YEAR = 365.25 * 86400
DEFAULT_LIFETIME_YEARS = 4.0


@dataclass(frozen=True)
class EmbodiedPreset:
    """Manufacturing emissions of one device, what they cover, and their source."""

    key: str
    kg_co2e: float  # per device
    covers: str
    source: str
    low: float  # range factors on kg_co2e
    high: float
    range_basis: str


PRESETS: dict[str, EmbodiedPreset] = {
    p.key: p
    for p in (
        EmbodiedPreset(
            "a100-server-share",
            318.0,
            "one A100's 1/8 share of an 8-GPU cloud instance (GPU, CPU, DRAM, storage, "
            "IC packaging)",
            "Chien et al. (2023), Reducing the Carbon Impact of Generative AI Inference "
            "(today and in 2035), HotCarbon '23",
            0.5,
            1.5,
            "greentrack's stated assumption (the source gives no uncertainty)",
        ),
        EmbodiedPreset(
            "gpu-card",
            60.0,
            "a high-end GPU card alone (no share of the server)",
            "EcoInfo (CNRS), Ecodiag GPU factor, 4-year life",
            0.15,
            1.85,
            "the source's one-sigma uncertainty (60 % LCA, 60 % across GPUs: 85 %)",
        ),
    )
}
DEFAULT_PRESET = "a100-server-share"


@dataclass(frozen=True)
class Embodied:
    """A run's share of its GPUs' embodied carbon (grams CO2e, with its range)."""

    co2e_g: Figure
    gpus: int
    duration_s: float
    lifetime_years: float
    preset: EmbodiedPreset
    device_s: float = 0.0  # GPU device-seconds charged

    @property
    def gpu_hours(self) -> float:
        return self.device_s / 3600.0

    def to_dict(self) -> dict[str, Any]:
        p = self.preset
        return {
            "co2e_g": self.co2e_g.value,
            "co2e_g_low": self.co2e_g.low,
            "co2e_g_high": self.co2e_g.high,
            "gpus": self.gpus,
            "gpu_hours": self.gpu_hours,
            "lifetime_years": self.lifetime_years,
            "kg_co2e_per_device": p.kg_co2e,
            "preset": p.key,
            "covers": p.covers,
            "source": p.source,
            "range_basis": p.range_basis,
            "provenance": "estimated",
        }


def preset(key: str) -> EmbodiedPreset:
    """A preset by key; the error lists them."""
    if key not in PRESETS:
        raise ValueError(f"unknown embodied-carbon preset {key!r}; known: {', '.join(PRESETS)}")
    return PRESETS[key]


def embodied(
    gpus: int,
    duration_s: float,
    key: str = DEFAULT_PRESET,
    lifetime_years: float | None = None,
    *,
    device_s: float | None = None,
) -> Embodied | None:
    """The run's share of its ``gpus``' embodied carbon: over ``device_s`` GPU
    device-seconds when given (what the GPUs were used), else ``gpus`` x ``duration_s``;
    ``None`` without a GPU (CPU servers' embodied carbon is not estimated)."""
    years = DEFAULT_LIFETIME_YEARS if lifetime_years is None else float(lifetime_years)
    if not 0 < years <= 30:
        raise ValueError(f"device lifetime must be in (0, 30] years, got {years:g}")
    p = preset(key)
    used_s = gpus * max(duration_s, 0.0) if device_s is None else max(device_s, 0.0)
    if gpus <= 0 or (device_s is not None and used_s <= 0):
        return None
    grams = p.kg_co2e * 1000.0 * used_s / (years * SECONDS_PER_YEAR)
    return Embodied(Figure.relative(grams, p.low, p.high), gpus, duration_s, years, p, used_s)


def embodied_of(
    account: RunAccount, key: str = DEFAULT_PRESET, lifetime_years: float | None = None
) -> Embodied | None:
    """A run's share of its GPUs' embodied carbon from its account: the GPU device-seconds
    it actually used (``account.gpu_s``); ``None`` without a GPU."""
    gpus = account.gpu_devices
    return embodied(gpus, account.duration_s, key, lifetime_years, device_s=account.gpu_s)
