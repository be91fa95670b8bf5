"""The cost of one read of each node meter (docs/benchmarks.md, "Node meters").

Times, on this machine, ``source.read()`` (what the node meter's own thread does once per
interval) and ``NodeMeter.read_energy_j()`` (what anything else calls: memory only):

* Redfish against a Redfish service on 127.0.0.1 (``tests/node_fakes.py``: http.server, DMTF
  schema shapes, Basic authentication), both ``EnvironmentMetrics`` and the deprecated
  ``Power`` resource: a new HTTP connection, request, JSON parse and the deadline thread;
* IPMI through a fake ``ipmitool`` on PATH printing a recorded DCMI reading: the cost of the
  process greentrack starts (a real ipmitool adds the BMC's own answer time: in-band KCS
  milliseconds, LAN tens of milliseconds; not measurable without a BMC);
* SLURM through fake ``sstat``: the process start, likewise (a real sstat adds a slurmctld
  round trip).

CPU time is this process's (``time.process_time``) plus its waited-for children
(``RUSAGE_CHILDREN``), per read.

    python -m benchmarks.node_meters [--reads 50]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import quantiles, save
from greentrack.meters.ipmi import IpmiSource
from greentrack.meters.node import NodeMeter, NodeSource, parse_node_meter
from greentrack.meters.redfish import RedfishSource
from greentrack.meters.slurm import SlurmSource
from tests.node_fakes import (
    DCMI_OK,
    RedfishService,
    fake_ipmitool,
    fake_slurm,
    login_env,
    path_with,
)


def _cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def time_reads(read: Callable[[], Any], n: int) -> dict[str, Any]:
    read()  # warm
    wall, cpu = [], []
    for _ in range(n):
        c0, t0 = _cpu_s(), time.perf_counter()
        read()
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((_cpu_s() - c0) * 1000.0)
    return {"wall_ms": quantiles(wall), "cpu_ms": quantiles(cpu)}


def measure(name: str, source: NodeSource, n: int) -> dict[str, Any]:
    out = {"meter": name, "interval_s": source.interval_s, "read": time_reads(source.read, n)}
    meter = NodeMeter(source)
    cached = time_reads(meter.read_energy_j, n * 20)
    out["read_energy_j_us"] = {k: v * 1000.0 for k, v in cached["wall_ms"].items() if k != "n"}
    meter.close()
    med = out["read"]["cpu_ms"]["median"]
    out["cpu_share_at_interval"] = med / 1000.0 / source.interval_s
    print(
        f"{name:<28} read: median {out['read']['wall_ms']['median']:.2f} ms wall, {med:.2f} ms "
        f"CPU; every {source.interval_s:g} s = {out['cpu_share_at_interval']:.4%} of one core; "
        f"cached read_energy_j {out['read_energy_j_us']['median']:.2f} us"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    results = []
    service = RedfishService()
    try:
        env = login_env()
        results.append(
            measure(
                "redfish EnvironmentMetrics",
                RedfishSource(parse_node_meter(service.url()), env),
                args.reads,
            )
        )
        service.state.environment = False
        results.append(
            measure(
                "redfish Power (PowerControl)",
                RedfishSource(parse_node_meter(service.url()), env),
                args.reads,
            )
        )
    finally:
        service.close()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fake_ipmitool(root / "bin", root / "ipmi")
        (root / "ipmi" / "output").write_text(DCMI_OK.format(instant=220, average=221))
        env = path_with(root / "bin", login_env())
        results.append(
            measure(
                "ipmi (fake ipmitool)", IpmiSource(parse_node_meter("ipmi://"), env), args.reads
            )
        )
        fake_slurm(root / "bin", root / "slurm")
        env.update(SLURM_JOB_ID="4242", SLURM_STEP_ID="0")
        results.append(
            measure(
                "slurm (fake sstat)", SlurmSource(parse_node_meter("slurm://"), env), args.reads
            )
        )
    save("node_meters", {"reads": args.reads, "results": results})


if __name__ == "__main__":
    main()
