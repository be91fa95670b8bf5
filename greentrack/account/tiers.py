"""Energy in tiers: the devices, the node that contains them, the residual between, the facility.

With a node meter (:mod:`greentrack.meters.node`: a BMC through Redfish or IPMI, or SLURM's
energy accounting), a run has two measured figures of one machine: its devices (GPU, CPU
packages, DRAM: NVML, RAPL, or estimates) and the whole node as its power supplies see it.

* ``node``: the node meters' energy, summed over the nodes that have one (a SLURM step's
  reading covers every node of the step);
* ``devices``: the device channels of the processes on those nodes (all ranks);
* ``residual = node - devices``: fans, power supplies, networking, disks and idle hardware.
  Physically it is not negative; a negative value within the meters' combined bounds is
  shown as 0 with its range, and one beyond them is *flagged*: then the node figure is not
  trusted as the IT total (a meter that sees one of two supplies, devices outside the
  chassis) and the devices stand;
* the IT total is the highest tier measured: the node's energy where a node was measured
  (plus the devices of nodes without a node meter), else the devices'; the facility is the IT
  total x PUE (:mod:`greentrack.account.build`).

Without a node meter there are no tiers (``None``): nothing is invented for the residual.
Each node figure's range comes from its source's accuracy (:data:`COUNTER_DEFAULT`,
:data:`SAMPLING`; the BMC's own ``Accuracy`` where its Redfish sensor states one), widened by
the counter's resolution, the time its readings missed and, for SLURM, the age of its readings
(docs/methodology.md, "Tiers").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greentrack.account.figures import Figure, total
from greentrack.numbers import ENERGY, num, plural, quantities, quantity
from greentrack.rundir.checks import MAX_REPLY_W
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.account.build import EnergyItem
    from greentrack.rundir.reader import Run

COUNTER_DEFAULT = 0.10
"""Relative bound of a BMC's or a SLURM plugin's energy where the source states none: DCMI and
Redfish specify no accuracy, and BMC power sensors sit at the supplies' input; +/-10% is
greentrack's stated assumption (docs/methodology.md, "Tiers")."""
SAMPLING = 0.05
"""Added to the bound of a node figure integrated from power polled every few seconds (the
node's power between polls is interpolated): greentrack's stated assumption."""
RESIDUAL_WORDS = "fans, power supplies, networking and idle"
TIER_NAMES = ("devices", "node", "residual", "facility")


@dataclass(frozen=True)
class NodeFigure:
    """One node meter's energy in a run (a part's ``node`` channel)."""

    key: str
    label: str
    host: str | None  # None: every node of its segment (a SLURM step)
    segment: int
    method: str
    energy_kwh: Figure
    accuracy: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "host": self.host,
            "segment": self.segment,
            "method": self.method,
            "energy_kwh": self.energy_kwh.to_dict(),
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class Tiers:
    """The run's energy by tier, each with its range (kWh, IT energy before PUE).

    ``it_tier`` names the tier the IT total is (``node``, or ``devices`` when the node figure
    was flagged); ``it_kwh`` is that total (the node where measured plus the devices of nodes
    without a node meter); ``covered_devices_kwh`` are the devices on the measured nodes, and
    ``residual_kwh = node_kwh - covered_devices_kwh``.
    """

    it_tier: str
    it_kwh: Figure
    devices_kwh: Figure
    node_kwh: Figure
    covered_devices_kwh: Figure
    residual_kwh: Figure
    residual_raw_kwh: float
    uncovered_devices_kwh: Figure
    nodes_measured: int
    nodes: int
    flagged: str | None
    figures: tuple[NodeFigure, ...]
    kwh_by_provenance: Mapping[str, float]
    notes: tuple[str, ...]

    @property
    def residual_share(self) -> float | None:
        """The residual's share of the node's energy (``None`` without node energy)."""
        n = self.node_kwh.value
        return self.residual_kwh.value / n if n > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "it_tier": self.it_tier,
            "it_kwh": self.it_kwh.to_dict(),
            "devices_kwh": self.devices_kwh.to_dict(),
            "node_kwh": self.node_kwh.to_dict(),
            "covered_devices_kwh": self.covered_devices_kwh.to_dict(),
            "residual_kwh": self.residual_kwh.to_dict(),
            "residual_raw_kwh": self.residual_raw_kwh,
            "residual_share": self.residual_share,
            "residual_is": RESIDUAL_WORDS,
            "uncovered_devices_kwh": self.uncovered_devices_kwh.to_dict(),
            "nodes_measured": self.nodes_measured,
            "nodes": self.nodes,
            "flagged": self.flagged,
            "node_figures": [f.to_dict() for f in self.figures],
            "kwh_by_provenance": dict(self.kwh_by_provenance),
            "notes": list(self.notes),
        }


def host_of(run: Run) -> str:
    """The node a run directory was measured on: the launcher's node name, else the host."""
    part = run.meta.get("part")
    host = part.get("host") if isinstance(part, Mapping) else None
    if not host:
        block = run.meta.get("host")
        host = block.get("hostname") if isinstance(block, Mapping) else None
    return str(host or "")


def node_tiers(
    root: Run,
    runs: Sequence[Run],
    components: Sequence[EnergyItem],
    live_energy_j: Mapping[str, float] | None = None,
) -> tuple[Tiers | None, list[str]]:
    """The tiers of a run and its parts (``None`` when no process recorded a usable node meter)
    and the notes on its node meters: a meter that left no reading, or a damaged one, is noted
    even where no tier remains.

    ``components`` are the account's device items (keys ``<part>/<channel>`` for parts, as
    :func:`greentrack.account.build.account_run` names them); ``live_energy_j`` a running
    tracker's fresh reading of the root (its node channel included)."""
    figures: list[NodeFigure] = []
    notes: list[str] = []
    for r in runs:
        prefix = "" if r is root else f"{r.path.name}/"
        live = live_energy_j if r is root else None
        for ch in r.meta.get("node_channels") or ():
            if not isinstance(ch, Mapping) or not ch.get("id"):
                continue
            fig, more = _node_figure(r, ch, prefix, live)
            notes += more
            if fig is not None:
                figures.append(fig)
    if not figures:
        return None, notes
    hosts = {(r.segment, host_of(r)) for r in runs}
    covered: set[tuple[int, str]] = set()
    for f in figures:
        if f.host is None:
            covered |= {h for h in hosts if h[0] == f.segment}
        else:
            covered.add((f.segment, f.host))
    where = {
        ("" if r is root else f"{r.path.name}/") + str(ch["id"]): (r.segment, host_of(r))
        for r in runs
        for ch in r.channels
    }
    inside = [c for c in components if where.get(c.key) in covered and c.in_total]
    outside = [c for c in components if where.get(c.key) not in covered and c.in_total]
    node = total(f.energy_kwh for f in figures)
    devices_in = total(c.energy_kwh for c in inside)
    devices_out = total(c.energy_kwh for c in outside)
    devices = devices_in + devices_out
    raw = node.value - devices_in.value
    residual, beyond = residual_of(node, devices_in)
    flagged = None
    if beyond:
        most, least = quantities([node.high, devices_in.low], ENERGY)
        meters = "the node meter reads" if len(figures) == 1 else "the node meters read"
        flagged = (
            f"{meters} {most} at most, below the {least} "
            "its devices read at least: beyond both meters' bounds. The node figure is not used "
            "as the IT total (does the meter see every power supply? are devices outside the "
            "chassis?); the devices' figure stands"
        )
        notes.append(f"tiers: {flagged}")
    elif raw < 0:
        notes.append(
            f"tiers: the node read {quantity(-raw, ENERGY)} less than its devices, within the "
            "meters' "
            "combined bounds: the residual is shown as 0 with its range"
        )
    by_prov: dict[str, float] = defaultdict(float)
    if flagged is None:
        it = node + devices_out
        by_prov["measured"] += node.value
        for c in outside:
            by_prov[c.provenance] += c.energy_kwh.value
    else:
        it = devices
        for c in components:
            if c.in_total:
                by_prov[c.provenance] += c.energy_kwh.value
    if outside and flagged is None:
        bare = len({where.get(c.key) for c in outside})
        notes.append(
            f"tiers: {plural(bare, 'node')} without a node meter "
            f"{'counts its' if bare == 1 else 'count their'} devices "
            f"({quantity(devices_out.value, ENERGY)}) in the IT total"
        )
    tiers = Tiers(
        it_tier="node" if flagged is None else "devices",
        it_kwh=it,
        devices_kwh=devices,
        node_kwh=node,
        covered_devices_kwh=devices_in,
        residual_kwh=residual,
        residual_raw_kwh=raw,
        uncovered_devices_kwh=devices_out,
        nodes_measured=len(covered),
        nodes=len(hosts),
        flagged=flagged,
        figures=tuple(figures),
        kwh_by_provenance=dict(by_prov),
        notes=tuple(notes),
    )
    return tiers, notes


def residual_of(node: Figure, devices: Figure) -> tuple[Figure, bool]:
    """``node - devices`` with its range, never below 0 (what the node adds to its devices
    cannot be negative), and whether the node is below its devices beyond both ranges
    (``node.high < devices.low``: flagged).

    >>> residual_of(Figure(10.0, 9.0, 11.0), Figure(7.0, 6.5, 7.5))
    (Figure(value=3.0, low=1.5, high=4.5), False)
    >>> residual_of(Figure(5.0, 4.5, 5.5), Figure(7.0, 6.5, 7.5))[1]
    True
    """
    high = node.high - devices.low
    value = min(max(node.value - devices.value, 0.0), max(high, 0.0))
    low = min(max(node.low - devices.high, 0.0), value)
    return Figure(value, low, max(high, 0.0)), high < 0


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) and out >= 0 else None


def _node_figure(
    r: Run, ch: Mapping[str, Any], prefix: str, live: Mapping[str, float] | None
) -> tuple[NodeFigure | None, list[str]]:
    """One node channel's energy with its range, from the live reading, ``summary.json``
    (``node_energy_j``, ``node``) or, for a run that did not stop, its last ``node_reading``."""
    cid = str(ch["id"])
    key = prefix + cid
    final = r.final if isinstance(r.final, Mapping) else {}
    info = (final.get("node") or {}).get(cid) if isinstance(final.get("node"), Mapping) else None
    info = info if isinstance(info, Mapping) else {}
    joules: float | None = None
    notes: list[str] = []
    if live is not None and cid in live:
        joules = _float(live[cid])
    if joules is None:
        energies = final.get("node_energy_j")
        joules = _float(energies.get(cid)) if isinstance(energies, Mapping) else None
    if joules is None:
        last = None
        for e in r.events:
            if e.get("event") == "node_reading" and isinstance(e.get("energy_j"), Mapping):
                value = _float(e["energy_j"].get(cid))
                if value is not None:
                    last = (value, e.get("t_unix_s"))
        if last is None:
            notes.append(f"{key}: the node meter left no reading; the node is not a tier here")
            return None, notes
        joules = last[0]
        notes.append(
            f"{key}: the run did not stop cleanly; the node's energy is its last reading "
            "(the time after it is not in the node tier)"
        )
    # a node meter (a node, or a SLURM job's nodes) never draws a megawatt: a reading above
    # that over the run is damage, not energy
    bound_j = MAX_REPLY_W * max(r.duration_s, 1.0)
    if joules > bound_j:
        notes.append(
            f"{key}: the node's energy {joules:.6g} J "  # raw value
            f"is more than {num(MAX_REPLY_W / 1000)} kW "
            "over the run; the reading is damaged and the node is not a tier here"
        )
        return None, notes
    details = ch.get("details") if isinstance(ch.get("details"), Mapping) else {}
    details = details or {}
    method = str(info.get("method") or ch.get("method") or "")
    fig, basis = node_range(joules, method, details, info)
    scope = details.get("scope")
    label = str(ch.get("name") or cid)
    host = None if scope == "job" else host_of(r)
    if info.get("failures"):
        notes.append(
            f"{key}: {plural(int(info['failures']), 'node reading')} failed"
            + (f" (last: {info.get('last_error')})" if info.get("last_error") else "")
        )
    check = info.get("average_check")
    if isinstance(check, Mapping) and check.get("bmc_average_w"):
        bmc, mine = _float(check.get("bmc_average_w")), _float(check.get("readings_mean_w"))
        if bmc and mine is not None:
            notes.append(
                f"{key}: over the BMC's last {num(float(check.get('window_s') or 0) / 60)} min "
                f"its own average was {num(bmc, 4)} W, the readings' mean {num(mine, 4)} W "
                f"({(mine - bmc) / bmc:+.1%})"
            )
    return (
        NodeFigure(key, label, host, r.segment, method, fig, basis),
        notes,
    )


def node_range(
    joules: float, method: str, details: Mapping[str, Any], info: Mapping[str, Any]
) -> tuple[Figure, str]:
    """A node figure (kWh) with its range and basis: the source's accuracy (the BMC's own
    Redfish ``Accuracy`` where stated, else :data:`COUNTER_DEFAULT`), :data:`SAMPLING` more for
    power integrated between polls, and, added in joules, the counter's smallest step, the
    seconds without a reading and, for SLURM, one reading interval at each end.

    >>> from greentrack.units import J_PER_KWH
    >>> f, basis = node_range(J_PER_KWH, "redfish-environmentmetrics-energykwh", {}, {})
    >>> round(f.low, 3), round(f.high, 3)
    (0.9, 1.1)
    """
    stated = _float(details.get("accuracy_percent"))
    a = stated / 100.0 if stated is not None else COUNTER_DEFAULT
    basis = (
        f"the BMC's stated sensor accuracy +/-{num(stated)}% (Redfish Sensor.Accuracy)"
        if stated is not None
        else f"+/-{COUNTER_DEFAULT:.0%}: no accuracy stated by the source (greentrack's "
        "assumption for BMC and scheduler energy)"
    )
    integrated = method.startswith("integral of")
    if integrated:
        a += SAMPLING
        basis += f"; +/-{SAMPLING:.0%} for power polled every {details.get('interval_s', '?')} s"
    a = min(a, 0.99)
    low, high = joules * (1 - a), joules * (1 + a)
    duration = _float(info.get("duration_s")) or 0.0
    mean_w = joules / duration if duration > 0 else 0.0
    slurm = details.get("meter") == "slurm"  # its steps are its update, not its resolution
    step = _float(info.get("counter_step_j")) if not (integrated or slurm) else None
    if step:
        low, high = low - step, high + step
        basis += f"; +/-{num(step, 4)} J, the counter's resolution"
    uncovered = _float(info.get("uncovered_s")) or 0.0
    if uncovered > 0 and mean_w > 0:
        low, high = low - mean_w * uncovered, high + mean_w * uncovered
        basis += f"; +/- the mean power over {num(uncovered)} s without a reading"
    if slurm:
        interval = _float(details.get("interval_s")) or 0.0
        if interval > 0 and mean_w > 0:
            low, high = low - 2 * interval * mean_w, high + 2 * interval * mean_w
            basis += f"; +/- the mean power over two {num(interval)} s accounting intervals"
    low = max(low, 0.0)
    return Figure(kwh_from_j(joules), kwh_from_j(low), kwh_from_j(high)), basis
