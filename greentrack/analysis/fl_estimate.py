"""Before a federated run: predict its energy and CO2e by part (Green FL RQ4).

Green FL fits ``CO2e ~ k x rounds x clients per round`` for synchronous FL, with ``k`` taken
from measured runs. This estimator keeps that shape but separates the parts, each with its
own driver, so that changing one lever moves only what it should:

* client compute = rounds x clients x (local epochs x samples x ``j_per_sample_epoch``
  + ``eval_j_per_client`` when clients evaluate);
* upload = rounds x clients x (``upload_bytes_per_client``) x upload kWh/GB;
* download = rounds x clients x (``download_bytes_per_client``) x download kWh/GB;
* server = rounds x clients x ``server_j_per_client_round`` (aggregation work grows with the
  replies it aggregates).

The per-unit figures come either from your assumptions (client power x time per epoch, model
size) or, better, from a short measured run of the same task: :func:`calibrate` reads a server
run directory written by :class:`~greentrack.integrations.flower.EmissionsStrategy` (client
energy per reply and the samples each reply reports, bytes per message, server energy per
round). CO2e applies the server's PUE and intensity to the server, and the clients' (a mix
of regions, weighted by share of clients) to client compute and the network.

The range: network over every bundled kWh/GB coefficient, and client compute over the
spread of the calibration run's per-reply energy per sample (min to max), or +-50% for an
uncalibrated assumption. It is a range of plausible outcomes, not a statistical interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from greentrack.account.charge import co2e_g
from greentrack.carbon.intensity import resolve_region
from greentrack.carbon.network import coefficient, coefficients, network_kwh
from greentrack.numbers import DATA, duration, num, quantity
from greentrack.units import G_PER_KG, J_PER_KWH

if TYPE_CHECKING:
    from greentrack.rundir.reader import Run

UNCALIBRATED_SPREAD = 0.5


@dataclass(frozen=True)
class FlUnits:
    """Per-unit costs of one federated task (from assumptions or :func:`calibrate`)."""

    j_per_sample_epoch: float
    eval_j_per_client: float
    upload_bytes_per_client: float
    download_bytes_per_client: float
    server_j_per_client_round: float
    first_round_extra_j_per_client: float = 0.0
    first_round_extra_server_j: float = 0.0
    spread: tuple[float, float] = (1 - UNCALIBRATED_SPREAD, 1 + UNCALIBRATED_SPREAD)
    source: str = "assumptions"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlSetup:
    """The run to predict."""

    rounds: int
    clients_per_round: int
    local_epochs: float
    samples_per_client: float
    evaluate: bool = True

    def __post_init__(self) -> None:
        for name in ("rounds", "clients_per_round", "local_epochs", "samples_per_client"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class FlEstimate:
    setup: FlSetup
    units: FlUnits
    parts_kwh: dict[str, float]
    low_kwh: float
    high_kwh: float
    co2e_g: float | None
    co2e_low_g: float | None
    co2e_high_g: float | None
    server_g_per_kwh: float | None
    client_g_per_kwh: float | None
    assumptions: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # region, pue, network... as given

    @property
    def total_kwh(self) -> float:
        return sum(self.parts_kwh.values())

    def shares(self) -> dict[str, float]:
        total = self.total_kwh or 1.0
        return {k: v / total for k, v in self.parts_kwh.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated": True,
            "setup": asdict(self.setup),
            "units": {**asdict(self.units), "spread": list(self.units.spread)},
            "parts_kwh": self.parts_kwh,
            "shares": self.shares(),
            "energy_kwh": self.total_kwh,
            "energy_kwh_low": self.low_kwh,
            "energy_kwh_high": self.high_kwh,
            "co2e_kg": None if self.co2e_g is None else self.co2e_g / G_PER_KG,
            "co2e_kg_low": None if self.co2e_low_g is None else self.co2e_low_g / G_PER_KG,
            "co2e_kg_high": None if self.co2e_high_g is None else self.co2e_high_g / G_PER_KG,
            "assumptions": self.assumptions,
        }


def units_from_assumptions(
    *,
    client_power_w: float,
    seconds_per_epoch: float,
    samples_per_client: float,
    model_bytes: float,
    eval_seconds: float = 0.0,
    server_j_per_client_round: float = 0.0,
) -> FlUnits:
    """Per-unit costs from a client's power, its time per local epoch and the model size
    (download = upload = the model, per client and round)."""
    for name, value in (
        ("client_power_w", client_power_w),
        ("seconds_per_epoch", seconds_per_epoch),
        ("samples_per_client", samples_per_client),
        ("model_bytes", model_bytes),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    return FlUnits(
        j_per_sample_epoch=client_power_w * seconds_per_epoch / samples_per_client,
        eval_j_per_client=client_power_w * eval_seconds,
        upload_bytes_per_client=model_bytes,
        download_bytes_per_client=model_bytes,
        server_j_per_client_round=server_j_per_client_round,
        notes=(
            f"client {num(client_power_w, 4)} W x {duration(seconds_per_epoch, 4)} per local "
            f"epoch over {num(samples_per_client, 6)} samples; model {quantity(model_bytes, DATA)} "
            "each way",
        ),
    )


def calibrate(run: Run, *, local_epochs: float) -> FlUnits:
    """Per-unit costs measured in a (short) run of the same task. ``local_epochs`` is what
    that run used (the server does not see it).

    Raises:
        ValueError: not a Flower server run, or its train replies carry no energy or no
            ``num-examples``.
    """
    rows = [r for r in run.fl_records if not r.get("error")]
    if not rows:
        raise ValueError(f"{run.path} has no federated replies (fl.jsonl): not a Flower server run")
    train = [r for r in rows if r["phase"] == "train" and _client_j(r) is not None]
    if not train:
        raise ValueError(f"{run.path}: no train reply carries client energy (was energy_mod on?)")
    if not all(r.get("num_examples") for r in train):
        raise ValueError(
            f"{run.path}: train replies carry no num-examples; calibrate from a run recorded "
            "by greentrack >= 0.1 whose clients report num-examples (FedAvg needs it anyway)"
        )
    rounds = sorted({r["round"] for r in rows})
    # the first round carries one-off costs (imports, JIT, allocator, worker start-up): with
    # two or more rounds, unit costs come from the later rounds and the first round's excess
    # is kept apart, charged once per client (and once to the server) in a prediction
    steady = [r for r in train if r["round"] != rounds[0]] if len(rounds) > 1 else train
    first = [r for r in train if r["round"] == rounds[0]] if len(rounds) > 1 else []
    per_sample = [(_client_j(r) or 0.0) / (r["num_examples"] * local_epochs) for r in steady]
    mean = statistics.fmean(per_sample)
    extra_client = 0.0
    if first:
        first_per_sample = statistics.fmean(
            (_client_j(r) or 0.0) / (r["num_examples"] * local_epochs) for r in first
        )
        samples = statistics.fmean(r["num_examples"] for r in first)
        extra_client = max(0.0, (first_per_sample - mean) * samples * local_epochs)
    evals = [
        _client_j(r) or 0.0
        for r in rows
        if r["phase"] == "evaluate" and _client_j(r) and (r["round"] != rounds[0] or not first)
    ]
    from greentrack.account import account_run

    # the server's part of each round as the account counts it (net of what clients on its
    # own host measured: a machine is counted once)
    federated = account_run(run).federated or {}
    server_by_round = {
        int(r["round"]): r["server_kwh"] * J_PER_KWH for r in federated.get("per_round", [])
    }
    clients_in = {k: len({r["node_id"] for r in train if r["round"] == k}) for k in rounds}
    later = [k for k in rounds if k != rounds[0]] or rounds
    server_steady = sum(server_by_round.get(k, 0.0) for k in later) / max(
        1, sum(clients_in[k] for k in later)
    )
    extra_server = 0.0
    if first:
        k0 = rounds[0]
        extra_server = max(0.0, server_by_round.get(k0, 0.0) - server_steady * clients_in[k0])
    clients_rounds = sum(clients_in.values())
    down = [r["download_bytes"] for r in rows if r.get("download_bytes")]
    up = [r["upload_bytes"] for r in rows if r.get("upload_bytes")]
    per_client_round = len(rows) / clients_rounds  # messages per client and round
    return FlUnits(
        j_per_sample_epoch=mean,
        eval_j_per_client=statistics.fmean(evals) if evals else 0.0,
        upload_bytes_per_client=statistics.fmean(up) * per_client_round if up else 0.0,
        download_bytes_per_client=statistics.fmean(down) * per_client_round if down else 0.0,
        server_j_per_client_round=server_steady,
        first_round_extra_j_per_client=extra_client,
        first_round_extra_server_j=extra_server,
        spread=(min(per_sample) / mean, max(per_sample) / mean) if mean > 0 else (1.0, 1.0),
        source=f"calibrated on {run.path} ({len(rounds)} rounds, {len(train)} train replies)",
        notes=(
            "server energy per client and round includes everything the server process did "
            "in its rounds (in simulation, the clients' work on the same machine too)",
            "the first round's one-off costs (start-up, warm-up) are charged once",
        ),
    )


def _client_j(row: Mapping[str, Any]) -> float | None:
    m, e = row.get("client_measured_j"), row.get("client_estimated_j")
    if m is None and e is None:
        return None
    return float(m or 0.0) + float(e or 0.0)


def estimate_fl(
    setup: FlSetup,
    units: FlUnits,
    *,
    network: str | float | None = None,
    upload_network: str | float | None = None,
    download_network: str | float | None = None,
    region: str | None = None,
    pue: float = 1.0,
    client_regions: Mapping[str, float] | None = None,
) -> FlEstimate:
    """Predict the run's energy per part and its CO2e (see the module docstring)."""
    up_c = coefficient(upload_network if upload_network is not None else network)
    down_c = coefficient(download_network if download_network is not None else network)
    n = setup.rounds * setup.clients_per_round
    compute_j = (
        n
        * (
            setup.local_epochs * setup.samples_per_client * units.j_per_sample_epoch
            + (units.eval_j_per_client if setup.evaluate else 0.0)
        )
        + setup.clients_per_round * units.first_round_extra_j_per_client
    )
    up_bytes = n * units.upload_bytes_per_client
    down_bytes = n * units.download_bytes_per_client
    parts = {
        "client_compute": compute_j / J_PER_KWH,
        "upload": network_kwh(int(up_bytes), up_c),
        "download": network_kwh(int(down_bytes), down_c),
        "server": (n * units.server_j_per_client_round + units.first_round_extra_server_j)
        / J_PER_KWH,
    }
    all_coeffs = list(coefficients().values())
    net_lo = min(network_kwh(int(up_bytes + down_bytes), c) for c in all_coeffs)
    net_hi = max(network_kwh(int(up_bytes + down_bytes), c) for c in all_coeffs)
    lo, hi = units.spread
    low = parts["client_compute"] * lo + net_lo + parts["server"]
    high = parts["client_compute"] * hi + net_hi + parts["server"]
    server_i = resolve_region(region).gco2e_per_kwh if region else None
    client_i = _mix(client_regions) if client_regions else server_i
    # clients in their own regions are not in the server's datacentre: no PUE for them
    client_pue = 1.0 if client_regions else pue
    server_g = co2e_g(1.0, pue, server_i) if server_i is not None else None  # g per IT kWh
    client_g = co2e_g(1.0, client_pue, client_i) if client_i is not None else None
    co2 = co2_lo = co2_hi = None
    if server_i is not None and client_i is not None:
        net = parts["upload"] + parts["download"]

        def charged(client_kwh: float, server_kwh: float) -> float:
            return co2e_g(client_kwh, client_pue, client_i) + co2e_g(server_kwh, pue, server_i)

        co2 = charged(parts["client_compute"] + net, parts["server"])
        co2_lo = charged(parts["client_compute"] * lo + net_lo, parts["server"])
        co2_hi = charged(parts["client_compute"] * hi + net_hi, parts["server"])
    assumptions = [
        f"per-unit costs: {units.source}",
        *units.notes,
        f"network: upload {num(up_c.kwh_per_gb, 4)} kWh/GB ({up_c.key}), download "
        f"{num(down_c.kwh_per_gb, 4)} kWh/GB ({down_c.key}); range over all bundled coefficients",
        "client compute scales with rounds x clients x local epochs x samples; the range "
        f"spans x{lo:.2f} to x{hi:.2f} of it",
    ]
    if client_regions:
        mix = ", ".join(f"{region} {share:.0%}" for region, share in client_regions.items())
        assumptions.append(f"clients' grids: {mix} of the clients")
    settings = {
        "network": network,
        "upload_network": upload_network,
        "download_network": download_network,
        "region": region,
        "pue": pue,
        "client_regions": dict(client_regions) if client_regions else None,
    }
    return FlEstimate(
        setup,
        units,
        parts,
        low,
        high,
        co2,
        co2_lo,
        co2_hi,
        server_g,
        client_g,
        assumptions,
        settings,
    )


def _mix(shares: Mapping[str, float]) -> float:
    """Share-weighted intensity (gCO2e/kWh) of the clients' regions; shares are normalised."""
    total = sum(shares.values())
    if not total > 0 or any(v < 0 for v in shares.values()):
        raise ValueError(f"client region shares must be >= 0 and not all 0, got {dict(shares)}")
    return sum(resolve_region(k).gco2e_per_kwh * v / total for k, v in shares.items())


@dataclass(frozen=True)
class FlSensitivityRow:
    lever: str
    setting: str
    energy_kwh: float
    co2e_g: float | None
    factor_vs_base: float


def sensitivity_fl(
    base: FlEstimate, *, regions: Sequence[str] = ("SE", "FR", "DE", "US", "PL", "IN")
) -> list[FlSensitivityRow]:
    """How the estimate moves with the levers: clients per round, local epochs, the clients'
    region and the network coefficient, each changed alone from ``base``'s settings. The
    factor compares CO2e when there is one, else energy."""
    rows = []

    def add(lever: str, setting: str, e: FlEstimate) -> None:
        ref = base.co2e_g if base.co2e_g else base.total_kwh
        val = e.co2e_g if base.co2e_g else e.total_kwh
        rows.append(
            FlSensitivityRow(lever, setting, e.total_kwh, e.co2e_g, (val or 0.0) / (ref or 1.0))
        )

    def with_(setup: FlSetup = base.setup, **changes: Any) -> FlEstimate:
        return estimate_fl(setup, base.units, **{**base.settings, **changes})

    for factor in (0.5, 2.0):
        clients = max(1, round(base.setup.clients_per_round * factor))
        add("clients/round", f"{clients}", with_(replace(base.setup, clients_per_round=clients)))
        epochs = base.setup.local_epochs * factor
        add("local epochs", num(epochs, 4), with_(replace(base.setup, local_epochs=epochs)))
    if base.settings.get("region") is not None:
        for key in regions:
            add("client region", key, with_(client_regions={key: 1.0}))
    for c in sorted(coefficients().values(), key=lambda c: c.kwh_per_gb):
        add(
            "network",
            f"{c.key} ({num(c.kwh_per_gb, 4)} kWh/GB)",
            with_(network=c.key, upload_network=None, download_network=None),
        )
    return rows


def prediction_error(predicted: FlEstimate, run: Run) -> dict[str, float]:
    """Relative error of each part and the total against a measured run's breakdown."""
    from greentrack.account import account_run

    federated = account_run(run).federated
    rounds = federated["per_round"] if federated else []
    settings = predicted.settings
    up_c = coefficient(settings.get("upload_network") or settings.get("network"))
    down_c = coefficient(settings.get("download_network") or settings.get("network"))
    measured = {
        "client_compute": sum(r["client_kwh"] for r in rounds),
        # the bytes at the prediction's coefficients, whether or not they crossed a network
        "upload": network_kwh(sum(r["upload_bytes"] for r in rounds), up_c),
        "download": network_kwh(sum(r["download_bytes"] for r in rounds), down_c),
        "server": sum(r["server_kwh"] for r in rounds),  # the rounds, as calibrate() counts
    }
    out = {k: (predicted.parts_kwh[k] - v) / v if v > 0 else math.nan for k, v in measured.items()}
    total = sum(measured.values())
    out["total"] = (predicted.total_kwh - total) / total if total > 0 else math.nan
    return out


__all__ = [
    "FlEstimate",
    "FlSetup",
    "FlUnits",
    "calibrate",
    "estimate_fl",
    "prediction_error",
    "sensitivity_fl",
    "units_from_assumptions",
]
