"""Device power profiles: modelled client energy where a client cannot measure.

A profile gives the power of a device while it computes and while its radio sends or
receives. The client mod then models a client's energy as ``compute_w x handler time +
radio_tx_w x upload time + radio_rx_w x download time``, with transfer times from the message
sizes and the link rates you give (``bytes x 8 / rate``). The Green FL paper built its phone
profiles the same way, from Android's ``power_profile.xml`` currents and the logged compute,
download and upload durations.

Bundled profiles (``data/device_profiles.csv``, each with its source): a phone (OnePlus 7 Pro,
from its ``power_profile.xml``), a laptop CPU (Core i7-1165G7 at its TDP) and an edge GPU
(Jetson Orin Nano at 15 W). Use :func:`from_power_profile_xml` for your own phone.
A modelled figure is an estimate: it is labelled so everywhere.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from greentrack.numbers import num

NOMINAL_LI_ION_V = (
    3.85  # nominal voltage of a phone's lithium-ion cell (power_profile.xml has currents only)
)


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """Power of a device in watts while computing and while its radio transmits/receives
    (``None``: the radio is not modelled)."""

    key: str
    name: str
    compute_w: float
    radio_tx_w: float | None
    radio_rx_w: float | None
    basis: str
    source: str

    def __post_init__(self) -> None:
        for label, value in (
            ("compute_w", self.compute_w),
            ("radio_tx_w", self.radio_tx_w),
            ("radio_rx_w", self.radio_rx_w),
        ):
            if value is not None and not value >= 0:
                raise ValueError(f"profile {self.key!r}: {label} must be >= 0 watts, got {value}")

    def energy_j(
        self,
        compute_s: float,
        upload_bytes: int = 0,
        download_bytes: int = 0,
        *,
        uplink_mbps: float | None = None,
        downlink_mbps: float | None = None,
    ) -> tuple[float, float]:
        """(compute joules, radio joules). Radio energy needs the link rates and a radio
        profile; without them it is 0 and the network is left to the kWh/GB coefficient.

        >>> p = DeviceProfile("x", "x", 5.0, 1.0, 0.5, "", "")
        >>> p.energy_j(10.0, 1_000_000, 2_000_000, uplink_mbps=8.0, downlink_mbps=16.0)
        (50.0, 1.5)
        """
        radio = 0.0
        if self.radio_tx_w is not None and uplink_mbps:
            radio += self.radio_tx_w * upload_bytes * 8 / (uplink_mbps * 1e6)
        if self.radio_rx_w is not None and downlink_mbps:
            radio += self.radio_rx_w * download_bytes * 8 / (downlink_mbps * 1e6)
        return self.compute_w * compute_s, radio


@lru_cache(maxsize=1)
def profiles() -> dict[str, DeviceProfile]:
    """The bundled profiles by key."""
    path = resources.files("greentrack.meters").joinpath("data/device_profiles.csv")
    with path.open(encoding="utf-8") as f:
        return {
            r["key"]: DeviceProfile(
                r["key"],
                r["name"],
                float(r["compute_w"]),
                float(r["radio_tx_w"]) if r["radio_tx_w"] else None,
                float(r["radio_rx_w"]) if r["radio_rx_w"] else None,
                r["basis"],
                f"{r['source']} ({r['licence']})",
            )
            for r in csv.DictReader(f)
        }


def profile(value: str | DeviceProfile) -> DeviceProfile:
    """A bundled profile by key (or a profile, returned as is)."""
    if isinstance(value, DeviceProfile):
        return value
    table = profiles()
    if value not in table:
        raise ValueError(
            f"unknown device profile {value!r}; bundled: {', '.join(table)}. Build one with "
            "DeviceProfile(...) or from_power_profile_xml(path)"
        )
    return table[value]


def from_power_profile_xml(
    path: str | Path, *, key: str | None = None, voltage_v: float = NOMINAL_LI_ION_V
) -> DeviceProfile:
    """A profile from an Android ``power_profile.xml`` (currents in mA).

    Compute: ``cpu.active`` (or ``cpu.awake``) + each cluster's ``cpu.cluster_power`` + its
    cores x the core current at the top frequency: every core busy at its highest speed, an
    upper bound for on-device training. Radio: ``wifi.controller.tx``/``rx`` at
    ``wifi.controller.voltage`` when the file has them, else ``wifi.active`` both ways.
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise ValueError(f"cannot read {path} as an Android power_profile.xml: {e}") from e
    items = {el.get("name", ""): float(el.text or 0) for el in root.iter("item")}
    arrays = {
        el.get("name", ""): [float(v.text or 0) for v in el.iter("value")]
        for el in root.iter("array")
    }
    cores = arrays.get("cpu.clusters.cores")
    if not cores:
        raise ValueError(f"{path} has no cpu.clusters.cores array: not a power_profile.xml?")
    current_ma = items.get("cpu.active", items.get("cpu.awake", 0.0))
    for i, n in enumerate(cores):
        powers = arrays.get(f"cpu.core_power.cluster{i}")
        if not powers:
            raise ValueError(f"{path} has no cpu.core_power.cluster{i} array")
        current_ma += items.get(f"cpu.cluster_power.cluster{i}", 0.0) + n * powers[-1]
    tx: float | None
    rx: float | None
    if items.get("wifi.controller.tx"):
        wifi_v = items.get("wifi.controller.voltage", 0.0) / 1000.0 or voltage_v
        tx = items["wifi.controller.tx"] * wifi_v / 1000.0
        rx = items.get("wifi.controller.rx", 0.0) * wifi_v / 1000.0
    elif items.get("wifi.active"):
        tx = rx = items["wifi.active"] * voltage_v / 1000.0
    else:
        tx = rx = None
    return DeviceProfile(
        key or path.stem,
        f"{path.name}, all cores at top frequency",
        current_ma * voltage_v / 1000.0,
        tx,
        rx,
        f"{num(current_ma, 6)} mA x {num(voltage_v, 6)} V",
        str(path),
    )
