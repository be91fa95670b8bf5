"""The federated parts of a run: client compute, upload, download, server (Green FL).

From the server's run directory (written by the Flower strategy wrapper): ``fl.jsonl`` gives
each client reply's bytes per direction and the energy the client mod measured, estimated or
modeled; the server's own channels give the server's energy. Network energy is bytes x a kWh/GB
coefficient (:mod:`greentrack.carbon.network`), with the published spread as its range.

**One definition of the total**: clients + server + network. Two rules keep a machine from
being counted twice when parties share it:

* *Co-located parties.* A client reply from the server's own host measured devices that the
  server measures too (the GPU's and the CPU package's counters are device-wide). Its measured
  energy of each component the server also measured is taken out of the server's part, so the
  host's energy is counted once and split: the clients keep what their windows measured (a
  GPU shared by concurrent clients already split among them by time windows), the server keeps
  the rest. A client in the server's own process (an in-process grid) also shares the
  server's process-level CPU estimate, so its estimate is taken out too. Process-level
  estimates of separate processes add up as they are.
* *Traffic that crossed no network.* Bytes between parties on one host (a simulation, a
  loopback deployment) were never sent over a network: their energy is modeled for a real
  deployment and shown apart (``network_apart``), never added to the total.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from greentrack.account.accuracy import energy_accuracy, widest
from greentrack.account.figures import Figure, total
from greentrack.carbon.network import NetworkCoefficient, coefficient, network_kwh, network_range
from greentrack.numbers import ENERGY, num, plural, quantity
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.rundir.reader import Run

PARTS = ("client_compute", "upload", "download", "server")
SIMULATION_GRIDS = ("InMemoryGrid",)


@dataclass(frozen=True)
class FederatedParts:
    """Energy of a federated run by part, IT energy in kWh with ranges, before PUE.

    Attributes:
        parts: ``client_compute``, ``upload``, ``download``, ``server`` -> energy; network parts
            are zero when the traffic crossed no network (then see ``network_apart``).
        provenance: per part, ``measured``, ``estimated``, ``modeled``, ``network-model`` or a
            ``+``-joined mix.
        network_apart: network energy of traffic that crossed no network, modeled for a real
            deployment and kept out of the total (``None`` when all traffic crossed one).
        co_located_replies / in_process_replies: replies from the server's host / process.
    """

    rounds: int
    client_replies: int
    unmeasured_replies: int
    upload_bytes: int
    download_bytes: int
    parts: dict[str, Figure]
    provenance: dict[str, str]
    split_kwh: dict[str, dict[str, float]]  # part -> provenance -> kWh
    network: str
    network_apart: Figure | None
    co_located_replies: int
    in_process_replies: int
    per_round: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def total_kwh(self) -> Figure:
        return total(self.parts.values())


def _coefficients(
    run: Run, network: NetworkCoefficient | None
) -> tuple[NetworkCoefficient, NetworkCoefficient]:
    """Upload and download coefficients: the one given, else those the server recorded."""
    if network is not None:
        return network, network
    recorded = (run.meta.get("fl") or {}).get("network") or {}
    out = []
    for direction in ("upload", "download"):
        c = recorded.get(direction) if isinstance(recorded, dict) else recorded
        out.append(_recorded_coefficient(run, direction, c) if c else coefficient())
    return out[0], out[1]


def _recorded_coefficient(run: Run, direction: str, block: Any) -> NetworkCoefficient:
    """The coefficient the server recorded for ``direction``, checked where the account reads
    it (its fields, and kWh/GB within :func:`coefficient`'s bounds); a damaged one is never
    applied: the default is, and the run's notes say so."""
    try:
        c = NetworkCoefficient(**block)
        coefficient(c.kwh_per_gb)  # the bounds of a coefficient
        if not all(isinstance(v, str) for v in (c.key, c.scope, c.source, c.note)):
            raise TypeError("a text field is not a string")
        return c
    except (TypeError, ValueError, OverflowError) as e:
        run.damage.append(
            f"meta.json: fl.network.{direction} is damaged ({e}): the default network "
            "coefficient is used"
        )
        return coefficient()


def _describe(up: NetworkCoefficient, down: NetworkCoefficient) -> str:
    if up == down:
        return f"{num(up.kwh_per_gb, 6)} kWh/GB ({up.source.split(',')[0]}, {up.scope})"
    return (
        f"upload {num(up.kwh_per_gb, 6)} kWh/GB ({up.scope}), "
        f"download {num(down.kwh_per_gb, 6)} kWh/GB"
    )


def _network_figure(nbytes: int, coeff: NetworkCoefficient) -> Figure:
    """Network energy of ``nbytes`` at ``coeff``, ranging over every bundled coefficient."""
    spread = [kwh for _, kwh in network_range(nbytes)]
    value = network_kwh(nbytes, coeff)
    return Figure(value, min(spread[0], value), max(spread[-1], value))


def _client_components(row: dict[str, Any]) -> dict[str, list[float]]:
    """A reply's energy per component as ``[measured J, estimated J]`` (older records carry
    only totals: those count as component ``"client"``)."""
    comps = row.get("client_components")
    measured = float(row.get("client_measured_j") or 0.0)
    estimated = float(row.get("client_estimated_j") or 0.0)
    if isinstance(comps, dict) and comps:
        # the reply's totals are authoritative (a shared GPU's reading was attributed): the
        # components keep their proportions
        m_sum = sum(float(v[0]) for v in comps.values())
        e_sum = sum(float(v[1]) for v in comps.values())
        return {
            str(k): [
                float(v[0]) * measured / m_sum if m_sum else 0.0,
                float(v[1]) * estimated / e_sum if e_sum else 0.0,
            ]
            for k, v in comps.items()
        }
    return {"client": [measured, estimated]}


@dataclass
class FederatedTally:
    """The running sums of a federated run's client replies by the rules of the total (see the
    module docstring): what :func:`federated_parts` computes from ``fl.jsonl`` and the Flower
    recorder computes live, reply by reply, so the live total is the account's.

    Args:
        host, pid: the server's host name and process id (co-located and in-process replies).
        simulation: whether every party ran on the server's host (Flower's simulation grid).
    """

    host: str | None
    pid: int | None
    simulation: bool
    client_split: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    client_low_j: float = 0.0  # the clients' range, J (as the sum of their components')
    client_high_j: float = 0.0
    overlap_measured: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    overlap_estimated: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    bytes_real: dict[str, int] = field(default_factory=lambda: {"upload": 0, "download": 0})
    bytes_apart: dict[str, int] = field(default_factory=lambda: {"upload": 0, "download": 0})
    co_located: int = 0
    in_process: int = 0
    unmeasured: int = 0
    modeled: int = 0
    shared: int = 0

    def add(self, r: dict[str, Any]) -> None:
        """Count one ``fl.jsonl`` row (a reply, a failed or a missing one)."""
        same_host = _local(r, self.simulation, self.host)
        same_process = same_host and _in_server_process(r, self.pid)
        target = self.bytes_apart if same_host else self.bytes_real
        target["upload"] += int(r.get("upload_bytes") or 0)
        target["download"] += int(r.get("download_bytes") or 0)
        if r.get("error"):
            return
        if r.get("client_measured_j") is None:
            self.unmeasured += 1
            return
        basis = str(r.get("client_basis") or "measured")
        self.modeled += basis == "modeled"
        self.shared += bool(r.get("attribution"))
        self.co_located += same_host
        self.in_process += same_process
        e_prov = "modeled" if basis == "modeled" else "estimated"
        methods = str(r.get("client_methods") or "")
        for component, (m_j, e_j) in _client_components(r).items():
            self.client_split["measured"] += m_j
            self.client_split[e_prov] += e_j
            for joules, provenance in ((m_j, "measured"), (e_j, e_prov)):
                low, high = _method_bounds(methods, component, provenance)
                a, b = joules * low, joules * high
                self.client_low_j += min(a, b)
                self.client_high_j += max(a, b)
            if same_host:
                self.overlap_measured[component] += m_j
            if same_process:
                self.overlap_estimated[component] += e_j

    def client(self) -> Figure:
        """Client compute, kWh with its range."""
        return Figure(
            kwh_from_j(sum(self.client_split.values())),
            kwh_from_j(self.client_low_j),
            kwh_from_j(self.client_high_j),
        )

    def server(
        self, server_channels: Sequence[tuple[str, str, str, float]]
    ) -> tuple[dict[str, float], Figure, float]:
        """The server's part from its channels ``(component, provenance, method, joules)``,
        less what co-located clients already account for: ``(J per provenance, kWh figure,
        J taken out)``."""
        server_split: dict[str, float] = defaultdict(float)
        server_range = Figure.exact(0.0)
        by_component: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        for component, provenance, method, joules in server_channels:
            by_component[(component, provenance)].append((method, joules))
        pools = {"measured": dict(self.overlap_measured), "other": dict(self.overlap_estimated)}
        taken_j = 0.0
        for (component, provenance), channels in by_component.items():
            have = sum(j for _, j in channels)
            pool = pools["measured" if provenance == "measured" else "other"]
            take = min(have, pool.get(component, 0.0) + pool.get("client", 0.0) * (have > 0))
            if "client" in pool and take:
                pool["client"] = max(0.0, pool["client"] - take)
            taken_j += take
            net = have - take
            server_split[provenance] += net
            for method, joules in channels:
                share = joules / have if have > 0 else 0.0
                acc = energy_accuracy(method, provenance)
                server_range = server_range + Figure.relative(
                    kwh_from_j(net * share), acc.low, acc.high
                )
        value = kwh_from_j(sum(server_split.values()))
        return dict(server_split), Figure(value, server_range.low, server_range.high), taken_j

    def network(
        self, upload: NetworkCoefficient, download: NetworkCoefficient
    ) -> tuple[Figure, Figure, Figure | None]:
        """Upload, download (traffic that crossed a network) and the energy of traffic that
        crossed none (``None`` without any), kWh with the bundled coefficients' spread."""
        apart = None
        if self.bytes_apart["upload"] or self.bytes_apart["download"]:
            apart = _network_figure(self.bytes_apart["upload"], upload) + _network_figure(
                self.bytes_apart["download"], download
            )
        return (
            _network_figure(self.bytes_real["upload"], upload),
            _network_figure(self.bytes_real["download"], download),
            apart,
        )

    def total_kwh(
        self,
        server_channels: Sequence[tuple[str, str, str, float]],
        upload: NetworkCoefficient,
        download: NetworkCoefficient,
    ) -> Figure:
        """The run's IT energy so far: clients + server + network (the account's total)."""
        up, down, _ = self.network(upload, download)
        return self.client() + self.server(server_channels)[1] + up + down


def federated_parts(
    run: Run,
    server_channels: Sequence[tuple[str, str, str, float]],
    network: NetworkCoefficient | None = None,
) -> FederatedParts:
    """The parts of ``run`` (a Flower server run). ``server_channels`` are the server's own
    channels as ``(component, provenance, method, joules)`` (all ranks and segments)."""
    rows = run.fl_records
    up_coeff, down_coeff = _coefficients(run, network)
    host = (run.meta.get("host") or {}).get("hostname")
    pid = run.meta.get("pid")
    grid = str((run.meta.get("fl") or {}).get("grid") or "")
    simulation = grid in SIMULATION_GRIDS
    notes: list[str] = []
    tally = FederatedTally(host, pid, simulation)
    for r in rows:
        tally.add(r)
    co_located, in_process = tally.co_located, tally.in_process
    unmeasured, modeled, shared = tally.unmeasured, tally.modeled, tally.shared
    client_split = tally.client_split
    bytes_real, bytes_apart = tally.bytes_real, tally.bytes_apart
    server_split, server_figure, taken_j = tally.server(server_channels)
    if co_located and taken_j > 0:
        notes.append(
            f"{_replies(co_located)} ran on the server's host: the host's energy is "
            "counted once (what the clients reported that the server's own meters also "
            f"counted, {quantity(kwh_from_j(taken_j), ENERGY)}, is taken out of the server's "
            "part)"
        )
    elif co_located:
        it, its = ("it", "its") if co_located == 1 else ("they", "their")
        notes.append(
            f"{_replies(co_located)} ran on the server's host; {it} measured nothing the "
            f"server's meters also see, so {its} energy adds to the server's"
        )
    if in_process:
        its, them = ("its", "it") if in_process == 1 else ("their", "them")
        notes.append(
            f"{_replies(in_process)} ran in the server's process or one it started (a "
            f"simulation's workers): {its} CPU estimate is taken out of the server's "
            f"process-level estimate, which includes {them}"
        )

    # --- network -----------------------------------------------------------------------------
    upload, download, apart = tally.network(up_coeff, down_coeff)
    if apart is not None:
        notes.append(
            "traffic between parties on one host crossed no network: its energy "
            f"({quantity(apart.value, ENERGY)} at the coefficient) is modeled for a real "
            "deployment and shown apart, not added to the total"
        )
    if modeled:
        notes.append(
            f"{_replies(modeled)} {'was' if modeled == 1 else 'were'} modeled from a device "
            "profile, not measured"
        )
    if shared:
        notes.append(
            f"{_replies(shared)} shared a GPU with concurrent clients: its measured "
            "energy is split among the clients by time windows (their sum is the GPU's energy)"
        )
    if unmeasured:
        notes.append(
            f"{_replies(unmeasured)} carried no energy record (no energy_mod, a client "
            "that could not measure, or a record the server could not read): "
            f"{'its' if unmeasured == 1 else 'their'} compute is not in client compute (a "
            "client in the server's process tree, as in a simulation, is still in the "
            "server's CPU estimate)"
        )
    parts = {
        "client_compute": tally.client(),
        "upload": upload,
        "download": download,
        "server": server_figure,
    }
    split = {
        "client_compute": {k: kwh_from_j(v) for k, v in client_split.items() if v},
        "upload": {"network-model": upload.value},
        "download": {"network-model": download.value},
        "server": {k: kwh_from_j(v) for k, v in server_split.items() if v},
    }
    return FederatedParts(
        rounds=len({r["round"] for r in rows}),
        client_replies=sum(1 for r in rows if not r.get("error")),
        unmeasured_replies=unmeasured,
        upload_bytes=bytes_real["upload"] + bytes_apart["upload"],
        download_bytes=bytes_real["download"] + bytes_apart["download"],
        parts=parts,
        provenance={k: "+".join(sorted(v)) or "none" for k, v in split.items()},  # as counted
        split_kwh=split,
        network=_describe(up_coeff, down_coeff),
        network_apart=apart,
        co_located_replies=co_located,
        in_process_replies=in_process,
        per_round=_per_round(run, rows, up_coeff, down_coeff, parts, simulation, host),
        notes=notes,
    )


def _in_server_process(row: dict[str, Any], pid: int | None) -> bool:
    """Whether a client ran in the server's process or one of its descendants (a simulation's
    Ray workers): then the server's process-level CPU estimate already includes it."""
    if pid is None:
        return False
    ancestors = row.get("client_ancestors")
    return row.get("client_pid") == pid or (isinstance(ancestors, list) and pid in ancestors)


def _replies(n: int) -> str:
    """A count of client replies in words.

    >>> _replies(1), _replies(3)
    ('1 client reply', '3 client replies')
    """
    return plural(n, "client reply", "client replies")


def _local(row: dict[str, Any], simulation: bool, host: str | None) -> bool:
    """Whether a reply came from the server's own host (its bytes crossed no network)."""
    return simulation or (host is not None and row.get("client_host") == host)


def _bounds(row: dict[str, Any], component: str, provenance: str) -> tuple[float, float]:
    """The range of a reply's ``provenance`` energy of ``component``: its own method's
    accuracy (``client_methods`` is ``component:method;...``); a component of several methods,
    or a record of totals only (component ``client``), takes the widest of its methods of that
    kind (measured or estimated)."""
    return _method_bounds(str(row.get("client_methods") or ""), component, provenance)


@lru_cache(maxsize=1024)
def _method_bounds(methods_text: str, component: str, provenance: str) -> tuple[float, float]:
    """:func:`_bounds` of a ``client_methods`` text (the same few texts recur over thousands of
    replies: read once each)."""
    methods: list[tuple[str, str]] = []
    for item in methods_text.split(";"):
        comp, _, method = item.partition(":")
        if method:
            methods.append((comp.strip(), method.strip()))
    mine = [m for c, m in methods if c == component or component == "client"]
    a = widest(mine, provenance)
    return a.low, a.high


def _per_round(
    run: Run,
    rows: list[dict[str, Any]],
    up_coeff: NetworkCoefficient,
    down_coeff: NetworkCoefficient,
    parts: dict[str, Figure],
    simulation: bool,
    host: str | None,
) -> list[dict[str, Any]]:
    """Each round's parts. Client compute and bytes from the replies; the server's part is its
    ``round`` span, scaled so that the rounds add up to the server's part of the total (which
    is net of co-located clients and includes time outside rounds)."""
    rounds: dict[int, dict[str, Any]] = {}
    for r in rows:
        row = rounds.setdefault(
            int(r["round"]),
            {
                "round": int(r["round"]),
                "clients": set(),
                "failures": 0,
                "client_j": 0.0,
                "upload_bytes": 0,
                "download_bytes": 0,
                "network_bytes": [0, 0],
                "server_span_j": 0.0,
                "duration_s": None,
                "end_unix_s": None,
            },
        )
        row["clients"].add(r.get("node_id"))
        row["failures"] += 1 if r.get("error") else 0
        row["client_j"] += float(r.get("client_measured_j") or 0.0) + float(
            r.get("client_estimated_j") or 0.0
        )
        row["upload_bytes"] += int(r.get("upload_bytes") or 0)
        row["download_bytes"] += int(r.get("download_bytes") or 0)
        if not _local(r, simulation, host):
            row["network_bytes"][0] += int(r.get("upload_bytes") or 0)
            row["network_bytes"][1] += int(r.get("download_bytes") or 0)
    frame = run.spans
    if not frame.empty:
        for span in frame[frame["name"] == "round"].to_dict("records"):
            number = span["tags"].get("round") if isinstance(span["tags"], dict) else None
            if number in rounds:
                rounds[number]["server_span_j"] = float(span["energy_j"])
                rounds[number]["duration_s"] = float(span["duration_s"])
                rounds[number]["end_unix_s"] = float(span["end_unix_s"])
    span_total = sum(r["server_span_j"] for r in rounds.values())
    server_scale = parts["server"].value / kwh_from_j(span_total) if span_total > 0 else 0.0
    client_total = sum(r["client_j"] for r in rounds.values())
    client_scale = parts["client_compute"].value / kwh_from_j(client_total) if client_total else 0
    out = []
    cumulative = 0.0
    for number in sorted(rounds):
        row = rounds[number]
        row["clients"] = len(row["clients"])
        row["client_kwh"] = kwh_from_j(row.pop("client_j")) * client_scale
        row["server_kwh"] = kwh_from_j(row.pop("server_span_j")) * server_scale
        up_bytes, down_bytes = row.pop("network_bytes")
        up, down = network_kwh(up_bytes, up_coeff), network_kwh(down_bytes, down_coeff)
        row["upload_kwh"], row["download_kwh"] = up, down
        row["total_kwh"] = row["client_kwh"] + up + down + row["server_kwh"]
        cumulative += row["total_kwh"]
        row["cumulative_kwh"] = cumulative
        out.append(row)
    return out


def binned_rounds(per_round: Sequence[dict[str, Any]], max_rows: int) -> list[dict[str, Any]]:
    """The per-round rows in at most ``max_rows`` bins of consecutive rounds (a table or a
    figure of 1,500 rounds is unreadable), each the sum of its rounds' figures, with
    ``first``/``last`` round, ``rounds`` (how many) and the cumulative at its last round; at
    most ``max_rows`` rounds come back as they are (``first == last``)."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    size = -(-len(per_round) // max_rows)  # ceil: rounds per bin
    out = []
    for i in range(0, len(per_round), max(size, 1)):
        chunk = per_round[i : i + size]
        row: dict[str, Any] = {
            "first": chunk[0]["round"],
            "last": chunk[-1]["round"],
            "rounds": len(chunk),
            "clients": sum(r["clients"] for r in chunk),
            "failures": sum(r["failures"] for r in chunk),
            "cumulative_kwh": chunk[-1]["cumulative_kwh"],
        }
        for key in ("client_kwh", "upload_kwh", "download_kwh", "server_kwh", "total_kwh"):
            row[key] = sum(r[key] for r in chunk)
        out.append(row)
    return out
