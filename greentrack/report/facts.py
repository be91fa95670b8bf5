"""Facts a report states about where and how runs ran: hardware, software, the measurement
boundary, reproducibility. Descriptive only: no energy or CO2e is computed here."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import TYPE_CHECKING, Any

from greentrack.account.accuracy import energy_accuracy
from greentrack.account.build import processes_of
from greentrack.rundir.format import FORMAT_VERSION
from greentrack.views.numbers import num

if TYPE_CHECKING:
    from collections.abc import Sequence

    from greentrack.account.build import EnergyItem
    from greentrack.rundir.reader import Run

# What each method is, and how good a source it is (the boundary table's "accuracy class").
METHODS: dict[str, tuple[str, str]] = {
    "nvml-total-energy-counter": (
        "NVML total-energy counter (mJ since driver load), read at span edges and every 5 s",
        "on-chip sensor of the GPU board; not a calibrated meter",
    ),
    "integral of nvml-field-power-instant": (
        "NVML instantaneous power field, sampled and integrated",
        "on-chip sensor of the GPU board; not a calibrated meter",
    ),
    "integral of nvml-power-usage (~1 s average on recent GPUs)": (
        "NVML power usage (a ~1 s average on recent GPUs), sampled and integrated",
        "on-chip sensor, averaged: misses bursts shorter than its window",
    ),
    "rapl-powercap-energy-counter": (
        "RAPL energy counter (Linux powercap), read every sample",
        "on-chip model of package/DRAM power; not a calibrated meter",
    ),
    "tdp-x-utilisation": (
        "CPU TDP × the process's CPU utilisation",
        "model: can be off by tens of percent",
    ),
    "per-vcpu-specpower-coefficients": (
        "per-vCPU min/max watts (Cloud Carbon Footprint, SPECpower) × utilisation",
        "model: can be off by tens of percent",
    ),
    "w-per-gb-x-installed-memory": (
        "constant watts per GB of installed memory",
        "model: contested constant-power assumption",
    ),
}


def _accelerator_methods() -> dict[str, tuple[str, str]]:
    """What the AMD, Intel, Jetson, Apple and MIG methods are (docs/methodology.md, "Other
    accelerators"); a share's label says it is an attribution."""
    from greentrack.meters import amd, apple, intel, jetson, nvml

    board = "on-chip sensor of the GPU board; not a calibrated meter"
    averaged = "on-chip sensor, averaged: misses bursts shorter than its window"
    model = "the chip's own energy model; not a calibrated meter"
    out = {
        amd.SMI_ENERGY: (
            "AMD SMI energy accumulator x its counter resolution, read at span edges and every 5 s",
            board,
        ),
        f"integral of {amd.SMI_POWER}": (
            "AMD SMI current socket power (whole watts), sampled and integrated",
            board,
        ),
        f"integral of {amd.SMI_POWER_AVERAGE}": (
            "AMD SMI average socket power (a firmware average), sampled and integrated",
            averaged,
        ),
        amd.HWMON_ENERGY: ("amdgpu hwmon energy counter (uJ), read every sample", board),
        f"integral of {amd.HWMON_POWER}": (
            "amdgpu hwmon instantaneous power (uW), sampled and integrated",
            board,
        ),
        f"integral of {amd.HWMON_POWER_AVERAGE}": (
            "amdgpu hwmon average power (uW, a firmware average), sampled and integrated",
            averaged,
        ),
        intel.CARD_ENERGY: (
            "Intel xe/i915 hwmon card energy counter (uJ), read every sample",
            model,
        ),
        intel.PACKAGE_ENERGY: (
            "Intel xe hwmon GPU-package energy counter (uJ; the card's is absent), read every "
            "sample",
            model,
        ),
        f"integral of {jetson.RAIL_POWER}": (
            "Jetson INA3221 board rail: bus voltage x current, sampled and integrated",
            "shunt monitor on the board (TI INA3221); not a calibrated meter",
        ),
        f"integral of {jetson.RAIL_POWER_FILE}": (
            "Jetson INA3221 board rail power, sampled and integrated",
            "shunt monitor on the board (TI INA3221); not a calibrated meter",
        ),
        apple.IOREPORT_ENERGY: ("Apple IOReport Energy Model counters, added between reads", model),
        apple.POWERMETRICS_ENERGY: ("Apple powermetrics: the sum of its windows' energy", model),
    }
    for method in [m for m in out if m.startswith(("amdsmi", "amdgpu", "integral of amd"))]:
        text, accuracy = out[method]
        out[method + amd.SHARED] = (
            f"{text}; each die of a package that reports one reading counts an equal share "
            "(attribution)",
            accuracy,
        )
    for method in list(METHODS):
        if method.removeprefix("integral of ").startswith("nvml"):
            text, accuracy = METHODS[method]
            out[method + nvml.MIG_SHARE] = (
                f"{text}; a MIG slice counts its share of the GPU by compute slices (attribution)",
                accuracy,
            )
    return out


METHODS.update(_accelerator_methods())

NOT_COUNTED_ALWAYS = (
    ("embodied carbon", "manufacturing and end of life of the hardware are outside the scope"),
    ("networking", "data-centre and Internet networking, except FL traffic where reported"),
    ("cooling and facility", "beyond what the PUE factor covers"),
    ("idle and preparation", "data preparation, failed runs and idle hardware outside the run"),
)


def hardware(runs: list[Run]) -> dict[str, Any]:
    gpus: dict[str, dict[str, Any]] = {}
    hosts: set[str] = set()
    cpu: dict[str, Any] = {}
    memory_bytes = 0
    processes = processes_of(runs)
    for r in runs:
        host = r.meta.get("host") or {}
        name = str(host.get("hostname") or "")
        if name not in hosts:
            hosts.add(name)
            memory_bytes += int(host.get("memory_total_bytes") or 0)
        if not cpu and host.get("cpu_model"):
            cpu = {
                "model": host.get("cpu_model"),
                "packages": host.get("cpu_packages"),
                "logical_cores": host.get("cpu_logical_cores"),
            }
        for ch in r.channels:
            if ch["component"] != "gpu":
                continue
            d = ch.get("details") or {}
            key = f"{name}/{d.get('uuid', ch['id'])}"
            gpus.setdefault(
                ch["name"],
                {
                    "model": ch["name"],
                    "devices": set(),
                    "driver": d.get("driver"),
                    "power_limit_w": d.get("power_limit_w"),
                    "mig": bool(d.get("mig")),
                },
            )["devices"].add(key)
    return {
        "gpus": [
            {
                "model": g["model"],
                "count": len(g["devices"]),
                "driver": g["driver"],
                "power_limit_w": g["power_limit_w"],
                "mig": g["mig"],
            }
            for g in gpus.values()
        ],
        "gpu_count": sum(len(g["devices"]) for g in gpus.values()),
        "cpu": cpu or None,
        "memory_gb": memory_bytes / 1e9 if memory_bytes else None,
        # counted as the account counts them (every view): distinct (host, rank), so a
        # resumed segment or a test after fit is no new process
        "hosts": len({host for host, _ in processes}),
        "processes": len(processes),
        "container": bool((runs[0].meta.get("host") or {}).get("container")),
    }


def software(run: Run) -> dict[str, Any]:
    host = run.meta.get("host") or {}
    return {
        "greentrack": run.meta.get("greentrack_version"),
        "python": host.get("python"),
        "os": host.get("os"),
        "packages": dict(run.meta.get("software") or {}),
    }


def boundary(runs: list[Run], items: Sequence[EnergyItem] = ()) -> list[dict[str, Any]]:
    """What the run measured, estimated and left out, per component. ``items`` (the account's
    components) add what the account found: intervals without a reading ("measured, 3 s
    missing") and a device shared by several ranks, per device, to the row's status and
    detail: "measured" is never said of a gap."""
    rows: dict[str, dict[str, Any]] = {}
    sampling = runs[0].meta.get("sampling") or {}
    for ch in (c for r in runs for c in r.channels):
        method, accuracy = METHODS.get(ch["method"], (ch["method"], "see the method"))
        bound = energy_accuracy(ch["method"], ch["source"])
        accuracy = f"{accuracy}; range \u00d7{num(bound.low)} to \u00d7{num(bound.high)}"
        rate = (
            f"power at {num(sampling.get('power_hz'))} Hz"
            if ch.get("power_method") and isinstance(sampling.get("power_hz"), int | float)
            else "counter read at each sample"
        )
        row = rows.setdefault(
            ch["component"],
            {
                "component": ch["component"],
                "status": ch["source"],
                "method": method,
                "sampling": rate,
                "accuracy": accuracy,
                "devices": 0,
                "detail": "",
            },
        )
        row["devices"] += 1
    for b in runs[0].meta.get("boundary", []):
        if b["component"] not in rows:
            rows[b["component"]] = {
                "component": b["component"],
                "status": b["status"],
                "method": "",
                "sampling": "",
                "accuracy": "",
                "devices": 0,
                "detail": paper_text(b["detail"]),
            }
    for item in items:
        found = rows.get(item.component)
        extra = [p.strip() for p in item.method.split(";")[1:] if p.strip()]
        if found is None or not extra:
            continue
        if any("missing" in e for e in extra) and "gaps" not in found["status"]:
            found["status"] += ", with gaps"
        note = f"{item.label}: {'; '.join(extra)}"
        found["detail"] = f"{found['detail']}; {note}" if found["detail"] else note
    out = list(rows.values())
    out += [
        {
            "component": c,
            "status": "not counted",
            "method": "",
            "sampling": "",
            "accuracy": "",
            "devices": 0,
            "detail": why,
        }
        for c, why in NOT_COUNTED_ALWAYS
    ]
    return out


def reproducibility(run: Run) -> dict[str, Any]:
    config = run.meta.get("config") or {}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    git = run.meta.get("git") or {}
    return {
        "greentrack_version": run.meta.get("greentrack_version"),
        "format_version": run.meta.get("format_version", FORMAT_VERSION),
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "config_sha256": digest[:16] if config else None,
        "command": shlex.join(str(a) for a in run.meta.get("command") or []) or None,
        "run_id": run.meta["run_id"],
    }


# command-line advice in a run's boundary notes ("run it with --gpus all ...", "pass
# --dram-w-per-gb ..."): useful on a terminal, noise in a paper
_CLI_HINT = re.compile(
    r"\s*(\((run it with|pass|use|try) [^)]*--[^)]*\)|[;,]\s*(to [^;]*?, )?(pass|run it with|use)"
    r" [^;]*--[^;]*|\s*\(check `[^`]*`\))"
)


_COUNTED = re.compile(r"\b(\d+)((?:\s+[A-Za-z-]+)*?)\s+([A-Za-z]+)\(s\)")
_LISTED = re.compile(r"\b([A-Za-z]+)\(s\)(\s+\d+(?:,\s*\d+)*)")
_MAYBE = re.compile(r"\b([A-Za-z]+)\(s\)")


def plurals(text: str) -> str:
    """``text`` with a machine's "3 line(s)" written as words: "3 lines", "1 line",
    "ranks 0, 1", "rank 0"; any other "word(s)" becomes "words".

    >>> plurals("3 damaged line(s) skipped; 1 meter read(s) failed; 2 visible GPU(s)")
    '3 damaged lines skipped; 1 meter read failed; 2 visible GPUs'
    >>> plurals("segment 1: rank(s) 1, 3 of 4 left no run; rank(s) 2 of 4; ? record(s)")
    'segment 1: ranks 1, 3 of 4 left no run; rank 2 of 4; ? records'
    """

    def counted(m: re.Match[str]) -> str:
        word = m.group(3) if m.group(1) == "1" else m.group(3) + "s"
        return f"{m.group(1)}{m.group(2)} {word}"

    def listed(m: re.Match[str]) -> str:
        many = "," in m.group(2)
        return f"{m.group(1)}{'s' if many else ''}{m.group(2)}"

    out = _COUNTED.sub(counted, text)
    out = _LISTED.sub(listed, out)
    return _MAYBE.sub(lambda m: m.group(1) + "s", out)


def paper_text(detail: str) -> str:
    """A note for a paper: without command-line advice, and with real plurals
    (:func:`plurals`).

    >>> paper_text("started without GPU access (run it with --gpus all and the NVIDIA "
    ...            "Container Toolkit)")
    'started without GPU access'
    >>> paper_text("no RAPL; to estimate it, pass --dram-w-per-gb 0.375 (dram_w_per_gb=0.375 "
    ...            "in Python) (a contested constant-power model)")
    'no RAPL'
    >>> paper_text("the NVIDIA kernel driver is not loaded (check `nvidia-smi`)")
    'the NVIDIA kernel driver is not loaded'
    >>> print(paper_text("segment 0: rank(s) 1 of 2 left no run directory (not started, or "
    ...   "written on another host: merge them with `greentrack merge`); not counted"))
    ... # doctest: +NORMALIZE_WHITESPACE
    segment 0: rank 1 of 2 left no run directory (not started, or written on another host);
    not counted
    >>> paper_text("damaged: not used; no CO2e is charged from it. Charge the run at its "
    ...   "region: greentrack report RUN_DIR --region REGION (or whatif), e.g. --region DE")
    'damaged: not used; no CO2e is charged from it.'
    """
    text = _CLI_HINT.sub("", detail)
    text = _CLI_CLAUSE.sub("", text)
    text = _CLI_SENTENCE.sub(".", text)
    return plurals(text.strip())


# a clause that names a command in backticks ("...: merge them with `greentrack merge`)"), and
# a sentence that tells the reader what to type ("Charge the run ...: greentrack report ...")
_CLI_CLAUSE = re.compile(r"[:;,]\s*[^:;,()`]*`[^`]*`[^:;,()]*(?=[);,.]|$)")
_CLI_SENTENCE = re.compile(r"\.\s+[A-Z][^.]*\bgreentrack (?:report|whatif|merge|run|summary)\b.*$")
