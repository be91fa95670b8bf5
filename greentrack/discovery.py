"""Which meters can run on this machine, and why not where they cannot.

Used by the tracker (to open meters) and by ``greentrack devices`` (to explain them). Missing
hardware gives a ``not counted`` status with the reason and the fix; a component the user
*requires* raises instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from greentrack.errors import MeterError, MeterUnavailableError
from greentrack.launcher import RankInfo, gpus_for
from greentrack.meters.amd import KFD_DEVICE, amd_present, open_amd
from greentrack.meters.apple import AppleSocMeter, apple_silicon
from greentrack.meters.base import Channel, Meter
from greentrack.meters.estimate import CRUCIAL_W_PER_GB, EstimatedCpuMeter
from greentrack.meters.intel import IntelGpuMeter, intel_cards
from greentrack.meters.jetson import JetsonMeter
from greentrack.meters.jetson import rails as jetson_rails
from greentrack.meters.node import NodeMeter, NodeMeterSpec, NodeSource, parse_node_meter
from greentrack.meters.nvml import NvmlMeter, missing_driver
from greentrack.meters.rapl import RaplMeter
from greentrack.meters.sysfs import sysfs_root
from greentrack.numbers import duration, num, plural

Status = Literal["measured", "estimated", "not counted"]
MEASURED_REQUIREMENTS = ("measured:gpu", "measured:cpu", "measured:dram")
"""``require`` items that accept a measurement only (``cpu`` also accepts an estimate)."""
TDP_ENV = "GREENTRACK_CPU_TDP_W"
MAX_CPU_TDP_W = 1000.0
"""The largest CPU TDP per package greentrack takes (the largest server parts are near 500 W)."""
MAX_DRAM_W_PER_GB = 2.0
"""The largest DRAM estimate per GB greentrack takes (DDR4 is about 0.375 W/GB)."""


def env_tdp(env: Any) -> float | None:
    """``$GREENTRACK_CPU_TDP_W`` in watts, ``None`` where unset; ``ValueError`` (one line: the
    variable, its value, the range) where it is not a TDP."""
    text = env.get(TDP_ENV)
    if not text:
        return None
    try:
        return check_watts(TDP_ENV, float(text), MAX_CPU_TDP_W)
    except ValueError:
        raise ValueError(
            f"{TDP_ENV}={text!r} is not a number of watts above 0 up to "
            f"{num(MAX_CPU_TDP_W)} (a CPU's TDP): fix it, or unset it"
        ) from None


def check_watts(name: str, value: Any, high: float) -> float | None:
    """``value`` if it is ``None`` or a finite number above 0 up to ``high`` (not a bool, not
    text), else ``ValueError`` naming ``name``, the value and the range.

    >>> check_watts("cpu_tdp_w", 65, 1000)
    65.0
    """
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and 0 < value <= high):
        raise ValueError(f"{name} takes a number above 0 up to {num(high)}; got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """What greentrack does for one component on this machine. For an accelerator, also its
    ``vendor``, ``model``, ``driver`` and ``method`` (empty where they do not apply)."""

    component: str
    status: Status
    detail: str
    vendor: str = ""
    model: str = ""
    driver: str = ""
    method: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"component": self.component, "status": self.status, "detail": self.detail}
        for key in ("vendor", "model", "driver", "method"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True, slots=True)
class DiscoveryOptions:
    """How meters are found.

    Attributes:
        gpu_indices: indices into the visible GPUs to measure (``None``: all visible), for
            each vendor's GPUs as its framework numbers them (``cuda:N``, ``xpu:N``).
        cpu_tdp_w: TDP per CPU package for the estimate when RAPL is unreadable (``None``:
            ``$GREENTRACK_CPU_TDP_W``, else the bundled table).
        dram_w_per_gb: estimate DRAM at this many W/GB when RAPL has no DRAM zone (off).
        powercap_root: the powercap sysfs directory (default ``class/powercap`` under the
            sysfs root, ``$GREENTRACK_SYSFS_ROOT`` else ``/sys``).
        nvml: a ``pynvml``-compatible module (tests pass a fake).
        sysfs_root: the sysfs root of every sysfs meter (AMD and Intel hwmon, Jetson rails;
            default ``$GREENTRACK_SYSFS_ROOT``, else ``/sys``; RAPL's ``powercap_root`` is
            under it unless given).
        amdsmi: an ``amdsmi``-compatible module (tests pass a fake); ``False``: read the
            amdgpu hwmon files only; ``None``: import amdsmi where AMD device files exist.
        kfd: the ROCm device file whose presence says AMD GPUs may be here.
        apple: an IOReport sample source (tests pass a recorded fake); ``None``: the library
            on Apple Silicon (powermetrics as root where it cannot be read).
        require: components that must be counted (measured or estimated), else an error (e.g.
            ``("gpu",)``); ``"measured:cpu"`` (``gpu``, ``dram``) accepts a measurement only.
        gpu, cpu: set ``False`` to skip a component entirely.
        rank: this process's place in a distributed job (:func:`greentrack.launcher.detect`):
            it measures only the GPU it drives (:func:`greentrack.launcher.gpus_for`, unless
            ``gpu_indices`` says otherwise), and what belongs to the node (RAPL packages, a
            DRAM estimate) only on the node's local rank 0; the other ranks then estimate their
            own process's CPU only where RAPL cannot be read (process estimates add up).
        node_meter: a node meter URL (``redfish+https://BMC/redfish/v1/Chassis/ID``,
            ``ipmi://``, ``ipmi://BMC``, ``slurm://``; :mod:`greentrack.meters.node`), read by
            the node's local rank 0 (a SLURM step's energy, which covers all its nodes, by
            rank 0 alone). Checked here; a node meter that cannot be opened at the start is
            ``not counted`` with one warning (an error where ``require`` names ``node``).
    """

    gpu_indices: Sequence[int] | None = None
    cpu_tdp_w: float | None = None
    dram_w_per_gb: float | None = None
    powercap_root: Path | None = None
    nvml: Any = None
    sysfs_root: Path | None = None
    amdsmi: Any = None
    kfd: Path = KFD_DEVICE
    apple: Any = None
    require: Sequence[str] = ()
    gpu: bool = True
    cpu: bool = True
    environ: Any = field(default=None, repr=False)
    rank: RankInfo | None = None
    node_meter: str | None = None

    def __post_init__(self) -> None:
        # the bounds of the command line's flags (cli/common.py), for track() and every
        # integration too: a TDP of inf or 375 W per GB of DRAM is no machine
        check_watts("cpu_tdp_w", self.cpu_tdp_w, MAX_CPU_TDP_W)
        if self.cpu_tdp_w is None:  # $GREENTRACK_CPU_TDP_W: refused before anything is written
            env_tdp(os.environ if self.environ is None else self.environ)
        check_watts("dram_w_per_gb", self.dram_w_per_gb, MAX_DRAM_W_PER_GB)
        if self.gpu_indices is not None:
            indices = list(self.gpu_indices)
            if (
                not indices
                or any(type(i) is not int or not 0 <= i < 1024 for i in indices)
                or len(set(indices)) != len(indices)
            ):
                raise ValueError(
                    f"gpu_indices takes distinct GPU indices from 0 to 1023, e.g. [0, 1]; got "
                    f"{self.gpu_indices!r}"
                )
        bad = set(self.require) - {"gpu", "cpu", "dram", "node", *MEASURED_REQUIREMENTS}
        if bad:
            raise ValueError(
                "require accepts 'gpu', 'cpu', 'dram', 'node' (counted: measured, or estimated "
                "where only an estimate is possible) and 'measured:gpu', 'measured:cpu', "
                f"'measured:dram' (a measurement only); got {sorted(bad)}"
            )
        if self.node_meter is not None:
            parse_node_meter(self.node_meter)  # a bad URL is refused before anything runs
        elif "node" in self.require:
            raise ValueError("require=('node',) needs a node meter (node_meter=URL)")

    @property
    def node_spec(self) -> NodeMeterSpec | None:
        """The parsed node meter URL (``{host}`` replaced), or ``None``."""
        return parse_node_meter(self.node_meter) if self.node_meter is not None else None


def discover(options: DiscoveryOptions) -> tuple[list[Meter], list[ComponentStatus]]:
    """Open every meter that works here. Returns the meters and a status per component."""
    env = os.environ if options.environ is None else options.environ
    meters: list[Meter] = []
    statuses: list[ComponentStatus] = []
    if options.gpu:
        _discover_gpu(options, env, meters, statuses)
    if options.cpu:
        _discover_cpu(options, env, meters, statuses)
    for required in options.require:
        if required == "node":  # opened apart: discover_node()
            continue
        component = required.removeprefix("measured:")
        counts = ("measured",) if required != component else ("measured", "estimated")
        if not any(s.component == component and s.status in counts for s in statuses):
            reason = "; ".join(s.detail for s in statuses if s.component == component)
            for m in meters:
                m.close()
            if required != component and any(
                s.component == component and s.status == "estimated" for s in statuses
            ):
                raise MeterUnavailableError(
                    f"{component} energy was required measured, but here it can only be "
                    f"estimated ({reason}); fix that, or require {component} instead of "
                    f"{required} to accept the estimate"
                )
            raise MeterUnavailableError(f"{component} energy was required but {reason}")
    return meters, statuses


_NO_DRIVER: list[str] = []  # why the NVML library could not be loaded, once per process

Pick = Callable[[int], "Sequence[int] | None"]
"""Which of the N devices a vendor's meter sees this process measures (``None``: all)."""


def _discover_gpu(
    options: DiscoveryOptions, env: Any, meters: list[Meter], statuses: list[ComponentStatus]
) -> None:
    """Every accelerator vendor in turn. A vendor whose devices are absent adds its reason
    to one ``not counted`` line, said only when no vendor's GPU is here at all."""
    before = len(statuses)
    absent = [_discover_nvidia(options, env, meters, statuses)]
    root = options.sysfs_root if options.sysfs_root is not None else sysfs_root(env)
    pick = _pick(options)
    absent.append(_discover_amd(options, env, root, pick, meters, statuses))
    absent.append(_discover_intel(options, env, root, pick, meters, statuses))
    for fn in ACCELERATORS:
        absent.append(fn(options, env, root, meters, statuses))
    if len(statuses) == before:
        why = "; ".join(a for a in absent if a)
        statuses.append(ComponentStatus("gpu", "not counted", f"no GPU measured: {why}"))


ACCELERATORS: list[Callable[..., str | None]] = []
"""Further accelerator discoveries (board rails, SoCs), each ``f(options, env, sysfs root,
meters, statuses) -> why absent | None``; appended below where they are defined."""


def _pick(options: DiscoveryOptions) -> Pick | None:
    if options.gpu_indices is not None:
        chosen = list(options.gpu_indices)
        return lambda _n: chosen
    rank = options.rank
    if rank is None or not rank.distributed:
        return None
    return lambda n: gpus_for(rank, n)


def _shared_note(rank: RankInfo | None, visible: int, what: str = "GPU") -> str:
    if rank is None or not rank.distributed or rank.local_world_size <= visible:
        return ""
    return (
        f"; {rank.local_world_size} local ranks, {plural(visible, f'visible {what}')}: "
        + ("ranks share them" if visible > 1 else f"if other ranks see this {what}")
        + f", each measures all of its {what} and the account splits a {what} measured by "
        "several ranks equally (same UUID on one host)"
    )


def _measured(ch: Channel, shared: str = "") -> ComponentStatus:
    """The status line of a measured accelerator channel: vendor, model, driver, method."""
    d = ch.details
    power = ch.power_method or "from energy differences"
    driver = str(d.get("driver") or "")
    return ComponentStatus(
        ch.component,
        "measured",
        f"{ch.id} {ch.name}: energy {ch.method}; power {power}{shared}",
        vendor=str(d.get("vendor") or ""),
        model=ch.name,
        driver=driver,
        method=ch.method,
    )


def _discover_nvidia(
    options: DiscoveryOptions, env: Any, meters: list[Meter], statuses: list[ComponentStatus]
) -> str | None:
    """NVIDIA GPUs through NVML; returns why there is no NVIDIA driver (nothing added)."""
    if options.nvml is None and _NO_DRIVER:
        # no NVIDIA driver library: it will not appear while this process runs, and loading
        # it again costs a dlopen per call (a Flower client discovers per message)
        return _NO_DRIVER[0]
    shared = ""
    try:
        nvml_meter = NvmlMeter(options.nvml, gpu_indices=options.gpu_indices, environ=env)
        rank = options.rank
        if options.gpu_indices is None and rank is not None and rank.distributed:
            visible = len(nvml_meter.channels)
            try:
                mine = gpus_for(rank, visible)
            except ValueError:
                nvml_meter.close()
                raise
            shared = _shared_note(rank, visible)
            if mine is not None and visible > len(mine):
                nvml_meter.close()
                nvml_meter = NvmlMeter(options.nvml, gpu_indices=mine, environ=env)
    except MeterUnavailableError as e:
        no_library = "libnvidia-ml.so was not found" in str(e)
        if options.nvml is None and (no_library or missing_driver() is not None):
            _NO_DRIVER.append(str(e))
            return str(e)
        if no_library:
            return str(e)
        statuses.append(
            ComponentStatus("gpu", "not counted", f"no GPU measured: {e}", vendor="NVIDIA")
        )
        return None
    _counted("NVIDIA", [nvml_meter], nvml_meter.not_counted, shared, meters, statuses)
    return None


def _counted(
    vendor: str,
    added: Sequence[Meter],
    not_counted: Mapping[str, str],
    note: str,
    meters: list[Meter],
    statuses: list[ComponentStatus],
) -> None:
    """A vendor's GPU meters join the run: each channel measured (with ``note``), each device
    it leaves out "not counted" with its reason."""
    meters.extend(added)
    for m in added:
        for ch in m.channels:
            statuses.append(_measured(ch, note))
    for cid, reason in not_counted.items():
        statuses.append(ComponentStatus("gpu", "not counted", f"{cid} {reason}", vendor=vendor))


def _discover_amd(
    options: DiscoveryOptions,
    env: Any,
    root: Path,
    pick: Pick | None,
    meters: list[Meter],
    statuses: list[ComponentStatus],
) -> str | None:
    """AMD GPUs (amdsmi, else amdgpu hwmon); returns why there is none (nothing added)."""
    if options.amdsmi is None and not amd_present(root, options.kfd):
        return f"no AMD GPU ({options.kfd} and amdgpu cards absent)"
    try:
        gpus = open_amd(root, amdsmi=options.amdsmi, environ=env, pick=pick, kfd=options.kfd)
    except MeterUnavailableError as e:
        if str(e).startswith("no AMD GPU"):
            return str(e)
        statuses.append(ComponentStatus("gpu", "not counted", f"AMD: {e}", vendor="AMD"))
        return None
    shared = _shared_note(options.rank, gpus.visible) if options.gpu_indices is None else ""
    note = f"; read through {gpus.backend}{shared}"
    _counted("AMD", gpus.meters, gpus.not_counted, note, meters, statuses)
    return None


def _discover_intel(
    options: DiscoveryOptions,
    env: Any,
    root: Path,
    pick: Pick | None,
    meters: list[Meter],
    statuses: list[ComponentStatus],
) -> str | None:
    """Intel GPUs (xe/i915 hwmon); returns why there is none (nothing added)."""
    if not intel_cards(root):
        return "no Intel GPU (no i915 or xe card)"
    try:
        meter = IntelGpuMeter(root, environ=env, pick=pick)
    except MeterUnavailableError as e:
        statuses.append(ComponentStatus("gpu", "not counted", f"Intel: {e}", vendor="Intel"))
        return None
    shared = _shared_note(options.rank, meter.devices) if options.gpu_indices is None else ""
    _counted("Intel", [meter], meter.not_counted, shared, meters, statuses)
    return None


def _discover_cpu(
    options: DiscoveryOptions, env: Any, meters: list[Meter], statuses: list[ComponentStatus]
) -> None:
    leader = options.rank is None or options.rank.node_leader
    if _covered_by_board(meters, statuses):
        return
    try:
        rapl = RaplMeter(_powercap(options), environ=env)
    except MeterUnavailableError as e:
        rapl_reason = str(e)
    else:
        if not leader:  # the package counters are the node's: local rank 0 reads them
            rapl.close()
            statuses.append(
                ComponentStatus("cpu", "measured", "RAPL: counted by local rank 0 of this node")
            )
            return
        meters.append(rapl)
        for ch in rapl.channels:
            statuses.append(ComponentStatus(ch.component, "measured", f"{ch.id} {ch.name}: RAPL"))
        if not any(ch.component == "dram" for ch in rapl.channels):
            statuses.append(
                _dram_not_counted("RAPL exposes no DRAM zone (usual on AMD and laptops)")
            )
        return
    tdp = options.cpu_tdp_w if options.cpu_tdp_w is not None else env_tdp(env)
    est = EstimatedCpuMeter(tdp_w=tdp, dram_w_per_gb=options.dram_w_per_gb if leader else None)
    meters.append(est)
    cpu = est.channels[0]
    whose = "this process and its children" if est.scope == "process" else "all CPUs"
    if "tdp_w" in cpu.details:
        how = (
            f"TDP {num(cpu.details['tdp_w'], 4)} W x CPU utilisation of {whose} "
            f"({cpu.details['tdp_source']})"
        )
    elif est.scope == "process":
        how = (
            f"{cpu.details['vcpu_max_w']} W per busy vCPU, over the CPU time of {whose} "
            f"({cpu.details['note']})"
        )
    else:
        how = (
            f"{cpu.details['cpus_used']} vCPU x {cpu.details['vcpu_min_w']}-"
            f"{cpu.details['vcpu_max_w']} W by utilisation ({cpu.details['note']})"
        )
    statuses.append(ComponentStatus("cpu", "estimated", f"{how}; RAPL unavailable: {rapl_reason}"))
    if len(est.channels) > 1:
        detail = f"{options.dram_w_per_gb} W/GB installed (constant power)"
        statuses.append(ComponentStatus("dram", "estimated", detail))
    else:
        statuses.append(_dram_not_counted("no RAPL"))


def _covered_by_board(meters: list[Meter], statuses: list[ComponentStatus]) -> bool:
    """Whether an accelerator meter already measures the CPU (a Jetson's module rail or CPU
    rail, an Apple SoC's CPU energy): then RAPL and the CPU estimate are not opened, so the CPU
    is never counted twice. Says where the CPU and DRAM are measured."""
    where: dict[str, str] = {}
    for m in meters:
        covers = getattr(m, "covers", None) or {}
        for component in ("cpu", "dram"):
            own = [c for c in m.channels if c.component == component]
            if own:
                where[component] = ", ".join(f"{c.id} {c.name}" for c in own)
            elif component in covers:
                ids = ", ".join(c.id for c in m.channels)
                where[component] = f"within the {covers[component]} rail ({ids})"
    if "cpu" not in where:
        return False
    for component in ("cpu", "dram"):
        if component in where and not any(
            c.component == component for m in meters for c in m.channels
        ):
            statuses.append(ComponentStatus(component, "measured", where[component]))
    if "dram" not in where:
        statuses.append(_dram_not_counted("the SoC or board reports no memory energy"))
    return True


def _discover_jetson(
    options: DiscoveryOptions,
    env: Any,
    root: Path,
    meters: list[Meter],
    statuses: list[ComponentStatus],
) -> str | None:
    """A Jetson module's INA3221 board rails; silent where there are none."""
    if not jetson_rails(root):
        return None
    if options.rank is not None and not options.rank.node_leader:
        statuses.append(
            ComponentStatus(
                "gpu", "measured", "Jetson board rails: counted by local rank 0 of this node"
            )
        )
        return None
    try:
        meter = JetsonMeter(root, environ=env)
    except MeterUnavailableError as e:
        statuses.append(ComponentStatus("gpu", "not counted", f"Jetson: {e}", vendor="NVIDIA"))
        return None
    meters.append(meter)
    for ch in meter.channels:
        if ch.component == "gpu":
            statuses.append(_measured(ch))
        else:
            statuses.append(
                ComponentStatus(ch.component, "measured", f"{ch.id} {ch.name}: {ch.method}")
            )
    for rail, why in meter.not_counted.items():
        inside = "inside" in why  # counted within the module's input rail
        statuses.append(
            ComponentStatus(
                "gpu",
                "measured" if inside else "not counted",
                f"Jetson rail {rail}: {why}",
                vendor="NVIDIA",
            )
        )
    return None


ACCELERATORS.append(_discover_jetson)


def _discover_apple(
    options: DiscoveryOptions,
    env: Any,
    root: Path,
    meters: list[Meter],
    statuses: list[ComponentStatus],
) -> str | None:
    """An Apple Silicon SoC (IOReport, else powermetrics as root); silent elsewhere."""
    if options.apple is None and not apple_silicon():
        return None
    if options.rank is not None and not options.rank.node_leader:
        statuses.append(
            ComponentStatus("gpu", "measured", "Apple SoC: counted by local rank 0 of this node")
        )
        return None
    try:
        meter = AppleSocMeter(options.apple)
    except MeterUnavailableError as e:
        statuses.append(ComponentStatus("gpu", "not counted", f"Apple: {e}", vendor="Apple"))
        return None
    meters.append(meter)
    for ch in meter.channels:
        statuses.append(_measured(ch))
    return None


ACCELERATORS.append(_discover_apple)


def _powercap(options: DiscoveryOptions) -> Path | None:
    if options.powercap_root is not None or options.sysfs_root is None:
        return options.powercap_root
    return options.sysfs_root / "class" / "powercap"


def _dram_not_counted(why: str) -> ComponentStatus:
    return ComponentStatus(
        "dram",
        "not counted",
        f"{why}; to estimate it, pass --dram-w-per-gb {CRUCIAL_W_PER_GB} "
        f"(dram_w_per_gb={CRUCIAL_W_PER_GB} in Python) "
        "(a contested constant-power model)",
    )


def open_node_source(spec: NodeMeterSpec, environ: Any) -> NodeSource:
    """The source a node meter URL names, opened (its first reading taken).

    Raises:
        MeterUnavailableError: it cannot be read; the message names the fix.
    """
    if spec.kind == "redfish":
        from greentrack.meters.redfish import RedfishSource

        return RedfishSource(spec, environ)
    if spec.kind == "ipmi":
        from greentrack.meters.ipmi import IpmiSource

        return IpmiSource(spec, environ)
    from greentrack.meters.slurm import SlurmSource

    return SlurmSource(spec, environ)


def discover_node(
    options: DiscoveryOptions, clock: Any = None
) -> tuple[NodeMeter | None, ComponentStatus | None]:
    """Open the node meter ``options.node_meter`` names, on the process that reads it (the
    node's local rank 0; for a SLURM step, rank 0): ``(meter, status)``. ``(None, status)``
    where another process reads it or it cannot be read (``not counted``, with the reason and
    the fix); raises instead where ``options.require`` names ``node``."""
    import time

    spec = options.node_spec
    if spec is None:
        return None, None
    env = os.environ if options.environ is None else options.environ
    rank = options.rank
    if rank is not None and spec.scope == "job" and rank.rank != 0:
        return None, ComponentStatus(
            "node", "measured", f"{spec.url}: the step's energy (all its nodes) is read by rank 0"
        )
    if rank is not None and not rank.node_leader:
        return None, ComponentStatus(
            "node", "measured", f"{spec.url}: read by local rank 0 of this node"
        )
    try:
        source = open_node_source(spec, env)
        meter = NodeMeter(source, clock if clock is not None else time.monotonic)
    except (MeterUnavailableError, MeterError) as e:
        if "node" in options.require:
            raise MeterUnavailableError(f"node energy was required but {e}") from e
        return None, ComponentStatus("node", "not counted", f"node meter {spec.url}: {e}")
    ch = source.channel
    how = ch.energy_method or f"integral of {ch.power_method}"
    return meter, ComponentStatus(
        "node", "measured", f"{spec.url}: {how}, read every {duration(source.interval_s, 4)}"
    )
