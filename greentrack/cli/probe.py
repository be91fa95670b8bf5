"""``greentrack devices --probe``: measure each NVIDIA GPU's NVML update intervals and power
averaging windows (:mod:`greentrack.meters.probe`, the method of Yang et al., SC24), print
them and store them for the runs that later use that GPU."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from greentrack.meters.probe import Load, ProbeResult, SourceProbe
from greentrack.numbers import duration, num

NAMES = {
    "energy_counter": "energy counter",
    "power_usage": "power usage",
    "power_instant": "power instant",
    "power_average": "power average",
}


def cmd_probe(
    gpu_indices: Sequence[int] | None,
    seconds: float,
    as_json: bool,
    *,
    nvml: Any = None,
    environ: Mapping[str, str] | None = None,
    load: Load | str | None = "torch",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall: Callable[[], float] = time.time,
) -> int:
    """Probe, print, store. ``load="torch"``: a CUDA matmul burst where torch has CUDA, else
    idle (said); tests pass a fake NVML, clock and load."""
    from greentrack.errors import MeterUnavailableError
    from greentrack.meters import probe as pr
    from greentrack.meters.nvml import load_pynvml, missing_driver
    from greentrack.rundir.fs import REAL

    if nvml is None:
        missing = missing_driver()
        if missing is not None:
            print(f"greentrack: devices --probe: nothing to probe: {missing}", file=sys.stderr)
            return 2
    try:
        nvml = nvml if nvml is not None else load_pynvml()
        why = "no load was given"
        if load == "torch":
            load, why_not = pr.TorchBurst.for_uuids(pr.gpu_uuids(nvml, gpu_indices, environ))
            why = why_not or why
        results = pr.probe(
            nvml,
            gpu_indices=gpu_indices,
            environ=environ,
            seconds=seconds,
            load=load if not isinstance(load, str) else None,
            idle_reason=why,
            clock=clock,
            sleep=sleep,
            wall=wall,
        )
    except MeterUnavailableError as e:
        print(f"greentrack: devices --probe: nothing to probe: {e}", file=sys.stderr)
        return 2
    directory = pr.probe_dir(environ)
    stored: dict[str, str] = {}
    problem = None
    for r in results:
        try:
            stored[r.uuid] = str(pr.save(r, directory, REAL))
        except OSError as e:
            problem = (
                f"greentrack: devices --probe: cannot store the probe in {directory} "
                f"({e.strerror or e}); set {pr.PROBE_DIR_ENV} to a folder you can write"
            )
            break
    if as_json:
        probes = [{**r.to_dict(), "stored": stored.get(r.uuid)} for r in results]
        out = {"directory": str(directory), "probes": probes}
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(describe(results, stored))
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return 0


def describe(results: Sequence[ProbeResult], stored: Mapping[str, str]) -> str:
    """The probe in words, one block per GPU."""
    first = results[0]
    lines = [
        "greentrack devices --probe: NVML's update intervals and averaging windows "
        f"(Yang et al., SC24), {duration(first.seconds, 4)}, polled every "
        f"{num(first.poll_interval_s * 1000)} ms, load: {first.load or 'none (idle)'}"
    ]
    for r in results:
        lines.append(f"  gpu{r.nvml_index} {r.name} ({r.uuid}, driver {r.driver}):")
        for s in r.sources:
            lines.append(f"    {NAMES[s.source]:<15} {_source_line(s)}")
        where = stored.get(r.uuid)
        lines.append(
            f"    stored: {where} (runs on this GPU record it)" if where else "    not stored"
        )
        lines += [f"    note: {n}" for n in r.notes]
    return "\n".join(lines)


def _source_line(s: SourceProbe) -> str:
    if s.update_interval_s is None and s.window_s is None and s.window_at_most_s is None:
        return s.basis
    parts = []
    if s.update_interval_s is not None:
        parts.append(f"updates every {num(s.update_interval_s * 1000)} ms")
    if s.window_s is not None:
        parts.append(f"averages over {num(s.window_s * 1000)} ms")
    elif s.window_at_most_s is not None:
        parts.append(f"averages over at most one update ({num(s.window_at_most_s * 1000)} ms)")
    elif s.source != "energy_counter":
        parts.append("window not measured")
    return ", ".join(parts) + f"  [{s.basis}]"
