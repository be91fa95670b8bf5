"""Which meters can run on this machine, and why not where they cannot.

Used by the tracker (to open meters) and by ``greentrack devices`` (to explain them). Missing
hardware gives a ``not counted`` status with the reason and the fix; a component the user
*requires* raises instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from greentrack.errors import MeterUnavailableError
from greentrack.launcher import RankInfo, gpus_for
from greentrack.meters.base import Meter
from greentrack.meters.estimate import CRUCIAL_W_PER_GB, EstimatedCpuMeter
from greentrack.meters.nvml import NvmlMeter, missing_driver
from greentrack.meters.rapl import DEFAULT_ROOT, RaplMeter

Status = Literal["measured", "estimated", "not counted"]
TDP_ENV = "GREENTRACK_CPU_TDP_W"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """What greentrack does for one component on this machine."""

    component: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"component": self.component, "status": self.status, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class DiscoveryOptions:
    """How meters are found.

    Attributes:
        gpu_indices: indices into the visible GPUs to measure (``None``: all visible).
        cpu_tdp_w: TDP per CPU package for the estimate when RAPL is unreadable (``None``:
            ``$GREENTRACK_CPU_TDP_W``, else the bundled table).
        dram_w_per_gb: estimate DRAM at this many W/GB when RAPL has no DRAM zone (off).
        powercap_root: the powercap sysfs directory.
        nvml: a ``pynvml``-compatible module (tests pass a fake).
        require: components that must be measured or estimated, else an error (e.g. ``("gpu",)``).
        gpu, cpu: set ``False`` to skip a component entirely.
        rank: this process's place in a distributed job (:func:`greentrack.launcher.detect`):
            it measures only the GPU it drives (:func:`greentrack.launcher.gpus_for`, unless
            ``gpu_indices`` says otherwise), and what belongs to the node (RAPL packages, a
            DRAM estimate) only on the node's local rank 0; the other ranks then estimate their
            own process's CPU only where RAPL cannot be read (process estimates add up).
    """

    gpu_indices: Sequence[int] | None = None
    cpu_tdp_w: float | None = None
    dram_w_per_gb: float | None = None
    powercap_root: Path = DEFAULT_ROOT
    nvml: Any = None
    require: Sequence[str] = ()
    gpu: bool = True
    cpu: bool = True
    environ: Any = field(default=None, repr=False)
    rank: RankInfo | None = None

    def __post_init__(self) -> None:
        bad = set(self.require) - {"gpu", "cpu", "dram"}
        if bad:
            raise ValueError(f"require accepts 'gpu', 'cpu', 'dram'; got {sorted(bad)}")


def discover(options: DiscoveryOptions) -> tuple[list[Meter], list[ComponentStatus]]:
    """Open every meter that works here. Returns the meters and a status per component."""
    env = os.environ if options.environ is None else options.environ
    meters: list[Meter] = []
    statuses: list[ComponentStatus] = []
    if options.gpu:
        _discover_gpu(options, env, meters, statuses)
    if options.cpu:
        _discover_cpu(options, env, meters, statuses)
    for component in options.require:
        if not any(s.component == component and s.status != "not counted" for s in statuses):
            reason = "; ".join(s.detail for s in statuses if s.component == component)
            for m in meters:
                m.close()
            raise MeterUnavailableError(f"{component} energy was required but {reason}")
    return meters, statuses


_NO_DRIVER: list[str] = []  # why the NVML library could not be loaded, once per process


def _discover_gpu(
    options: DiscoveryOptions, env: Any, meters: list[Meter], statuses: list[ComponentStatus]
) -> None:
    if options.nvml is None and _NO_DRIVER:
        # no NVIDIA driver library: it will not appear while this process runs, and loading
        # it again costs a dlopen per call (a Flower client discovers per message)
        statuses.append(ComponentStatus("gpu", "not counted", _NO_DRIVER[0]))
        return
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
            if rank.local_world_size > visible:
                shared = (
                    f"; {rank.local_world_size} local ranks, {visible} visible GPU(s): "
                    + ("ranks share them" if visible > 1 else "if other ranks see this GPU")
                    + ", each measures all of its GPU and the account splits a GPU measured by "
                    "several ranks equally (same UUID on one host)"
                )
            if mine is not None and visible > len(mine):
                nvml_meter.close()
                nvml_meter = NvmlMeter(options.nvml, gpu_indices=mine, environ=env)
    except MeterUnavailableError as e:
        detail = f"no GPU measured: {e}"
        no_library = "libnvidia-ml.so was not found" in str(e)
        if options.nvml is None and (no_library or missing_driver() is not None):
            _NO_DRIVER.append(detail)
        statuses.append(ComponentStatus("gpu", "not counted", detail))
        return
    meters.append(nvml_meter)
    for ch in nvml_meter.channels:
        statuses.append(
            ComponentStatus(
                "gpu",
                "measured",
                f"{ch.id} {ch.name}: energy {ch.method}; "
                f"power {ch.power_method or 'from energy differences'}{shared}",
            )
        )
    for cid, reason in nvml_meter.not_counted.items():
        statuses.append(ComponentStatus("gpu", "not counted", f"{cid} {reason}"))


def _discover_cpu(
    options: DiscoveryOptions, env: Any, meters: list[Meter], statuses: list[ComponentStatus]
) -> None:
    leader = options.rank is None or options.rank.node_leader
    try:
        rapl = RaplMeter(options.powercap_root)
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
    tdp = options.cpu_tdp_w
    if tdp is None and env.get(TDP_ENV):
        try:
            tdp = float(env[TDP_ENV])
        except ValueError:
            raise ValueError(f"{TDP_ENV}={env[TDP_ENV]!r} is not a number of watts") from None
    est = EstimatedCpuMeter(tdp_w=tdp, dram_w_per_gb=options.dram_w_per_gb if leader else None)
    meters.append(est)
    cpu = est.channels[0]
    whose = "this process and its children" if est.scope == "process" else "all CPUs"
    if "tdp_w" in cpu.details:
        how = (
            f"TDP {cpu.details['tdp_w']:g} W x CPU utilisation of {whose} "
            f"({cpu.details['tdp_source']})"
        )
    elif est.scope == "process":
        how = (
            f"{cpu.details['vcpu_max_w']} W per busy vCPU-second of {whose} ({cpu.details['note']})"
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


def _dram_not_counted(why: str) -> ComponentStatus:
    return ComponentStatus(
        "dram",
        "not counted",
        f"{why}; to estimate it, pass --dram-w-per-gb {CRUCIAL_W_PER_GB} "
        f"(dram_w_per_gb={CRUCIAL_W_PER_GB} in Python) "
        "(a contested constant-power model)",
    )
