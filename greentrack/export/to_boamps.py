"""A BoAmps report (Boavizta's open format for the energy of an AI task): the JSON its published
schema describes, bundled in ``greentrack/export/data`` (source, commit and licence in its
SOURCES.md), and checked against that schema before it is written
(``pip install 'greentrack[boamps]'``: ``jsonschema``).

What greentrack knows goes in from the run's account and report: one measure (method
``greentrack``, ``powerConsumption`` = the run's IT energy in kWh, before PUE, as BoAmps asks;
duration; start; CPU and GPU tracking modes: ``nvml``, ``rapl``, or greentrack's model id for an
estimate), the hardware (GPUs by model, CPU, memory), OS and Python, the country and grid
intensity (gCO2e/kWh), ``quality`` from the account's range (``high`` within 10 %, ``medium``
25 %, ``low`` 50 %; left out when wider), the report's status (``final`` for a run that
stopped cleanly, else ``draft``), and in ``taskDescription`` the figures BoAmps has no field
for: the range, facility energy and CO2e, and what was measured and estimated.

What only you know, BoAmps requires, and greentrack never guesses: ``task_family`` (what the
model does: ``"image classification"``) and ``data_type`` (one of :data:`DATA_TYPES`). Also
``task_stage`` (default: ``training`` for a training or federated run, from the Lightning or
Transformers stages otherwise), ``infra_type`` (default: ``publicCloud`` for a cloud region,
else ``other``: greentrack cannot tell on-premise from a private cloud) and ``publisher`` (an
organisation's name; the report is then marked ``public``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack._version import __version__
from greentrack.export.api import Exported, check_output
from greentrack.export.extras import ExportError, require
from greentrack.export.record import Record
from greentrack.numbers import num

if TYPE_CHECKING:
    from greentrack.account import RunAccount
    from greentrack.report.model import Report

FORMAT_VERSION = "1.1.0"
SPECIFICATION = (
    "https://github.com/Boavizta/BoAmps/tree/3bfefec8446ee196d1723c0e35859eb7762da3c9/model"
)
SCHEMAS = ("report", "measure", "hardware", "algorithm", "dataset")
SCHEMA_URL = "https://raw.githubusercontent.com/Boavizta/BoAmps/main/model/{}_schema.json"
DATA_TYPES = (
    "tabular",
    "audio",
    "boolean",
    "image",
    "video",
    "object",
    "text",
    "token",
    "word",
    "other",
)
INFRA_TYPES = ("publicCloud", "privateCloud", "onPremise", "other")
CLOUDS = ("aws", "gcp", "azure")
QUALITY = ((0.10, "high"), (0.25, "medium"), (0.50, "low"))
"""BoAmps' quality classes: the largest relative error each allows."""
STAGES = {"fit": "training", "train": "training", "validate": "validation", "test": "test"}
STAGES |= {"predict": "inference", "inference": "inference"}
MAX_TEXT = 500


def make(options: dict[str, Any], runs: int = 1) -> BoampsTarget:
    return BoampsTarget(runs=runs, **options)


class BoampsTarget:
    def __init__(
        self,
        output: Any = None,
        task_family: str | None = None,
        data_type: str | None = None,
        task_stage: str | None = None,
        infra_type: str | None = None,
        publisher: str | None = None,
        runs: int = 1,
    ) -> None:
        self.output = check_output(output, "boamps")
        self.folder = self.output.is_dir()
        if runs > 1 and not self.folder:
            raise ValueError(
                f"-o {self.output}: {runs} runs make {runs} BoAmps files; name an existing folder"
            )
        if not self.folder and self.output.suffix.lower() != ".json":
            raise ValueError(f"-o {self.output}: name the BoAmps file with a .json suffix")
        missing = [
            flag
            for flag, value in (("--task-family", task_family), ("--data-type", data_type))
            if value is None
        ]
        if missing:
            raise ValueError(
                f"BoAmps needs what the task is, which only you know: pass {' and '.join(missing)}"
                " (task_family= and data_type= in Python), e.g. --task-family 'image "
                f"classification' --data-type image; data types: {', '.join(DATA_TYPES)}"
            )
        for name, value in (
            ("task_family", task_family),
            ("task_stage", task_stage),
            ("publisher", publisher),
        ):
            if value is not None and not _text_ok(value):
                raise ValueError(
                    f"{name}={value!r}: takes a non-empty text of at most {MAX_TEXT} characters"
                )
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type={data_type!r}: takes one of {', '.join(DATA_TYPES)}")
        if infra_type is not None and infra_type not in INFRA_TYPES:
            raise ValueError(f"infra_type={infra_type!r}: takes one of {', '.join(INFRA_TYPES)}")
        self.validator = validator()
        self.task_family, self.data_type = str(task_family), str(data_type)
        self.task_stage, self.infra_type, self.publisher = task_stage, infra_type, publisher

    def write(self, record: Record, report: Report, artifacts: Path | None) -> Exported:
        from greentrack.rundir.writer import write_text_atomic

        data = self.document(report.accounts[0], report.to_dict()["runs"][0], report.runs[0].meta)
        errors = sorted(self.validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:  # a bug of ours, never a file that claims a format it does not follow
            where = "/".join(str(p) for p in errors[0].path) or "(top)"
            raise ExportError(
                f"the BoAmps report of {record.run_dir} does not follow the BoAmps schema at "
                f"{where}: {errors[0].message} (a greentrack bug: please report it)"
            )
        path = self.output
        if self.folder:
            path = self.output / f"{_file_stem(record)}.boamps.json"
        write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return Exported("boamps", record.run_dir, str(path), None, record, ())

    def document(self, a: RunAccount, r: dict[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
        """The BoAmps report of one run: ``a`` its account, ``r`` its report (hardware,
        software), ``meta`` its ``meta.json`` (the framework it recorded)."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        header: dict[str, Any] = {  # no licensing: a licence is the publisher's to choose
            "formatVersion": FORMAT_VERSION,
            "formatVersionSpecificationUri": SPECIFICATION,
            "reportId": str(uuid.uuid4()),
            "reportDatetime": now,
            "reportStatus": "final" if a.complete else "draft",
        }
        if self.publisher is not None:
            header["publisher"] = {"name": self.publisher, "confidentialityLevel": "public"}
        out: dict[str, Any] = {
            "header": header,
            "task": self._task(a, r, meta),
            "measures": [_measure(a)],
            "system": {"os": _os(r)},
            "software": {"language": "python", **_version(r)},
            "infrastructure": self._infrastructure(a, r),
        }
        environment = _environment(a)
        if environment:
            out["environment"] = environment
        quality = _quality(a)
        if quality:
            out["quality"] = quality
        return out

    def _task(self, a: RunAccount, r: dict[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
        algorithm: dict[str, Any] = {}
        software = r["software"]["packages"] or {}
        framework = meta.get("framework") or _framework(software)
        if framework:
            algorithm["framework"] = framework
            framework = str(framework)
            if software.get(framework):
                algorithm["frameworkVersion"] = str(software[framework])
        if a.units and a.units["unit"] == "epoch" and a.units["rows"]:
            algorithm["epochsNumber"] = len(a.units["rows"])
        return {
            "taskStage": self.task_stage or _stage(a),
            "taskFamily": self.task_family,
            "algorithms": [algorithm],
            "dataset": [{"dataUsage": "input", "dataType": self.data_type}],
            "taskDescription": _description(a),
        }

    def _infrastructure(self, a: RunAccount, r: dict[str, Any]) -> dict[str, Any]:
        region = (a.carbon.region if a.carbon else None) or ""
        cloud = region.split(":", 1)[0] if ":" in region else None
        out: dict[str, Any] = {
            "infraType": self.infra_type or ("publicCloud" if cloud in CLOUDS else "other"),
        }
        if cloud in CLOUDS:
            out["cloudProvider"] = cloud
        out["components"] = _components(a, r["hardware"])
        return out


@cache
def validator() -> Any:
    """A validator of the bundled BoAmps schema, its ``$ref``s resolved from the bundled
    files (offline)."""
    import importlib.resources as resources

    jsonschema = require("jsonschema", "boamps")
    referencing = require("referencing", "boamps")
    data = resources.files("greentrack.export").joinpath("data")
    schemas = {
        name: json.loads(data.joinpath(f"boamps_{name}_schema.json").read_text(encoding="utf-8"))
        for name in SCHEMAS
    }
    registry = referencing.Registry().with_resources(
        (SCHEMA_URL.format(name), referencing.Resource.from_contents(schema))
        for name, schema in schemas.items()
    )
    cls = jsonschema.validators.validator_for(schemas["report"])
    return cls(schemas["report"], registry=registry)


def _text_ok(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= MAX_TEXT


def _file_stem(record: Record) -> str:
    import re

    base = re.sub(r"[^A-Za-z0-9._=+-]", "_", record.label).lstrip(".")[:100]
    return f"{base or 'run'}-{record.run_id[:8]}"


def _measure(a: RunAccount) -> dict[str, Any]:
    methods: dict[str, set[str]] = {"cpu": set(), "gpu": set()}
    for c in a.components:
        if c.component in methods:
            methods[c.component].add(_mode(c.method))
    out: dict[str, Any] = {
        "measurementMethod": "greentrack",
        "version": __version__,
    }
    if methods["cpu"]:
        out["cpuTrackingMode"] = "+".join(sorted(methods["cpu"]))
    if methods["gpu"]:
        out["gpuTrackingMode"] = "+".join(sorted(methods["gpu"]))
    out["powerConsumption"] = a.it_kwh.value
    out["measurementDuration"] = a.duration_s
    out["measurementDateTime"] = datetime.fromtimestamp(a.start_unix_s, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    return out


def _mode(method: str) -> str:
    """BoAmps' tracking mode of a channel's method: ``nvml``, ``rapl``, or greentrack's id."""
    if "nvml" in method:
        return "nvml"
    if "rapl" in method:
        return "rapl"
    return method or "unknown"


def _stage(a: RunAccount) -> str:
    if a.kind in ("training", "federated"):
        return "training"
    stages = sorted({STAGES.get(s, s) for s in a.kwh_by_stage if s})
    return "+".join(stages) if stages else "training"


def _framework(packages: dict[str, Any]) -> str | None:
    for name in ("lightning", "transformers", "flwr", "torch", "jax", "tensorflow"):
        if name in packages:
            return name
    return None


def _os(r: dict[str, Any]) -> str:
    text = str(r["software"].get("os") or "")
    return text.split("-", 1)[0].lower() or "unknown"


def _version(r: dict[str, Any]) -> dict[str, str]:
    python = r["software"].get("python")
    return {"version": str(python)} if python else {}


def _components(a: RunAccount, hardware: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for g in hardware["gpus"]:
        model = str(g["model"])
        out.append(
            {
                "componentName": f"{g['count']} x {model}",
                "componentType": "gpu",
                "nbComponent": int(g["count"]),
                "manufacturer": model.split()[0].lower() if model.strip() else "unknown",
            }
        )
    cpu = hardware.get("cpu")
    if cpu:
        item: dict[str, Any] = {
            "componentName": str(cpu["model"]),
            "componentType": "cpu",
            "nbComponent": int(cpu.get("packages") or 1),
        }
        out.append(item)
    if hardware.get("memory_gb"):
        out.append({"componentType": "ram", "nbComponent": 1, "memorySize": hardware["memory_gb"]})
    if not out:  # BoAmps needs one: the channels the account counted
        kinds = sorted({c.component for c in a.components}) or ["unknown"]
        out = [{"componentType": k, "nbComponent": 1} for k in kinds]
    return out


def _environment(a: RunAccount) -> dict[str, Any] | None:
    c = a.carbon
    if c is None or not c.region or c.region == "explicit":
        return None
    from greentrack.carbon.intensity import UnknownRegionError, resolve_region

    try:
        grid = resolve_region(c.region).grid_key
    except (UnknownRegionError, ValueError):
        grid = c.region
    country = grid.split("-", 1)[0] if grid else c.region
    return {
        "country": country,
        "location": f"{c.region_name or c.region} ({c.region})",
        "powerSupplierType": "public",
        "powerSourceCarbonIntensity": c.intensity.value,
    }


def _quality(a: RunAccount) -> str | None:
    """The BoAmps class the account's energy range fits in, or ``None`` when it is wider."""
    f = a.it_kwh
    if f.value <= 0:
        return None
    error = max(f.value - f.low, f.high - f.value) / f.value
    return next((name for bound, name in QUALITY if error <= bound + 1e-12), None)


def _description(a: RunAccount) -> str:
    """The figures BoAmps has no field for, in one paragraph."""
    from greentrack.views.numbers import ENERGY, quantities
    from greentrack.views.summary import format_range

    measured, estimated = quantities([a.measured_kwh, a.estimated_kwh], ENERGY)
    parts = [
        f"greentrack run {a.run_id} ({a.name or a.path}): IT energy "
        f"{format_range(a.it_kwh)} (measured {measured}, estimated {estimated})"
    ]
    counted = sorted({f"{c.component} {c.provenance}" for c in a.components})
    if counted:
        parts.append("channels: " + ", ".join(counted))
    if a.facility_kwh is not None and a.carbon is not None:
        parts.append(
            f"facility energy {format_range(a.facility_kwh)} at PUE {num(a.carbon.pue.value, 4)} "
            f"({a.carbon.pue_source})"
        )
    if a.co2e_g is not None and a.carbon is not None:
        parts.append(
            f"CO2e {format_range(a.co2e_g, 'mass')} at {num(a.carbon.intensity.value, 4)} "
            f"gCO2e/kWh ({a.carbon.source or a.carbon.method})"
        )
    else:
        parts.append("no CO2e: the run recorded no region or intensity")
    return "; ".join(parts)
