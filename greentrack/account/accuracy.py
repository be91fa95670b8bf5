"""How accurate each source of a figure is: the relative bounds behind every range.

Each entry is a factor pair (low, high) applied to the figure the source gives, with where
the bound comes from. docs/methodology.md ("Ranges") cites each one and says which are
published accuracies and which are greentrack's stated assumptions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greentrack.account.figures import Figure
from greentrack.numbers import duration, num, quantity
from greentrack.rundir.checks import MAX_CHANNEL_W
from greentrack.units import kwh_from_j

if TYPE_CHECKING:
    from greentrack.rundir.reader import Run


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


MEASURED: tuple[Accuracy, ...] = (NVML, NVML_AVERAGED, RAPL)

# --- accelerators beyond NVML (docs/methodology.md, "Other accelerators") -------------------
AMD_SMI = Accuracy(
    0.9,
    1.1,
    "AMD SMI energy accumulator or socket power (amdgpu hwmon alike): AMD publishes no accuracy; "
    "McDaniel et al. (arXiv 2604.06056, 2026) find power rebuilt from the MI250X/MI300A "
    "counters agrees with off-chip Cray PM sensors; +/-10% is greentrack's stated bound",
)
AMD_AVERAGED = Accuracy(
    0.85,
    1.15,
    "AMD firmware-averaged socket power, sampled and integrated: averaged over a window the "
    "driver does not state; +/-15% is greentrack's stated bound",
)
INTEL_HWMON = Accuracy(
    0.9,
    1.1,
    "Intel xe/i915 hwmon energy: the GPU power controller's energy counter, a model as RAPL is; "
    "Intel publishes no accuracy; +/-10% is greentrack's stated bound, as for RAPL",
)
JETSON_RAIL = Accuracy(
    0.95,
    1.05,
    "Jetson INA3221 board rail (TI datasheet SBOS576: gain error 0.25% max, shunt offset "
    "+/-80 uV max), sampled and integrated; +/-5% is greentrack's stated bound",
)
APPLE_MODEL = Accuracy(
    0.8,
    1.2,
    "Apple IOReport Energy Model / powermetrics: on-chip model-based estimates (Zeus "
    "documentation); Apple publishes no accuracy; +/-20% is greentrack's stated bound",
)


def _accelerator_methods() -> dict[str, Accuracy]:
    """The method labels of the AMD, Intel, Jetson, Apple and MIG channels, as the meters write
    them (a die's or a MIG slice's share keeps the accuracy of the reading it divides)."""
    from greentrack.meters import amd, apple, intel, jetson, nvml

    out: dict[str, Accuracy] = {}
    for method, accuracy in (
        (amd.SMI_ENERGY, AMD_SMI),
        (f"integral of {amd.SMI_POWER}", AMD_SMI),
        (f"integral of {amd.SMI_POWER_AVERAGE}", AMD_AVERAGED),
        (amd.HWMON_ENERGY, AMD_SMI),
        (f"integral of {amd.HWMON_POWER}", AMD_SMI),
        (f"integral of {amd.HWMON_POWER_AVERAGE}", AMD_AVERAGED),
    ):
        out[method] = out[method + amd.SHARED] = accuracy
    for method in (nvml.ENERGY_COUNTER, f"integral of {nvml.POWER_INSTANT}"):
        out[method + nvml.MIG_SHARE] = NVML
    out[f"integral of {nvml.POWER_USAGE}{nvml.MIG_SHARE}"] = NVML_AVERAGED
    out[intel.CARD_ENERGY] = out[intel.PACKAGE_ENERGY] = INTEL_HWMON
    out[f"integral of {jetson.RAIL_POWER}"] = JETSON_RAIL
    out[f"integral of {jetson.RAIL_POWER_FILE}"] = JETSON_RAIL
    out[apple.IOREPORT_ENERGY] = out[apple.POWERMETRICS_ENERGY] = APPLE_MODEL
    return out


ENERGY_METHODS.update(_accelerator_methods())
MEASURED = (*MEASURED, AMD_SMI, AMD_AVERAGED, INTEL_HWMON, JETSON_RAIL, APPLE_MODEL)


def widest(methods: list[str], provenance: str) -> Accuracy:
    """The widest accuracy among ``methods`` that can give energy of ``provenance`` (a
    counter for measured energy, a model for estimated); the provenance's own bound when
    none does.

    >>> widest(["nvml-total-energy-counter", "tdp-x-utilisation"], "estimated").basis[:3]
    'CPU'
    """
    if provenance == "modeled":
        return PROFILE_MODEL
    measured = provenance == "measured"
    found = [
        energy_accuracy(m, provenance)
        for m in methods
        if (ENERGY_METHODS.get(m) in MEASURED) == measured or m not in ENERGY_METHODS
    ]
    if not found:
        return UNKNOWN_MEASURED if measured else UNKNOWN_ESTIMATED
    if len(found) == 1:
        return found[0]
    low = min(f.low for f in found)
    high = max(f.high for f in found)
    return next(
        (f for f in found if (f.low, f.high) == (low, high)),
        Accuracy(low, high, "; ".join(dict.fromkeys(f.basis for f in found))),
    )


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


# --- gaps and shared devices: what one channel of one process counts ---------------------------

DEVICE_MAX_W = MAX_CHANNEL_W
"""The most one device (a GPU board, a CPU package) is taken to draw: a recorded power limit or
an average above it is damage, bounded here so that a gap's range stays finite (the reader's
bound on what a channel reads back, :data:`greentrack.rundir.checks.MAX_CHANNEL_W`)."""

GAP_ASSUMED_PEAK = 2.0
"""Without a power limit in the channel's details, the most a device is taken to draw in a gap:
this many times its average power over the time that was read (greentrack's assumption)."""


@dataclass(frozen=True, slots=True)
class ChannelEnergy:
    """A channel's energy as the account counts it: ``joules`` (after a shared device's split),
    its ``energy_kwh`` range, the ``method`` label (with the gaps and the split said), the
    ``accuracy`` basis and ``notes`` for the account."""

    joules: float
    energy_kwh: Figure
    method: str
    accuracy: str
    notes: tuple[str, ...]


def channel_energy(
    channel: Mapping[str, Any],
    joules: float,
    provenance: str,
    *,
    summary: Mapping[str, Any] | None = None,
    duration_s: float = 0.0,
    shared_by: int = 1,
    prefix: str = "",
) -> ChannelEnergy:
    """What a channel counts: ``joules`` read with the accuracy of its method, widened over the
    intervals it has no reading for, and split when ``shared_by`` processes measured one device.

    ``summary`` is the run's ``summary.json``; the channel's entry of its ``counter_trouble``
    (written by :meth:`greentrack.ledger.EnergyLedger.counter_trouble`) says its gaps: joules
    bridged from power carry the accuracy of that power method; seconds with no reading
    (``uncovered_s``) add nothing to the value and from 0 (the device may have drawn nothing)
    to its power limit x those seconds to the range (docs/methodology.md, "Gaps"). The label
    then says ``N s missing``: a missing interval is never called measured.

    >>> ch = {"id": "gpu0", "method": "nvml-total-energy-counter",
    ...       "details": {"power_limit_w": 700.0}}
    >>> gap = {"how": "power-gaps", "uncovered_s": 3.0}
    >>> e = channel_energy(ch, 1000.0, "measured", summary={"counter_trouble": {"gpu0": gap}})
    >>> from greentrack.units import j_from_kwh
    >>> round(j_from_kwh(e.energy_kwh.low)), round(j_from_kwh(e.energy_kwh.high)), e.method
    (950, 3150, 'nvml-total-energy-counter; 3 s missing (not covered)')
    """
    cid = f"{prefix}{channel.get('id')}"
    joules = _float(joules)
    method = str(channel.get("method") or "")
    a = energy_accuracy(method, provenance)
    basis, label, notes = a.basis, method, []
    counted = Figure.relative(joules, a.low, a.high)
    record = summary.get("counter_trouble") if isinstance(summary, Mapping) else None
    t = record.get(channel.get("id")) if isinstance(record, Mapping) else None
    t = t if isinstance(t, Mapping) else None
    if t is not None:
        how = t.get("how")
        # a record of what was missing, read back: never more than the run or the channel held
        longest = duration_s if duration_s > 0 else math.inf
        seconds = min(_float(t.get("seconds")), longest)
        bridged_j = min(_float(t.get("bridged_j")), joules) if how == "bridged" else 0.0
        uncovered = min(
            _float(t.get("uncovered_s", seconds if how == "missing" else 0.0)), seconds or longest
        )
        if how == "bridged":
            b = energy_accuracy(str(t.get("method") or ""), provenance)
            counted = Figure.relative(joules - bridged_j, a.low, a.high) + Figure.relative(
                bridged_j, b.low, b.high
            )
            bridged_s = min(_float(t.get("bridged_s", max(seconds - uncovered, 0.0))), seconds)
            notes.append(
                f"{cid}: the energy counter failed for the last {seconds:.1f} s; "
                f"{quantity(kwh_from_j(bridged_j))} of that time are bridged from power "
                f"readings ({t.get('method')}, {bridged_s:.1f} s)"
                + (f"; {uncovered:.1f} s have no reading at all" if uncovered > 0 else "")
            )
            label = f"{method}; {duration(seconds)} missing ({duration(bridged_s)} bridged"
            label += " from power"
            label += f", {duration(uncovered)} not covered)" if uncovered > 0 else ")"
            basis += f"; bridged from power: {b.basis}"
        elif how == "missing":
            notes.append(
                f"{cid}: the energy counter failed for the last {seconds:.1f} s; its energy in "
                "that time is missing (not counted)"
            )
            label = f"{method}; {duration(uncovered)} missing (not covered)"
        elif how == "power-gaps" and uncovered > 0:
            notes.append(
                f"{cid}: its power readings failed; {uncovered:.1f} s have no reading "
                "(integration restarted after each gap)"
            )
            label = f"{method}; {duration(uncovered)} missing (not covered)"
        if uncovered > 0:
            peak, whence = _peak_w(channel, joules, duration_s - uncovered)
            counted = Figure(counted.value, counted.low, counted.high + peak * uncovered)
            gap_basis = (
                f"{duration(uncovered)} with no reading: from nothing to {num(peak)} W ({whence}) "
                "for that time"
            )
            basis += f"; {gap_basis}"
            notes.append(f"{cid}: {gap_basis} widens its range (not in its value)")
    if shared_by > 1:
        counted = counted.scaled(1.0 / shared_by)
        joules /= shared_by
        label += f"; shared by {shared_by} ranks, split equally"
        notes.append(
            f"{cid}: its GPU (same UUID on the same host) was measured by {shared_by} "
            f"processes at once: each counts 1/{shared_by} of what it read"
        )
    kwh = Figure(kwh_from_j(counted.value), kwh_from_j(counted.low), kwh_from_j(counted.high))
    return ChannelEnergy(joules, kwh, label, basis, tuple(notes))


def _float(value: Any) -> float:
    """A quantity read back from a run directory: a finite number >= 0, else 0."""
    try:
        out = float(value or 0.0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return out if math.isfinite(out) and out > 0 else 0.0


def _peak_w(channel: Mapping[str, Any], joules: float, read_s: float) -> tuple[float, str]:
    """The most the device could have drawn: its power limit, else an assumed multiple of its
    average power over the time that was read."""
    details = channel.get("details") or {}
    limit = _float(details.get("power_limit_w")) if isinstance(details, Mapping) else 0.0
    if 0 < limit <= DEVICE_MAX_W:
        return limit, "its power limit"
    average = joules / read_s if read_s > 0 else 0.0
    if average > 0 and GAP_ASSUMED_PEAK * average <= DEVICE_MAX_W:
        return GAP_ASSUMED_PEAK * average, f"assumed: {num(GAP_ASSUMED_PEAK)}x its average power"
    return DEVICE_MAX_W, f"assumed: {num(DEVICE_MAX_W)} W, greentrack's bound for one device"


def device_shares(runs: Sequence[Run]) -> dict[tuple[str, str], int]:
    """How many processes measured each GPU at once: ``{(run path, channel id): N}`` for the
    channels of ``runs`` (a run and its parts) whose device (``details.uuid``, on the same host,
    in the same segment) was also measured by other runs whose time overlapped; channels
    measured by one process are left out. Their account counts 1/N of each reading (an equal
    split: torchrun with more processes than GPUs, several ranks on one MIG-partitioned GPU).
    """
    groups: dict[tuple[int, str, str], list[tuple[Run, str]]] = defaultdict(list)
    for r in runs:
        host_block, part = r.meta.get("host"), r.meta.get("part")
        host = str(
            (host_block.get("hostname") if isinstance(host_block, Mapping) else None)
            or (part.get("host") if isinstance(part, Mapping) else None)
            or ""
        )
        for ch in r.channels:
            details = ch.get("details") or {}
            uuid = details.get("uuid") if isinstance(details, Mapping) else None
            if ch.get("component") == "gpu" and isinstance(uuid, str) and uuid:
                groups[(r.segment, host, uuid)].append((r, str(ch["id"])))
    out: dict[tuple[str, str], int] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        windows = [(float(r.meta["start_unix_s"]), r.end_unix_s) for r, _ in members]
        for i, ((r, cid), (start, end)) in enumerate(zip(members, windows, strict=True)):
            n = 1 + sum(1 for j, (s, e) in enumerate(windows) if j != i and s < end and start < e)
            if n > 1:
                out[(str(r.path), cid)] = n
    return out
