"""``greentrack.export(run, to=..., **options)``: a run's account and report into MLflow,
Weights & Biases, TensorBoard or a BoAmps file.

Options (keywords):

* every target: ``prefix`` (of every name, default ``"energy/"``), ``artifacts`` (attach the
  report as Markdown, HTML and JSON; default ``True``), ``plots`` (figures in those reports;
  default ``True``), and the report's options that change figures (``region``, ``pue``,
  ``intensity_csv``, ``intensity_provider``...: :mod:`greentrack.report.api`), so the
  figures and the attached report are the same account's;
* ``mlflow``: ``tracking_uri`` (default: MLflow's own, ``MLFLOW_TRACKING_URI``),
  ``experiment`` (a name; default: the run's project, else MLflow's default experiment),
  ``run_id`` (attach to this existing MLflow run instead of creating one);
* ``wandb``: ``project`` (default: the run's project, else ``greentrack``), ``entity``,
  ``mode`` (``"offline"``, the default, or ``"online"`` with your own W&B login, which
  greentrack never reads or stores), ``output`` (W&B's folder, default its own),
  ``timeout_s`` (at most this long to start and to finish the W&B run; default 120);
* ``tensorboard``: ``output`` (the log folder; the run goes to a sub-folder named after it);
* ``boamps``: ``output`` (the ``.json`` file, or a folder), ``task_family`` and ``data_type``
  (which BoAmps requires and only you know), ``task_stage``, ``infra_type``, ``publisher``
  (:mod:`.to_boamps`).

A target's package is imported only when it is used; when it is missing, the error names the
extra (``pip install 'greentrack[mlflow]'``). Nothing is written until the run has been read
and every option checked.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from greentrack.export.extras import ExportError
from greentrack.export.record import PREFIX, Record, check_prefix, record_of

if TYPE_CHECKING:
    from greentrack.report.model import Report

TARGETS = ("mlflow", "wandb", "tensorboard", "boamps")
TARGET_OPTIONS: dict[str, tuple[str, ...]] = {
    "mlflow": ("tracking_uri", "experiment", "run_id"),
    "wandb": ("project", "entity", "mode", "output", "timeout_s"),
    "tensorboard": ("output",),
    "boamps": ("output", "task_family", "data_type", "task_stage", "infra_type", "publisher"),
}
COMMON_OPTIONS = ("prefix", "artifacts", "plots")
REPORT_OPTIONS = (
    "region",
    "pue",
    "intensity_csv",
    "tz",
    "kind",
    "fill_gaps",
    "intensity_provider",
    "provider_region",
)
"""The report options an export takes: those that change a figure (the carbon basis), so the
figures and the attached report stay one account's; the rest (counterfactual regions, metric
targets, layout) is ``greentrack report``'s business."""


@dataclass(frozen=True)
class Exported:
    """What one export wrote.

    ``location``: the MLflow run id, the W&B run folder, the TensorBoard run folder or the
    BoAmps file; ``url``: where to look (the MLflow run's artifact URI, an online W&B run's
    page), or ``None``; ``record``: the figures written; ``artifacts``: the report files
    attached (names relative to the target's artifact folder)."""

    target: str
    run_dir: str
    location: str
    url: str | None
    record: Record
    artifacts: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.run_dir} -> {self.target} {self.location}{where}"


class Target(Protocol):
    """A target module's writer: built from its options (checked, client imported), then
    :meth:`write` for each run."""

    def write(self, record: Record, report: Report, artifacts: Path | None) -> Exported: ...


def export(run: Any, to: str, **options: Any) -> Exported:
    """Export one run (a run directory or a loaded :class:`~greentrack.Run`) to ``to``
    (``"mlflow"``, ``"wandb"``, ``"tensorboard"``, ``"boamps"``); see the module's docstring
    for the options. Bad options raise ``ValueError`` (one line naming the option and the
    fix); a missing package :class:`~.extras.MissingExtraError`.

    >>> import greentrack
    >>> greentrack.export("runs/exp1", to="mlflow", experiment="resnet")  # doctest: +SKIP
    >>> greentrack.export("runs/exp1", to="boamps", output="exp1.json",
    ...                   task_family="image classification", data_type="image")  # doctest: +SKIP
    """
    from greentrack.report.api import run_paths

    paths = run_paths(run)
    if len(paths) != 1:
        raise ValueError(
            f"export() takes one run; got {len(paths)} (greentrack.export.api.export_runs "
            "takes several)"
        )
    return export_runs(paths, to, **options)[0]


def export_runs(runs: Sequence[Any], to: str, **options: Any) -> list[Exported]:
    """Export each of ``runs``. Every run is read and every option checked before the first
    is written (``greentrack export RUN...``)."""
    from greentrack.report.api import run_paths
    from greentrack.report.model import ReportOptions, build_report

    target_options, common, report_options = split_options(to, options)
    paths = run_paths(runs)
    if len(paths) > 1 and target_options.get("run_id") is not None:
        raise ValueError(
            f"run_id (--run-id) attaches one greentrack run to one MLflow run; got {len(paths)} "
            "runs: export them one at a time"
        )
    target = make_target(to, target_options, len(paths))
    reports = [build_report([p], ReportOptions(**report_options)) for p in paths]
    records = [
        record_of(r.accounts[0], r.to_dict()["runs"][0]["label"], common["prefix"]) for r in reports
    ]
    done = []
    for record, report in zip(records, reports, strict=True):
        if not common["artifacts"] or to == "boamps":
            done.append(target.write(record, report, None))
            continue
        with tempfile.TemporaryDirectory(prefix="greentrack-export-") as tmp:
            from greentrack.export.artifacts import write_artifacts

            write_artifacts(report, Path(tmp), plots=common["plots"])
            done.append(target.write(record, report, Path(tmp)))
    return done


def split_options(
    to: str, options: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``options`` checked and split: the target's, the common ones (with their defaults), and
    the report's. An option of another target, or of none, is one line naming it."""
    if to not in TARGETS:
        raise ValueError(f"to={to!r} is not an export target; choose one of: {', '.join(TARGETS)}")
    mine = TARGET_OPTIONS[to]
    target: dict[str, Any] = {}
    common: dict[str, Any] = {"prefix": PREFIX, "artifacts": True, "plots": True}
    report: dict[str, Any] = {}
    for name, value in options.items():
        if name in mine:
            target[name] = value
        elif name in COMMON_OPTIONS:
            common[name] = value
        elif name in REPORT_OPTIONS:
            report[name] = value
        else:
            owners = [t for t, names in TARGET_OPTIONS.items() if name in names]
            if owners:
                raise ValueError(
                    f"{name} is an option of the {' and '.join(owners)} export, not of {to}"
                )
            raise ValueError(
                f"unknown export option {name!r}; {to} takes: "
                + ", ".join((*mine, *COMMON_OPTIONS, *REPORT_OPTIONS))
            )
    check_prefix(common["prefix"])
    for flag in ("artifacts", "plots"):
        if not isinstance(common[flag], bool):
            raise ValueError(f"{flag}={common[flag]!r}: takes True or False")
    if report.get("intensity_csv") is not None:
        report["intensity_csv"] = Path(report["intensity_csv"])
    return target, common, report


def make_target(to: str, options: Mapping[str, Any], runs: int = 1) -> Target:
    """The writer of ``to``: its package imported (or the extra named), its options checked."""
    module = importlib.import_module(f"greentrack.export.to_{to}")
    target: Target = module.make(dict(options), runs)
    return target


def check_output(value: Any, what: str) -> Path:
    """An ``output`` option: a path whose folder exists (nothing is created above it)."""
    if value is None:
        raise ValueError(f"the {what} export needs output= (-o): {OUTPUT_HELP[what]}")
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"output={value!r}: takes a path")
    path = Path(value)
    if not path.parent.is_dir():
        raise ValueError(f"-o {path}: the folder {path.parent} does not exist; create it first")
    return path


OUTPUT_HELP = {
    "tensorboard": "the log folder TensorBoard reads (tensorboard --logdir OUT)",
    "boamps": "the BoAmps .json file to write (a folder for several runs)",
    "wandb": "the folder W&B writes its run folder in",
}


def unique_dir(parent: Path, record: Record) -> Path:
    """A folder for ``record`` under ``parent`` named after the run (its label, else its id),
    or ``label-RUNID8`` when that name is taken; never one that already holds files."""
    import re

    base = re.sub(r"[^A-Za-z0-9._=+-]", "_", record.label).lstrip(".")[:100] or record.run_id
    for name in (base, f"{base}-{record.run_id[:8]}"):
        path = parent / name
        if not path.exists() or not any(path.iterdir()):
            return path
    raise ExportError(
        f"{parent / base} and {parent / (base + '-' + record.run_id[:8])} already hold files: "
        "export to another -o folder, or remove them"
    )
