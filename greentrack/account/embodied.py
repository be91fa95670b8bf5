"""Embodied carbon: the run's share of its GPUs' manufacturing emissions (optional, off by
default, always reported apart from the operational CO2e).

    embodied_g = (kgCO2e per device x 1000) x GPU device-seconds / lifetime_s

GPU device-seconds are each GPU's own time within the processes that measured it
(``RunAccount.gpu_s``): a job resumed on another GPU counts each GPU's hour, not both GPUs
for the whole job (:func:`embodied_of`). The device is taken as the run's alone while the
run uses it (time share of its lifetime); idle time in the device's life is not spread over
the runs, which understates the share on an underused cluster. Per-device figures are cited
presets; the lifetime is the user's (4 years by default, a stated assumption). A preset made
for one device model (the A100 share of a server) charged to another (an H100) carries a
caveat saying so. Declared GPU work (``--untracked``) is charged the same way over its
devices x hours (:func:`embodied_of_work`). Every view reads these figures; none computes its
own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greentrack.account.figures import Figure

if TYPE_CHECKING:
    from greentrack.account.build import RunAccount

SECONDS_PER_YEAR = 365.25 * 86400
DEFAULT_LIFETIME_YEARS = 4.0
NO_GPU = (
    "no GPU was used, and greentrack estimates only GPUs' embodied carbon (a CPU server's is "
    "not estimated)"
)
"""Why ``--embodied`` adds nothing to a run without a GPU (the report says it)."""


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
    device: str | None = None  # the device model the figure is for (None: any GPU card)
    device_token: str | None = None  # how that model's name reads in a GPU's name ("A100")

    def caveat(self, models: tuple[str, ...]) -> str | None:
        """Why the figure may not fit ``models`` (GPU names): it was made for another device
        model; ``None`` when it fits or is meant for any card."""
        if self.device is None or self.device_token is None or not models:
            return None
        other = [m for m in models if self.device_token.lower() not in m.lower()]
        if not other:
            return None
        return (
            f"the figure is the {self.device}'s, charged to {', '.join(other)}: a figure "
            "taken from another device model"
        )


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
            "NVIDIA A100",
            "A100",
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
    models: tuple[str, ...] = ()  # the GPUs' names (a run's, or a declared item's)

    @property
    def gpu_hours(self) -> float:
        return self.device_s / 3600.0

    @property
    def caveat(self) -> str | None:
        """Set when the preset was made for another device model than these GPUs."""
        return self.preset.caveat(self.models)

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
            "device": p.device,
            "models": list(self.models),
            "caveat": self.caveat,
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
    models: tuple[str, ...] = (),
) -> Embodied | None:
    """The run's share of its ``gpus``' embodied carbon: over ``device_s`` GPU
    device-seconds when given (what the GPUs were used), else ``gpus`` x ``duration_s``;
    ``None`` without a GPU (CPU servers' embodied carbon is not estimated)."""
    years = DEFAULT_LIFETIME_YEARS if lifetime_years is None else float(lifetime_years)
    if not 0 < years <= 30:
        raise ValueError(
            f"device lifetime must be in (0, 30] years, got {years:.6g}"  # raw value
        )
    p = preset(key)
    used_s = gpus * max(duration_s, 0.0) if device_s is None else max(device_s, 0.0)
    if gpus <= 0 or (device_s is not None and used_s <= 0):
        return None
    grams = p.kg_co2e * 1000.0 * used_s / (years * SECONDS_PER_YEAR)
    figure = Figure.relative(grams, p.low, p.high)
    return Embodied(figure, gpus, duration_s, years, p, used_s, models)


def embodied_of(
    account: RunAccount, key: str = DEFAULT_PRESET, lifetime_years: float | None = None
) -> Embodied | None:
    """A run's share of its GPUs' embodied carbon from its account: the GPU device-seconds
    it actually used (``account.gpu_s``); ``None`` without a GPU (:data:`NO_GPU` says why)."""
    models = tuple(dict.fromkeys(c.label for c in account.components if c.component == "gpu"))
    return embodied(
        account.gpu_devices,
        account.duration_s,
        key,
        lifetime_years,
        device_s=account.gpu_s,
        models=models,
    )


def embodied_of_work(
    count: int,
    hours: float,
    model: str,
    key: str = DEFAULT_PRESET,
    lifetime_years: float | None = None,
) -> Embodied:
    """The share of declared GPU work (``count`` GPUs named ``model`` for ``hours`` each):
    the same formula over its ``count x hours`` device-hours.

    >>> e = embodied_of_work(8, 40.0, "NVIDIA A100 SXM4 40GB")
    >>> round(e.co2e_g.value), e.gpu_hours, e.caveat
    (2902, 320.0, None)
    >>> print(embodied_of_work(2, 1.0, "NVIDIA H100 SXM5").caveat)  # doctest: +NORMALIZE_WHITESPACE
    the figure is the NVIDIA A100's, charged to NVIDIA H100 SXM5: a figure taken from another
    device model
    """
    out = embodied(
        count,
        hours * 3600.0,
        key,
        lifetime_years,
        device_s=count * hours * 3600.0,
        models=(model,),
    )
    if out is None:
        raise ValueError(f"declared GPU work needs devices and hours, got {count} x {hours} h")
    return out
