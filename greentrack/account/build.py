"""The account of one run: every energy and CO2e figure, computed once, with its range.

A run here is a run directory with its parts (other ranks, resumed segments) and, for a Flower
server run, its federated file. :func:`account_run` reads them and computes:

* energy per channel (every rank and segment), with provenance (``measured``, ``estimated``,
  ``modeled``, ``network-model``) and the range its source's accuracy allows;
* for a federated run, the parts (client compute, upload, download, server) and the one
  total: clients + server + network, co-located parties counted once
  (:mod:`greentrack.account.federated`);
* the carbon basis (annual intensity or a series weighted by the run's own hours, PUE), the
  facility energy and the CO2e, each with its range, split by provenance;
* energy and CO2e per phase (span name), per epoch or per round, cumulative;
* the counterfactuals (other regions, Flexible Start, Pause & Resume), whose baseline is the
  account's own CO2e.

Every view (summary, report, plots, model card, whatif) reads these figures; none computes
its own. ``RunAccount.to_dict()`` is the documented schema (docs/account.md).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greentrack.account import accuracy as acc
from greentrack.account.calibration import apply_calibration
from greentrack.account.charge import co2e_figure, co2e_g
from greentrack.account.crosscheck import power_check, widened
from greentrack.account.curve import combined_curve, placed_curve, truncated, with_floor
from greentrack.account.federated import PARTS, FederatedParts, federated_parts
from greentrack.account.figures import Figure, total
from greentrack.account.notes import with_advice
from greentrack.account.tiers import Tiers, node_tiers
from greentrack.carbon.settings import CarbonSettings, resolve_settings, settings_from_meta
from greentrack.numbers import ENERGY, num, plural, quantity
from greentrack.numbers import duration as duration_text
from greentrack.units import J_PER_KWH, kwh_from_j

if TYPE_CHECKING:
    from greentrack.carbon.network import NetworkCoefficient
    from greentrack.carbon.series import EnergyCurve, IntensitySeries
    from greentrack.rundir.reader import Run

DEFAULT_REGIONS = ("SE", "FR", "GB", "DE", "US", "PL", "IN", "ZA")
PROVENANCES = ("measured", "estimated", "modeled", "network-model")


@dataclass(frozen=True)
class AccountOptions:
    """What an account applies beyond what the run recorded.

    Attributes:
        region, pue: charge the run at this region's annual intensity and this PUE
            (override the run's own settings; ``pue`` alone keeps the run's region).
        series: a time series of intensity to weight the run's energy with (Dodge et al.).
        fill_gaps: ``"error"`` or ``"annual"`` (fill series gaps with the annual figure).
        regions: counterfactual regions (``None``: :data:`DEFAULT_REGIONS`; ``()``: none).
        flexible_start_s, pause_resume: Flexible Start window (s) and Pause & Resume maximum
            stretch; both need ``series``.
        network: a network coefficient for FL traffic (default: what the server recorded).
        calibrated: apply the run's stored wall-meter calibration (``calibration.json``,
            ``greentrack calibrate --store``: :mod:`greentrack.account.calibration`) to its
            IT total; ``False``: the run's own figures (what ``calibrate`` compares).
    """

    region: str | None = None
    pue: float | str | None = None
    series: IntensitySeries | None = None
    fill_gaps: str = "error"
    regions: Sequence[str] | None = None
    flexible_start_s: float | None = None
    pause_resume: float | None = None
    network: NetworkCoefficient | None = None
    series_note: str | None = None  # why no series was used (a provider that failed)
    calibrated: bool = True

    def __post_init__(self) -> None:
        if (self.flexible_start_s is not None or self.pause_resume is not None) and (
            self.series is None
        ):
            raise ValueError(
                "Flexible Start and Pause & Resume need an intensity series (--intensity-csv, "
                "or a provider's series: --intensity-provider)"
            )
        if self.fill_gaps not in ("error", "annual"):
            raise ValueError(f"fill_gaps must be 'error' or 'annual', got {self.fill_gaps!r}")


@dataclass(frozen=True)
class EnergyItem:
    """One line of the account: a channel of a process, or a federated part.

    ``energy_kwh`` is IT energy (before PUE); ``co2e_g`` is ``None`` without carbon settings;
    ``in_total`` is ``False`` for energy shown apart (network traffic that crossed no network).
    """

    key: str
    label: str
    component: str
    provenance: str
    method: str
    accuracy: str
    energy_kwh: Figure
    avg_power_w: float | None
    co2e_g: Figure | None
    in_total: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "component": self.component,
            "provenance": self.provenance,
            "method": self.method,
            "accuracy": self.accuracy,
            "energy_kwh": self.energy_kwh.to_dict(),
            "avg_power_w": self.avg_power_w,
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "in_total": self.in_total,
        }


@dataclass(frozen=True)
class CarbonBasis:
    """How energy became CO2e: the intensity (annual, or a series weighted by the run's
    energy) and the PUE, each with its range and source."""

    method: str  # "annual" | "series"
    region: str | None
    region_name: str | None
    year: int | None
    basis: str | None
    kind: str  # "average" | "marginal"
    source: str | None
    licence: str | None
    chosen_by: str | None
    intensity: Figure  # gCO2e/kWh applied (annual, or run-weighted)
    intensity_accuracy: str
    pue: Figure
    pue_source: str
    pue_year: int | None
    series: Mapping[str, Any] | None = None
    annual_gco2e_per_kwh: float | None = None  # the region's annual figure (used or not)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "region": self.region,
            "region_name": self.region_name,
            "year": self.year,
            "basis": self.basis,
            "kind": self.kind,
            "source": self.source,
            "licence": self.licence,
            "chosen_by": self.chosen_by,
            "gco2e_per_kwh": self.intensity.to_dict(),
            "intensity_accuracy": self.intensity_accuracy,
            "pue": self.pue.to_dict(),
            "pue_source": self.pue_source,
            "pue_year": self.pue_year,
            "series": dict(self.series) if self.series else None,
            "annual_gco2e_per_kwh": self.annual_gco2e_per_kwh,
        }


@dataclass(frozen=True)
class RunAccount:
    """Every figure of one run. Build it with :func:`account_run`; read it, never redo it."""

    run_id: str
    name: str | None
    project: str | None
    path: str
    kind: str  # "run" | "training" | "federated"
    status: str
    complete: bool
    start_utc: str
    start_unix_s: float
    end_unix_s: float
    duration_s: float
    processes: int
    components: tuple[EnergyItem, ...]
    parts: tuple[EnergyItem, ...]
    it_kwh: Figure
    kwh_by_provenance: Mapping[str, float]
    carbon: CarbonBasis | None
    facility_kwh: Figure | None
    co2e_g: Figure | None
    co2e_g_by_provenance: Mapping[str, float] | None
    not_counted: tuple[tuple[str, str], ...]
    phases: tuple[Mapping[str, Any], ...]
    spans: tuple[Mapping[str, Any], ...]
    units: Mapping[str, Any] | None
    federated: Mapping[str, Any] | None
    counterfactuals: Mapping[str, Any] | None
    notes: tuple[str, ...]
    curve: EnergyCurve = field(repr=False, compare=False)
    gpu_s: float = 0.0  # GPU device-seconds: each GPU's time within the processes measuring it
    gpu_devices: int = 0  # distinct GPUs the processes measured
    series: IntensitySeries | None = field(default=None, repr=False, compare=False)
    kwh_by_stage: Mapping[str, float] = field(default_factory=dict)  # "" without stages
    tiers: Tiers | None = None  # devices, node, residual: only where a node was measured
    calibration: Mapping[str, Any] | None = None  # a wall meter's correction, applied

    @property
    def training_kwh(self) -> float:
        """IT energy of the training stages (``fit``, ``train``: what an in-run forecast
        forecasts), or the whole IT energy when the run records no stages or is federated."""
        trained = sum(v for k, v in self.kwh_by_stage.items() if k in TRAINING_STAGES)
        stages = [k for k in self.kwh_by_stage if k]
        if self.federated is not None or not stages or not trained:
            return self.it_kwh.value
        return trained

    @property
    def measured_kwh(self) -> float:
        """IT energy that was measured (NVML, RAPL)."""
        return float(self.kwh_by_provenance.get("measured", 0.0))

    @property
    def estimated_kwh(self) -> float:
        """IT energy from a model of any kind: estimated, modeled, network-model."""
        return sum(v for k, v in self.kwh_by_provenance.items() if k != "measured")

    @property
    def gpu_hours(self) -> float | None:
        """GPU device-hours actually used (``None`` without a GPU): a job resumed on another
        GPU counts each GPU's own time, never GPUs x the whole duration."""
        return self.gpu_s / 3600.0 if self.gpu_s > 0 else None

    @property
    def items(self) -> tuple[EnergyItem, ...]:
        """What the total adds up: the federated parts, or the channels."""
        return self.parts or self.components

    def co2e_for_kwh(self, it_kwh: Figure) -> Figure | None:
        """CO2e of ``it_kwh`` at this run's carbon basis (for its own sub-figures)."""
        return charge(it_kwh, self.carbon)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "project": self.project,
            "path": self.path,
            "kind": self.kind,
            "status": self.status,
            "complete": self.complete,
            "start_utc": self.start_utc,
            "start_unix_s": self.start_unix_s,
            "end_unix_s": self.end_unix_s,
            "duration_s": self.duration_s,
            "gpu_hours": self.gpu_hours,
            "processes": self.processes,
            "kwh_by_stage": dict(self.kwh_by_stage),
            "energy": {
                "it_kwh": self.it_kwh.to_dict(),
                "measured_kwh": self.measured_kwh,
                "estimated_kwh": self.estimated_kwh,
                "kwh_by_provenance": dict(self.kwh_by_provenance),
                "facility_kwh": self.facility_kwh.to_dict() if self.facility_kwh else None,
            },
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "co2e_g_by_provenance": dict(self.co2e_g_by_provenance)
            if self.co2e_g_by_provenance is not None
            else None,
            "carbon": self.carbon.to_dict() if self.carbon else None,
            "components": [c.to_dict() for c in self.components],
            "parts": [p.to_dict() for p in self.parts],
            "not_counted": [{"component": c, "reason": r} for c, r in self.not_counted],
            "phases": [dict(p) for p in self.phases],
            "spans": [dict(s) for s in self.spans],
            "units": _plain(self.units),
            "federated": _plain(self.federated),
            "counterfactuals": _plain(self.counterfactuals),
            "notes": list(self.notes),
            "tiers": self.tiers.to_dict() if self.tiers else None,
            "calibration": _plain(self.calibration),
        }


def _plain(value: Any) -> Any:
    """A deep copy of nested mappings/sequences as plain dicts and lists (for JSON)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Figure):
        return value.to_dict()
    return value


# --- building ----------------------------------------------------------------------------------


def account_run(
    run: Run,
    options: AccountOptions | None = None,
    *,
    live_energy_j: Mapping[str, float] | None = None,
) -> RunAccount:
    """The account of ``run`` and its parts.

    ``live_energy_j`` replaces the root's totals with a fresh reading (a tracker that is
    still running). Raises ``ValueError`` (and :class:`greentrack.errors.GreentrackError`
    subclasses) for options that cannot apply, with the fix in the message.
    """
    opts = _with_run_series(run, options or AccountOptions())
    runs = [run, *run.parts]
    notes: list[str] = []
    settings, chosen_by = _settings(run, opts)
    damaged_carbon = recorded_settings(run)[1]
    if damaged_carbon is not None:  # meta.json's carbon block: never applied (reader's door)
        damaged = f"meta.json: its carbon block is damaged ({damaged_carbon}): not used; "
        notes.append(
            damaged + "the run is charged at the region given, with that region's PUE"
            if opts.region is not None
            else with_advice(
                damaged + "no CO2e is charged from it",
                "charge the run at its region: greentrack report RUN_DIR --region REGION "
                "(or whatif), e.g. --region DE",
            )
        )

    # --- energy per channel of every process ---------------------------------------------
    components: list[EnergyItem] = []
    by_stage: dict[str, float] = defaultdict(float)  # kWh of each stage's channels
    server_channels: list[tuple[str, str, str, float]] = []
    shares = acc.device_shares(runs)  # one GPU measured by several ranks: split
    for r in runs:
        totals = dict(live_energy_j) if (r is run and live_energy_j is not None) else r.totals_j()
        prefix = "" if r is run else f"{r.path.name}/"
        duration = r.duration_s
        for ch in r.channels:
            joules = totals.get(ch["id"])
            if joules is None or not math.isfinite(float(joules)):
                notes.append(f"channel {prefix}{ch['id']} has no reading: counted as 0")
                joules = 0.0
            joules = float(joules)
            provenance = str(ch["source"])
            if joules == 0.0 and provenance == "estimated" and r.duration_s > 0:
                notes.append(
                    f"{prefix}{ch['id']}: no CPU time was recorded in "
                    f"{duration_text(r.duration_s)} (the kernel counts it in ticks of about "
                    "10 ms): its estimate is 0, below the resolution of the model, not a "
                    "measured zero"
                )
            method = str(ch.get("method") or "")
            # gaps (counter_trouble) widen the range; a shared GPU is split (accuracy.py)
            ce = acc.channel_energy(
                ch,
                joules,
                provenance,
                summary=r.final,
                duration_s=duration,
                shared_by=shares.get((str(r.path), ch["id"]), 1),
                prefix=prefix,
            )
            # NVML checked against itself: its counter beside its power samples (crosscheck.py)
            live = r is run and live_energy_j is not None  # its timeline lags: not checked
            check = None if live else power_check(r, ch, joules, prefix + str(ch["id"]))
            if check is not None:
                ce = widened(ce, check, shares.get((str(r.path), ch["id"]), 1))
            notes += ce.notes
            joules = ce.joules
            by_stage[_stage(r)] += kwh_from_j(joules)
            components.append(
                EnergyItem(
                    key=prefix + ch["id"],
                    label=str(ch.get("name") or ch["id"]),
                    component=str(ch["component"]),
                    provenance=provenance,
                    method=ce.method,
                    accuracy=ce.accuracy,
                    energy_kwh=ce.energy_kwh,
                    avg_power_w=joules / duration if duration > 0 else None,
                    co2e_g=None,
                )
            )
            server_channels.append((str(ch["component"]), provenance, method, joules))
        if r is not run and not r.complete:
            notes.append(f"part {r.path.name} did not stop cleanly")
        notes += _trouble_notes(r, prefix)
    if not run.complete and live_energy_j is None:
        from greentrack.metadata import utc_iso

        why = (
            "its summary.json cannot be used (below)"
            if run.final is None and run.summary_refused
            else "the process ended without stopping the tracker (killed or crashed)"
        )
        notes.append(
            f"{why}: totals are those of the last timeline row, at {utc_iso(run.end_unix_s)}"
        )
    meter_errors = sum(1 for r in runs for e in r.events if e.get("event") == "meter_error")
    if meter_errors:
        notes.append(
            f"{plural(meter_errors, 'meter read')} failed; affected rows are flagged in the "
            "timeline"
        )
    duration, part_notes = _duration(run, runs)
    notes += part_notes + _missing_ranks(runs)

    # --- federated parts -------------------------------------------------------------------
    fed: FederatedParts | None = None
    parts: list[EnergyItem] = []
    if run.is_federated:
        fed = federated_parts(run, server_channels, opts.network)
        for key in PARTS:
            prov = fed.provenance[key]
            parts.append(
                EnergyItem(
                    key=key,
                    label=key.replace("_", " "),
                    component="network" if key in ("upload", "download") else key,
                    provenance=prov,
                    method=fed.network if key in ("upload", "download") else prov,
                    accuracy="network coefficients: the published range (bundled table)"
                    if key in ("upload", "download")
                    else "per source, as the components",
                    energy_kwh=fed.parts[key],
                    avg_power_w=None,
                    co2e_g=None,
                )
            )
    counted = parts or components
    it_kwh = total(i.energy_kwh for i in counted if i.in_total)
    by_prov: dict[str, float] = defaultdict(float)
    if fed is not None:
        for split in fed.split_kwh.values():
            for prov, kwh in split.items():
                by_prov[prov] += kwh
    else:
        for c in components:
            by_prov[c.provenance] += c.energy_kwh.value
    # the node beside its devices (account/tiers.py): the IT total is the highest tier measured
    tiers, node_notes = (
        node_tiers(run, runs, components, live_energy_j) if fed is None else (None, [])
    )
    notes += node_notes
    if tiers is not None:
        it_kwh = tiers.it_kwh
        by_prov = defaultdict(float, tiers.kwh_by_provenance)
    # a wall meter's correction of the IT total (greentrack calibrate --store): every view
    # sees the corrected figure and its label (account/calibration.py)
    applied = None
    if fed is None and live_energy_j is None and opts.calibrated:
        applied = apply_calibration(run, it_kwh, by_prov)
    if applied is not None:
        notes += applied.notes
        if applied.it_kwh is not None:
            it_kwh = applied.it_kwh
            by_prov = defaultdict(float, applied.kwh_by_provenance)
            if tiers is not None:
                from dataclasses import replace as with_fields

                tiers = with_fields(tiers, it_kwh=it_kwh)

    # --- carbon ----------------------------------------------------------------------------
    curve = combined_curve(runs)
    if fed is not None:  # the whole federated energy in time, not the server's process alone
        curve, placing = _federated_curve(curve, fed, it_kwh.value)
        if placing and opts.series is not None:
            notes.append(placing)
    else:
        curve = with_floor(curve, *_epoch_ends(runs))
    carbon = carbon_basis(settings, chosen_by, opts, curve)
    co2e = charge(it_kwh, carbon)
    co2e_split = (
        {p: co2e_g(kwh, carbon.pue.value, carbon.intensity.value) for p, kwh in by_prov.items()}
        if carbon
        else None
    )
    components = [_with_co2e(c, carbon) for c in components]
    parts = [_with_co2e(p, carbon) for p in parts]
    facility = it_kwh.times(carbon.pue) if carbon else None

    federated = _federated_block(fed, carbon) if fed else None
    gpu_s, gpu_devices = _gpu_s(runs)
    units = _units(runs, curve, carbon, federated, opts.series)
    account = RunAccount(
        run_id=str(run.meta["run_id"]),
        name=run.meta.get("name"),
        project=run.meta.get("project"),
        path=str(run.path),
        kind=_kind(run),
        status="running" if live_energy_j is not None else _status(run, runs),
        complete=run.complete,
        start_utc=str(run.meta["start_utc"]),
        start_unix_s=float(run.meta["start_unix_s"]),
        end_unix_s=max(r.end_unix_s for r in runs),
        duration_s=duration,
        processes=len(processes_of(runs)),
        components=tuple(components),
        parts=tuple(parts),
        it_kwh=it_kwh,
        kwh_by_provenance=dict(by_prov),
        carbon=carbon,
        facility_kwh=facility,
        co2e_g=co2e,
        co2e_g_by_provenance=co2e_split,
        not_counted=tuple(
            (str(b["component"]), str(b["detail"]))
            for b in run.meta.get("boundary", [])
            if b.get("status") == "not counted"
        ),
        phases=tuple(_phases(runs, carbon)),
        spans=tuple(_spans(runs)),
        units=units,
        federated=federated,
        counterfactuals=None,
        notes=tuple(notes),
        curve=curve,
        series=opts.series,
        gpu_s=gpu_s,
        kwh_by_stage=dict(by_stage),
        gpu_devices=gpu_devices,
        tiers=tiers,
        calibration=applied.to_dict() if applied is not None else None,
    )
    damage = [
        f"{'' if r is run else r.path.name + '/'}{d}" for r in runs for d in dict.fromkeys(r.damage)
    ]
    if opts.series_note:
        damage.append(opts.series_note)
    if damage:
        from dataclasses import replace as _replace

        account = _replace(account, notes=(*account.notes, *damage))
    cf = _counterfactuals(account, opts, settings)
    if cf is None:
        return account
    from dataclasses import replace

    return replace(account, counterfactuals=cf)


def _with_run_series(run: Run, opts: AccountOptions) -> AccountOptions:
    """The options with the series the run is charged with, decided here once for every view.

    A series given to the account (a CSV) is used as given. Otherwise the series the run
    directory holds (``intensity.json``, a provider's figures for the run's own hours) is used
    whenever there is one, unless the run is charged at another region than the series': then
    that region's annual figure applies, and a note says so.
    """
    from dataclasses import replace

    from greentrack.carbon.providers.cache import stored
    from greentrack.rundir.format import INTENSITY

    held = stored(run.path)
    if held is None:
        return opts
    if opts.series is not None and not _same_series(opts.series, held.series):
        return opts  # a series of the user's own
    if opts.region is not None and not _same_region(opts.region, run, held.query.region):
        if opts.flexible_start_s is not None or opts.pause_resume is not None:
            raise ValueError(
                f"the run's {held.provider} series ({INTENSITY}) is of {held.query.region}, not "
                f"{opts.region}: Flexible Start and Pause & Resume need a series of "
                f"{opts.region} (--intensity-csv FILE)"
            )
        note = (
            f"the run's {held.provider} series ({INTENSITY}) is of {held.query.region}: the run "
            f"is charged at {opts.region}'s annual figure"
        )
        return replace(opts, series=None, series_note=opts.series_note or note)
    return replace(opts, series=held.series)


def _same_series(a: IntensitySeries, b: IntensitySeries) -> bool:
    """Whether two series hold the same figures (a gap, NaN, equals a gap)."""
    if (a.start_unix_s, a.step_s, a.kind, len(a.values)) != (
        b.start_unix_s,
        b.step_s,
        b.kind,
        len(b.values),
    ):
        return False
    return all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a.values, b.values, strict=True)
    )


def _same_region(region: str, run: Run, series_region: str) -> bool:
    """Whether ``region`` (an override) is the region of the run's stored series: the series'
    own region, or the region the run recorded (which the series was fetched for)."""
    from greentrack.carbon.intensity import resolve_region

    if region.strip().lower() == series_region.strip().lower():
        return True
    recorded = _recorded(run)
    if recorded is None:
        return False
    return bool(resolve_region(region).grid_key == recorded.intensity.grid_key)


def _records(lost: Any) -> str:
    """A count of records in words ("1 record", "3 records"); "records" when the count is
    not known.

    >>> _records(1), _records(3), _records(None)
    ('1 record', '3 records', 'records')
    """
    return plural(lost, "record") if isinstance(lost, int) else "records"


def _trouble_notes(r: Run, prefix: str) -> list[str]:
    """What a run lost: records it could not write, energy counters that failed."""
    from greentrack.metadata import utc_iso

    final = r.final or {}
    out = []
    io = final.get("io_trouble")
    if isinstance(io, dict):
        out.append(
            f"{prefix or 'the run'}: {_records(io.get('records_lost'))} could not be "
            f"written ({io.get('error', 'I/O error')}) between "
            f"{utc_iso(float(io.get('first_unix_s') or 0))} and "
            f"{utc_iso(float(io.get('last_unix_s') or 0))}: the timeline and spans have a "
            "gap there; the totals come from fresh readings at the end"
        )
    # energy counters that failed: acc.channel_energy, with the channel's range and label
    return out


def _recorded(run: Run) -> CarbonSettings | None:
    """The settings the run recorded; ``None`` when it recorded none or they are damaged (a
    region given to greentrack replaces them)."""
    return recorded_settings(run)[0]


def _carbon_shape(block: Any) -> str | None:
    """What is wrong with the shape of ``meta.json``'s carbon block, in words (never a Python
    exception's text), or ``None``: ``intensity`` and ``pue`` objects whose figures are
    numbers (not text such as ``"300"``, not ``true``, which Python would take as 1)."""
    from greentrack.safeload import shown

    if not block:
        return None
    if not isinstance(block, dict):
        return "it is not an object"
    for key, figure in (("intensity", "gco2e_per_kwh"), ("pue", "pue")):
        part = block.get(key)
        if not isinstance(part, dict):
            return f"its field {key!r} is not an object" if key in block else None
        value = part.get(figure)
        if figure in part and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"its {key}.{figure} is {shown(value)}, not a number"
    return None


def recorded_settings(run: Run) -> tuple[CarbonSettings | None, str | None]:
    """The carbon settings ``meta.json`` recorded, checked where the account reads them:
    ``(settings, None)``, ``(None, None)`` for a run that recorded none, or ``(None, why)``
    for a damaged block (a field missing or of the wrong type, an intensity outside 0 to
    :data:`~greentrack.carbon.intensity.MAX_GCO2E_PER_KWH` gCO2e/kWh, a PUE outside 1 to 5):
    it is never applied, and the account says so."""
    from greentrack.carbon.intensity import MAX_GCO2E_PER_KWH
    from greentrack.carbon.pue import validate_pue
    from greentrack.errors import RunFormatError

    block: Any = run.meta.get("carbon")
    shape = _carbon_shape(block)
    if shape is not None:
        return None, shape
    try:
        settings = settings_from_meta(run.meta)
    except (RunFormatError, AttributeError, TypeError, ValueError, KeyError) as e:
        cause = e.__cause__ if isinstance(e, RunFormatError) and e.__cause__ else e
        if isinstance(cause, KeyError):
            return None, f"its field {cause} is missing"
        return None, "a field is not of its type"
    if settings is None:
        return None, None if block in (None, {}) else "it holds no intensity and PUE"
    grid = settings.intensity
    value = grid.gco2e_per_kwh
    if not (math.isfinite(value) and 0 <= value <= MAX_GCO2E_PER_KWH):
        return None, (
            f"an intensity of {value:.6g} gCO2e/kWh, "  # raw value
            f"not one from 0 to {num(MAX_GCO2E_PER_KWH)}"
        )
    try:
        validate_pue(settings.pue.value)
    except (TypeError, ValueError):
        return None, f"a PUE of {settings.pue.value:.6g}, not one from 1.0 to 5.0"  # raw value
    i, p = block["intensity"], block["pue"]
    texts = [(k, i.get(k)) for k in ("region", "name", "basis", "source", "source_id", "licence")]
    texts += [("pue.source", p.get("source")), ("pue.note", p.get("note", ""))]
    texts += [("region_chosen_by", block.get("region_chosen_by", ""))]
    years = [("year", i.get("year")), ("pue.year", p.get("year"))]
    wrong = [k for k, v in texts if not isinstance(v, str)]
    wrong += [k for k, v in years if v is not None and (type(v) is not int or not 0 < v < 10000)]
    wrong += [] if i.get("grid_key") is None or isinstance(i["grid_key"], str) else ["grid_key"]
    wrong += [] if grid.kind in ("average", "marginal") else ["kind"]
    if wrong:
        return None, f"its field {wrong[0]!r} is not of its type"
    return settings, None


def _settings(run: Run, opts: AccountOptions) -> tuple[CarbonSettings | None, str | None]:
    """The carbon settings to apply: given to the account, else recorded by the run. An
    override changes only what it names: another region keeps the run's PUE, another PUE keeps
    the run's region."""
    if opts.region is not None:
        given = resolve_settings(opts.region, pue=opts.pue)
        recorded = _recorded(run) if opts.pue is None else None
        if given is not None and recorded is not None:
            return (
                CarbonSettings(given.intensity, recorded.pue, given.how_chosen),
                "given to greentrack (PUE as the run recorded)",
            )
        return given, "given to greentrack"
    recorded = _recorded(run)
    if recorded is not None and opts.pue is not None:
        from greentrack.carbon.pue import resolve_pue

        return (
            CarbonSettings(
                recorded.intensity, resolve_pue(opts.pue, recorded.intensity), recorded.how_chosen
            ),
            f"{recorded.how_chosen} (PUE given to greentrack)",
        )
    if recorded is None and opts.pue is not None:
        raise ValueError(
            f"{run.path} recorded no region: --pue needs --region too (e.g. --region DE)"
        )
    if recorded is None and opts.series is not None:
        return None, None
    return recorded, (recorded.how_chosen if recorded else None)


def carbon_basis(
    settings: CarbonSettings | None,
    chosen_by: str | None,
    opts: AccountOptions,
    curve: EnergyCurve | None,
) -> CarbonBasis | None:
    """The basis of ``settings`` (annual), or ``opts.series`` weighted by ``curve``."""
    if settings is None and opts.series is None:
        return None
    from greentrack.account.accuracy import pue_bounds

    if settings is not None:
        p = settings.pue
        pue = Figure(p.value, *pue_bounds(p.value, p.source))
        pue_source, pue_year = p.source, p.year
    else:
        pue, pue_source, pue_year = Figure.exact(1.0), "not given (1.0 applied)", None
    i = settings.intensity if settings else None
    descr: dict[str, Any] = {
        "region": i.region if i else None,
        "region_name": i.name if i else None,
        "year": i.year if i else None,
        "basis": i.basis if i else None,
        "source": i.source.cite() if i else None,
        "licence": i.source.licence if i else None,
        "chosen_by": chosen_by,
        "pue": pue,
        "pue_source": pue_source,
        "pue_year": pue_year,
        "annual_gco2e_per_kwh": i.gco2e_per_kwh if i else None,
    }
    if opts.series is not None and curve is not None:
        from greentrack.carbon.series import weighted_intensity

        fill = opts.fill_gaps == "annual"
        if fill and i is None:
            raise ValueError(
                "--fill-gaps annual needs a region for the annual figure (--region ...)"
            )
        w = weighted_intensity(
            curve,
            opts.series,
            gaps="annual" if fill else "error",
            annual_gco2e_per_kwh=i.gco2e_per_kwh if (fill and i) else None,
        )
        a = acc.SERIES_INTENSITY
        value = w.weighted_gco2e_per_kwh if math.isfinite(w.weighted_gco2e_per_kwh) else 0.0
        intensity = Figure.relative(value, a.low, a.high)
        accuracy = a.basis
        if w.filled_kwh > 0 and w.energy_kwh > 0 and w.fill_gco2e_per_kwh is not None:
            # energy weighted at the annual figure carries the annual figure's accuracy
            filled = w.filled_kwh * w.fill_gco2e_per_kwh / w.energy_kwh  # its part of the mean
            own = value - filled
            annual = acc.ANNUAL_INTENSITY
            intensity = Figure(
                value, own * a.low + filled * annual.low, own * a.high + filled * annual.high
            )
            accuracy = f"{a.basis}; for the energy outside the series: {annual.basis}"
        return CarbonBasis(
            method="series",
            kind=opts.series.kind,
            intensity=intensity,
            intensity_accuracy=accuracy,
            series=w.to_dict(),
            **descr,
        )
    assert i is not None
    a = acc.EXPLICIT_INTENSITY if i.region == "explicit" else acc.ANNUAL_INTENSITY
    return CarbonBasis(
        method="annual",
        kind=i.kind,
        intensity=Figure.relative(i.gco2e_per_kwh, a.low, a.high),
        intensity_accuracy=a.basis,
        **descr,
    )


def charge(it_kwh: Figure, carbon: CarbonBasis | None) -> Figure | None:
    """CO2e of ``it_kwh``: value by the formula, bounds by interval arithmetic."""
    if carbon is None:
        return None
    return co2e_figure(it_kwh, carbon.pue, carbon.intensity)


def _with_co2e(item: EnergyItem, carbon: CarbonBasis | None) -> EnergyItem:
    from dataclasses import replace

    return replace(item, co2e_g=charge(item.energy_kwh, carbon))


def _kind(run: Run) -> str:
    if run.meta.get("fl_role") == "server" or run.is_federated:
        return "federated"
    frame = run.spans
    names = set(frame["name"]) if not frame.empty else set()
    if run.meta.get("framework") in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        return "training"
    return "training" if "fit" in names or "train_epoch" in names else "run"


def _status(run: Run, runs: list[Run]) -> str:
    """The status of the last segment's first rank (a resumed run that finished is
    ``finished``, whatever its first segment ended with)."""
    last = max(runs, key=lambda r: (r.segment, -_rank(r)))
    return last.status


def _rank(r: Run) -> int:
    return int((r.meta.get("part") or {}).get("rank", 0))


def processes_of(runs: Sequence[Run]) -> frozenset[tuple[str, int]]:
    """The run's processes, counted one way for every view: one per distinct (host, rank)
    over its root and parts. A stage (fit, test, predict) or a resumed segment on the same
    host and rank is the same process, not a new one."""
    return frozenset(
        (str((r.meta.get("host") or {}).get("hostname") or ""), _rank(r)) for r in runs
    )


def _missing_ranks(runs: list[Run]) -> list[str]:
    """Ranks a segment's parts say the job had, but which left no run directory."""
    expected: dict[int, int] = {}
    present: dict[int, set[int]] = {}
    for r in runs:
        part = r.meta.get("part") or {}
        seg = r.segment
        world = part.get("world_size")
        if isinstance(world, int) and world > 0:
            expected[seg] = max(expected.get(seg, 0), world)
        present.setdefault(seg, set()).add(_rank(r))
    out = []
    for seg, world in sorted(expected.items()):
        missing = sorted(set(range(world)) - present.get(seg, set()))
        if missing:
            one = len(missing) == 1
            out.append(
                with_advice(
                    f"segment {seg}: {'rank' if one else 'ranks'} {', '.join(map(str, missing))} "
                    f"of {world} left no run directory (not started, killed before starting, "
                    f"or written on another host); {'its' if one else 'their'} energy is not "
                    "counted",
                    "parts written on another host join the run with `greentrack merge`",
                )
            )
    return out


def _duration(run: Run, runs: list[Run]) -> tuple[float, list[str]]:
    """Ranks of one segment overlap (a segment lasts the wall time its ranks cover, the union
    of their spans); segments add. Gaps between segments are not counted and are noted."""
    if len(runs) == 1:
        return run.duration_s, []
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    bounds: dict[int, tuple[float, float]] = {}
    for r in runs:
        seg = r.segment
        spans[seg].append((r.start_unix_s, r.start_unix_s + max(r.duration_s, 0.0)))
        start = float(r.meta["start_unix_s"])
        lo, hi = bounds.get(seg, (start, r.end_unix_s))
        bounds[seg] = (min(lo, start), max(hi, r.end_unix_s))
    notes = []
    leaders = {r.segment: r for r in sorted(runs, key=lambda r: -_rank(r))}
    if len(leaders) > 1:  # the status of each segment, in order: the history of the job
        notes.append(
            "segments: "
            + "; ".join(
                f"{seg} {_stage(leaders[seg])} {leaders[seg].status}".replace("  ", " ")
                for seg in sorted(leaders)
            )
        )
    for a, b in itertools.pairwise(sorted(bounds)):
        gap = bounds[b][0] - bounds[a][1]
        stage_a, stage_b = _stage(leaders.get(a)), _stage(leaders.get(b))
        if stage_b and (stage_b != stage_a or stage_b not in TRAINING_STAGES):
            # another stage of the job (test after fit), not a training that resumed
            notes.append(
                f"segment {b} ({stage_b}) started {gap:.1f} s after segment {a}"
                f"{f' ({stage_a})' if stage_a else ''} ended (the time between is not counted)"
            )
        else:
            notes.append(f"segment {b} resumed {gap:.1f} s after segment {a} ended (not counted)")
    return sum(union_s(v) for v in spans.values()), notes


TRAINING_STAGES = ("fit", "train")
"""Stages whose later segments are resumes of the same training."""


def _stage(r: Run | None) -> str:
    """The stage a segment ran (``fit``, ``test``; ``train``, ``inference``), or ``""``."""
    part = r.meta.get("part") if r is not None else None
    stage = part.get("stage") if isinstance(part, dict) else None
    return stage if isinstance(stage, str) else ""


def _span_rows(r: Run) -> list[dict[str, Any]]:
    frame = r.spans
    if frame.empty:
        return []
    return list(frame.sort_values("start_unix_s", kind="stable").to_dict("records"))


def _split_span(row: Mapping[str, Any], sources: Mapping[str, str]) -> tuple[float, float]:
    measured = estimated = 0.0
    for cid, src in sources.items():
        v = row.get(f"energy_j.{cid}")
        if v is None or not math.isfinite(float(v)):
            continue
        if src == "measured":
            measured += float(v)
        else:
            estimated += float(v)
    return measured, estimated


def _spans(runs: list[Run]) -> list[dict[str, Any]]:
    """The spans of rank 0 in every segment (the job's timeline of phases), with their depth
    and energy measured and estimated (kWh) of that rank; ids of later segments are prefixed
    with their part's name."""
    out = []
    leaders = sorted((r for r in runs if _rank(r) == 0), key=lambda r: r.segment)
    for r in leaders:
        out += _run_spans(r, "" if r is runs[0] else f"{r.path.name}/")
    return out


def _run_spans(run: Run, prefix: str) -> list[dict[str, Any]]:
    sources = {ch["id"]: ch["source"] for ch in run.channels}
    depth: dict[str, int] = {}
    out = []
    for row in _span_rows(run):
        parent = row["parent_id"] if isinstance(row["parent_id"], str) else None
        depth[row["span_id"]] = depth.get(parent, -1) + 1 if parent else 0
        measured, estimated = _split_span(row, sources)
        out.append(
            {
                "span_id": prefix + row["span_id"],
                "parent_id": prefix + parent if parent else None,
                "segment": run.segment,
                "name": row["name"],
                "tags": dict(row["tags"]) if isinstance(row["tags"], dict) else {},
                "depth": depth[row["span_id"]],
                "start_unix_s": float(row["start_unix_s"]),
                "end_unix_s": float(row["end_unix_s"]),
                "duration_s": float(row["duration_s"]),
                "status": row["status"],
                "measured_kwh": kwh_from_j(measured),
                "estimated_kwh": kwh_from_j(estimated),
            }
        )
    return out


def _phases(runs: list[Run], carbon: CarbonBasis | None) -> list[dict[str, Any]]:
    """Energy by span name over every process, in order of first appearance; ``depth`` is
    the nesting level of the name's first span (phases nest: fit > train_epoch > validation).
    ``duration_s`` is wall time (the union of the processes' spans of that name: ranks overlap);
    ``rank_s`` the sum over processes (rank-seconds)."""
    by_name: dict[str, dict[str, Any]] = {}
    spans_of: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        sources = {ch["id"]: ch["source"] for ch in r.channels}
        depth: dict[str, int] = {}
        for row in _span_rows(r):
            parent = row["parent_id"] if isinstance(row["parent_id"], str) else None
            depth[row["span_id"]] = depth.get(parent, -1) + 1 if parent else 0
            measured, estimated = _split_span(row, sources)
            p = by_name.setdefault(
                row["name"],
                {
                    "name": row["name"],
                    "depth": depth[row["span_id"]],
                    "count": 0,
                    "duration_s": 0.0,
                    "rank_s": 0.0,
                    "measured_kwh": 0.0,
                    "estimated_kwh": 0.0,
                },
            )
            p["count"] += 1
            p["rank_s"] += float(row["duration_s"])
            p["measured_kwh"] += kwh_from_j(measured)
            p["estimated_kwh"] += kwh_from_j(estimated)
            spans_of.setdefault(row["name"], []).append(
                (float(row["start_unix_s"]), float(row["end_unix_s"]))
            )
    for name, p in by_name.items():
        p["duration_s"] = union_s(spans_of[name])
        p["energy_kwh"] = p["measured_kwh"] + p["estimated_kwh"]
        f = charge(Figure.exact(p["energy_kwh"]), carbon)
        p["co2e_g"] = f.value if f else None
    return list(by_name.values())


def union_s(intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``(start, end)`` intervals.

    >>> union_s([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)])
    4.0
    """
    covered = 0.0
    end = -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        covered += b - max(a, end)
        end = b
    return covered


def _gpu_s(runs: list[Run]) -> tuple[float, int]:
    """GPU device-seconds the run used and how many GPUs: for each GPU (by UUID, else host
    and channel), the union of the times of the processes (ranks, segments) that measured
    it."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in runs:
        host = str((r.meta.get("host") or {}).get("hostname") or "")
        start = r.start_unix_s
        end = max(start, start + r.duration_s)
        for ch in r.channels:
            if ch.get("component") != "gpu":
                continue
            details = ch.get("details") if isinstance(ch.get("details"), dict) else {}
            device = str((details or {}).get("uuid") or f"{host}/{ch['id']}")
            spans[device].append((start, end))
    return sum(union_s(v) for v in spans.values()), len(spans)


def _co2e_upto(
    curve: EnergyCurve,
    end_unix_s: float,
    carbon: CarbonBasis | None,
    kwh: float,
    series: IntensitySeries | None,
) -> float | None:
    """CO2e of the run's energy up to ``end_unix_s`` (series: weighted by those hours)."""
    if carbon is None:
        return None
    g = carbon.intensity.value
    if carbon.method == "series" and series is not None and kwh > 0:
        from greentrack.carbon.series import IntensitySeriesError, weighted_intensity

        try:
            g = weighted_intensity(truncated(curve, end_unix_s), series).weighted_gco2e_per_kwh
        except IntensitySeriesError:  # a gap in those hours: the run's weighted figure
            g = carbon.intensity.value
    return co2e_g(kwh, carbon.pue.value, g)


def _units(
    runs: list[Run],
    curve: EnergyCurve,
    carbon: CarbonBasis | None,
    federated: Mapping[str, Any] | None,
    series: IntensitySeries | None,
) -> dict[str, Any] | None:
    """Energy per epoch (training runs, every rank and segment) or per round (federated)."""
    if federated:
        rows = []
        for r in federated["per_round"]:
            f = charge(Figure.exact(r["total_kwh"]), carbon)
            c = charge(Figure.exact(r["cumulative_kwh"]), carbon)
            rows.append(
                {
                    "index": r["round"],
                    "duration_s": r["duration_s"],
                    "end_unix_s": r["end_unix_s"],
                    "energy_kwh": r["total_kwh"],
                    "cumulative_kwh": r["cumulative_kwh"],
                    "co2e_g": f.value if f else None,
                    "cumulative_co2e_g": c.value if c else None,
                }
            )
        return {"unit": "round", "rows": rows}
    epochs: dict[tuple[int, int], dict[str, Any]] = {}
    for r in runs:
        seg = r.segment
        for row in _span_rows(r):
            epoch = row["tags"].get("epoch") if isinstance(row["tags"], dict) else None
            if row["name"] != "train_epoch" or not isinstance(epoch, int):
                continue
            e = epochs.setdefault(
                (seg, epoch),
                {"index": epoch, "segment": seg, "duration_s": 0.0, "energy_j": 0.0, "end": 0.0},
            )
            e["duration_s"] = max(e["duration_s"], float(row["duration_s"]))
            e["energy_j"] += float(row["energy_j"])
            e["end"] = max(e["end"], float(row["end_unix_s"]))
    if not epochs:
        return None
    out = []
    for key in sorted(epochs, key=lambda k: (epochs[k]["end"], k)):
        e = epochs[key]
        kwh = kwh_from_j(e["energy_j"])
        cumulative = kwh_from_j(float(curve.energy_between(curve.start, e["end"])))
        f = charge(Figure.exact(kwh), carbon)
        out.append(
            {
                "index": e["index"],
                "segment": e["segment"],
                "duration_s": e["duration_s"],
                "end_unix_s": e["end"],
                "energy_kwh": kwh,
                "cumulative_kwh": cumulative,
                "co2e_g": f.value if f else None,
                "cumulative_co2e_g": _co2e_upto(curve, e["end"], carbon, cumulative, series),
            }
        )
    return {"unit": "epoch", "rows": out}


def _epoch_ends(runs: list[Run]) -> tuple[list[float], list[float]]:
    """The end (UTC s) and energy (J) of every process's ``train_epoch`` span: by an epoch's
    end the run's cumulative energy is at least that of the epochs ended by then."""
    ends: list[float] = []
    joules: list[float] = []
    for r in runs:
        for row in _span_rows(r):
            energy = float(row.get("energy_j") or 0.0)
            if row["name"] == "train_epoch" and math.isfinite(energy) and energy > 0:
                ends.append(float(row["end_unix_s"]))
                joules.append(energy)
    return ends, joules


def _federated_curve(
    server: EnergyCurve, fed: FederatedParts, it_kwh: float
) -> tuple[EnergyCurve, str | None]:
    """The federated total over time: the server's part along its own curve, each round's
    clients and network over the round's span (``fl.jsonl`` rows carry their round, the
    server's ``round`` span its window). Energy of rounds without a span follows the server's
    curve; the note says so."""
    windows: list[tuple[float, float, float]] = []
    unplaced_rounds = 0
    placed_j = 0.0
    for row in fed.per_round:
        joules = (row["client_kwh"] + row["upload_kwh"] + row["download_kwh"]) * J_PER_KWH
        end, duration = row["end_unix_s"], row["duration_s"]
        if end is None or duration is None:
            unplaced_rounds += joules > 0
            continue
        windows.append((float(end) - float(duration), float(end), joules))
        placed_j += joules
    server_j = fed.parts["server"].value * J_PER_KWH
    unplaced_j = max(0.0, it_kwh * J_PER_KWH - server_j - placed_j)
    note = None
    if unplaced_j > 0 and (unplaced_rounds or not windows):
        what = (
            f"{plural(unplaced_rounds, 'round')} "
            + ("has" if unplaced_rounds == 1 else "have")
            + " no round span"
            if unplaced_rounds
            else "the replies could not be placed in time"
        )
        note = (
            f"{what}: {quantity(kwh_from_j(unplaced_j), ENERGY)} of client and network energy is "
            "weighted by the series along the server process's own curve"
        )
    return placed_curve(server, server_j, windows, unplaced_j), note


def _federated_block(fed: FederatedParts, carbon: CarbonBasis | None) -> dict[str, Any]:
    total_kwh = fed.total_kwh
    apart = fed.network_apart
    return {
        "rounds": fed.rounds,
        "client_replies": fed.client_replies,
        "unmeasured_replies": fed.unmeasured_replies,
        "upload_bytes": fed.upload_bytes,
        "download_bytes": fed.download_bytes,
        "network": fed.network,
        "parts": [
            {
                "part": key,
                "energy_kwh": fed.parts[key].to_dict(),
                "share": fed.parts[key].value / total_kwh.value if total_kwh.value else 0.0,
                "provenance": fed.provenance[key],
                "co2e_g": _plain(charge(fed.parts[key], carbon)),
            }
            for key in PARTS
        ],
        "total_kwh": total_kwh.to_dict(),
        "co2e_g": _plain(charge(total_kwh, carbon)),
        "network_apart_kwh": apart.to_dict() if apart else None,
        "network_apart_co2e_g": _plain(charge(apart, carbon)) if apart else None,
        "co_located_replies": fed.co_located_replies,
        "in_process_replies": fed.in_process_replies,
        "per_round": fed.per_round,
        "notes": list(fed.notes),
    }


def _counterfactuals(
    account: RunAccount, opts: AccountOptions, settings: CarbonSettings | None
) -> dict[str, Any] | None:
    """Other regions (annual intensities) and, with a series, Flexible Start and Pause &
    Resume. Their baseline is the account's CO2e: shifting and pausing move the run's whole
    energy by the saving they find on its energy curve."""
    from greentrack.account import counterfactual as cf
    from greentrack.carbon.intensity import resolve_region

    keys = DEFAULT_REGIONS if opts.regions is None else tuple(opts.regions)
    carbon = account.carbon
    pue = carbon.pue.value if carbon else 1.0
    out: dict[str, Any] = {
        "pue": pue,
        "assumption": "the run's power profile is unchanged by moving, shifting or pausing it",
        "baseline_co2e_g": account.co2e_g.value if account.co2e_g else None,
        "regions": [],
        "flexible_start": None,
        "pause_resume": None,
    }
    it = account.it_kwh
    if keys:
        grids = [resolve_region(k) for k in keys]
        if settings is not None and settings.intensity.grid_key not in {g.grid_key for g in grids}:
            grids.append(settings.intensity)
        actual = settings.intensity.region if settings else None
        annual = carbon is not None and carbon.method == "annual"
        for row in cf.regions(it.value, pue, grids):
            d = row.to_dict()
            d["own_region"] = row.region == actual
            d["actual"] = annual and row.region == actual
            if d["actual"] and account.co2e_g is not None:
                d["co2e_g"] = account.co2e_g.value  # the same figure, not a second computation
            out["regions"].append(d)
    series = opts.series
    baseline = account.co2e_g.value if account.co2e_g else None
    if series is not None and baseline is not None:
        if opts.flexible_start_s is not None:
            fs = cf.flexible_start(account.curve, series, opts.flexible_start_s, pue=pue)
            d = fs.to_dict()
            d.update(
                actual_co2e_g=baseline,
                co2e_g=baseline * (1.0 - fs.saving),
                worst_co2e_g=baseline * (fs.worst_co2e_g / fs.actual_co2e_g)
                if fs.actual_co2e_g
                else baseline,
            )
            out["flexible_start"] = d
        if opts.pause_resume is not None:
            pr = cf.pause_resume(account.curve, series, opts.pause_resume, pue=pue)
            d = pr.to_dict()
            d.update(actual_co2e_g=baseline, co2e_g=baseline * (1.0 - pr.saving))
            out["pause_resume"] = d
    has_any = out["regions"] or out["flexible_start"] or out["pause_resume"]
    return out if has_any else None


def cumulative(account: RunAccount) -> tuple[Any, Any, Any]:
    """``(t_unix_s, it_kwh, co2e_g)`` arrays of the run's cumulative IT energy and CO2e, ending
    exactly at the account's totals (``co2e_g`` is ``None`` without a carbon basis).

    A federated run rises over each round by that round's total (clients, server and network
    of the round, spread over the round's span); other runs follow their energy curve,
    weighted interval by interval by the series when there is one (Dodge et al.), else at the
    annual intensity.
    """
    import numpy as np

    carbon = account.carbon
    if account.federated and account.units:
        points = [(account.start_unix_s, 0.0)]
        previous = 0.0
        for r in account.units["rows"]:
            if r["end_unix_s"] is None:
                continue
            start = r["end_unix_s"] - (r["duration_s"] or 0.0)
            if start > points[-1][0]:
                points.append((start, previous))
            if r["end_unix_s"] > points[-1][0]:
                points.append((r["end_unix_s"], r["cumulative_kwh"]))
            previous = r["cumulative_kwh"]
        t = np.array([p[0] for p in points], dtype=float)
        kwh = np.array([p[1] for p in points], dtype=float)
    else:
        curve = account.curve
        t = np.asarray(curve.t_unix_s, dtype=float)
        kwh = np.asarray(curve.energy_j, dtype=float) / J_PER_KWH
    if len(kwh) and kwh[-1] > 0:
        kwh = kwh * (account.it_kwh.value / kwh[-1])  # the account's total, exactly
    if carbon is None or account.co2e_g is None:
        return t, kwh, None
    intensity = np.full(max(len(t) - 1, 0), carbon.intensity.value)
    series = account.series
    if carbon.method == "series" and series is not None and len(t) > 1:
        mid = (t[1:] + t[:-1]) / 2
        k = np.floor((mid - series.start_unix_s) / series.step_s).astype(int)
        inside = (k >= 0) & (k < len(series.values))
        values = np.asarray(series.values, dtype=float)[np.clip(k, 0, len(series.values) - 1)]
        ok = inside & ~np.isnan(values)
        intensity = np.where(ok, values, carbon.intensity.value)
    steps = np.array(
        [
            co2e_g(float(e), carbon.pue.value, float(g))
            for e, g in zip(np.diff(kwh), intensity, strict=True)
        ]
    )
    grams = np.concatenate([[0.0], np.cumsum(steps)])
    if grams[-1] > 0:
        grams = grams * (account.co2e_g.value / grams[-1])
    return t, kwh, grams
