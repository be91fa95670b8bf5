"""The Green FL breakdown of a federated run: client compute, upload, download, server.

From the server's run directory (written by
:class:`greentrack.integrations.flower.EmissionsStrategy`): ``fl.jsonl`` gives each client's
bytes per direction and its measured (or estimated) energy per round; the server's own
channels give server energy. Network energy is bytes x a kWh/GB coefficient
(:mod:`greentrack.carbon.network`), reported under every published coefficient as a range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greentrack.carbon.network import NetworkCoefficient, coefficient, network_kwh, network_range

if TYPE_CHECKING:
    from greentrack.run import Run

FL_FILE = "fl.jsonl"


@dataclass(frozen=True)
class FlBreakdown:
    """Energy of a federated run by part, in kWh (before PUE), with its sources."""

    rounds: int
    client_replies: int
    unmeasured_replies: int
    client_measured_kwh: float
    client_estimated_kwh: float
    upload_bytes: int
    download_bytes: int
    upload_kwh: float
    download_kwh: float
    server_kwh: float
    network: str
    network_range_kwh: tuple[float, float]
    notes: list[str] = field(default_factory=list)

    @property
    def total_kwh(self) -> float:
        return (
            self.client_measured_kwh
            + self.client_estimated_kwh
            + self.upload_kwh
            + self.download_kwh
            + self.server_kwh
        )

    def shares(self) -> dict[str, float]:
        """Fraction of the total per part (the Green FL paper's breakdown)."""
        total = self.total_kwh or 1.0
        return {
            "client_compute": (self.client_measured_kwh + self.client_estimated_kwh) / total,
            "upload": self.upload_kwh / total,
            "download": self.download_kwh / total,
            "server": self.server_kwh / total,
        }

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["total_kwh"] = self.total_kwh
        out["shares"] = self.shares()
        return out


def _coefficients(
    run: Run, network: NetworkCoefficient | None
) -> tuple[NetworkCoefficient, NetworkCoefficient]:
    """Upload and download coefficients: the one given, else those the server recorded."""
    if network is not None:
        return network, network
    recorded = (run.meta.get("fl") or {}).get("network") or {}
    out = []
    for direction in ("upload", "download"):
        c = recorded.get(direction)
        out.append(NetworkCoefficient(**c) if c else coefficient())
    return out[0], out[1]


def _describe(up: NetworkCoefficient, down: NetworkCoefficient) -> str:
    if up == down:
        return f"{up.kwh_per_gb:g} kWh/GB ({up.key})"
    return (
        f"upload {up.kwh_per_gb:g} kWh/GB ({up.key}), "
        f"download {down.kwh_per_gb:g} kWh/GB ({down.key})"
    )


def fl_records(run: Run) -> list[dict[str, Any]]:
    path = run.path / FL_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash
    return rows


def breakdown(
    run: Run, network: NetworkCoefficient | None = None, *, include_server: bool = True
) -> FlBreakdown:
    """The breakdown of ``run`` (a server run directory with ``fl.jsonl``).

    ``include_server=False`` leaves the server at 0 (used inside the run's own summary, which
    reports the server's channels itself)."""
    rows = fl_records(run)
    if not rows:
        raise ValueError(f"{run.path} has no {FL_FILE}: it is not a Flower server run")
    up_coeff, down_coeff = _coefficients(run, network)
    up = sum(int(r.get("upload_bytes") or 0) for r in rows)
    down = sum(int(r.get("download_bytes") or 0) for r in rows)
    measured = sum(float(r.get("client_measured_j") or 0.0) for r in rows) / 3.6e6
    estimated = sum(float(r.get("client_estimated_j") or 0.0) for r in rows) / 3.6e6
    unmeasured = sum(1 for r in rows if r.get("client_measured_j") is None and not r.get("error"))
    server = 0.0
    if include_server:
        summary = run.summary()
        server = (summary.measured_energy_j + summary.estimated_energy_j) / 3.6e6
    spread = [kwh for _, kwh in network_range(up + down)]
    notes = []
    modeled = sum(1 for r in rows if r.get("client_basis") == "modeled")
    if modeled:
        methods = sorted(
            {str(r["client_methods"]) for r in rows if r.get("client_basis") == "modeled"}
        )
        notes.append(
            f"{modeled} client replies were modeled from a device profile "
            f"({', '.join(methods)}), not measured"
        )
    shared = sum(1 for r in rows if r.get("attribution"))
    if shared:
        notes.append(
            f"{shared} client replies shared a GPU with concurrent clients: its measured "
            "energy is split among them by time windows (their sum is the GPU's energy)"
        )
    if unmeasured:
        notes.append(
            f"{unmeasured} client replies carried no energy record (no energy_mod, or "
            "the client could not measure): their compute is not counted"
        )
    return FlBreakdown(
        rounds=len({r["round"] for r in rows}),
        client_replies=len(rows),
        unmeasured_replies=unmeasured,
        client_measured_kwh=measured,
        client_estimated_kwh=estimated,
        upload_bytes=up,
        download_bytes=down,
        upload_kwh=network_kwh(up, up_coeff),
        download_kwh=network_kwh(down, down_coeff),
        server_kwh=server,
        network=_describe(up_coeff, down_coeff),
        network_range_kwh=(spread[0], spread[-1]),
        notes=notes,
    )


def per_round(run: Run, network: NetworkCoefficient | None = None) -> list[dict[str, Any]]:
    """The breakdown of each round, with the clients that took part and the failures.

    Server energy of a round is the energy of its ``round`` span on the server.
    """
    up_coeff, down_coeff = _coefficients(run, network)
    rounds: dict[int, dict[str, Any]] = {}
    for r in fl_records(run):
        row = rounds.setdefault(
            int(r["round"]),
            {
                "round": int(r["round"]),
                "clients": set(),
                "failures": 0,
                "client_kwh": 0.0,
                "upload_bytes": 0,
                "download_bytes": 0,
                "server_kwh": 0.0,
                "duration_s": None,
            },
        )
        row["clients"].add(r.get("node_id"))
        row["failures"] += 1 if r.get("error") else 0
        row["client_kwh"] += (
            float(r.get("client_measured_j") or 0.0) + float(r.get("client_estimated_j") or 0.0)
        ) / 3.6e6
        row["upload_bytes"] += int(r.get("upload_bytes") or 0)
        row["download_bytes"] += int(r.get("download_bytes") or 0)
    frame = run.spans
    if not frame.empty:
        for span in frame[frame["name"] == "round"].to_dict("records"):
            number = span["tags"].get("round") if isinstance(span["tags"], dict) else None
            if number in rounds:
                rounds[number]["server_kwh"] = float(span["energy_j"]) / 3.6e6
                rounds[number]["duration_s"] = float(span["duration_s"])
    out = []
    cumulative = 0.0
    for number in sorted(rounds):
        row = rounds[number]
        row["clients"] = len(row["clients"])
        row["upload_kwh"] = network_kwh(row["upload_bytes"], up_coeff)
        row["download_kwh"] = network_kwh(row["download_bytes"], down_coeff)
        row["total_kwh"] = (
            row["client_kwh"] + row["upload_kwh"] + row["download_kwh"] + row["server_kwh"]
        )
        cumulative += row["total_kwh"]
        row["cumulative_kwh"] = cumulative
        out.append(row)
    return out
