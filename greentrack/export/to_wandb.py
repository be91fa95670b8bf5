"""Weights & Biases (``pip install 'greentrack[wandb]'``), offline by default.

One W&B run per greentrack run, named after it, in ``project`` (default: the run's project,
else ``greentrack``): params as its config, the series with ``run.log(..., step=epoch)``, the
final figures in its summary, and the report files in the run's ``files/greentrack/``.
Offline (the default) the run is a folder ``wandb/offline-run-.../`` that ``wandb sync``
uploads later; each series ends with the final figure at the step after the last epoch;
``mode="online"`` uses your own W&B login (``wandb login`` or
``WANDB_API_KEY``), which greentrack never reads or stores. The W&B run records nothing about
the machine that exports (no system metrics, git state or code): the run it describes may
have run elsewhere. Waits: at most ``timeout_s`` to start and to finish the W&B run.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.export.api import Exported, check_output
from greentrack.export.extras import ExportError, require
from greentrack.export.record import Record
from greentrack.numbers import num

if TYPE_CHECKING:
    from greentrack.report.model import Report

MODES = ("offline", "online")
DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 3600.0
FOLDER = "greentrack"


def make(options: dict[str, Any], runs: int = 1) -> WandbTarget:
    return WandbTarget(**options)


class WandbTarget:
    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        mode: str = "offline",
        output: Any = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: takes 'offline' (the default) or 'online'")
        for name, value in (("project", project), ("entity", entity)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name}={value!r}: takes a non-empty string")
        ok = isinstance(timeout_s, int | float) and not isinstance(timeout_s, bool)
        if not (ok and 0 < timeout_s <= MAX_TIMEOUT_S):
            raise ValueError(
                f"timeout_s={timeout_s!r}: takes seconds above 0 up to {num(MAX_TIMEOUT_S, 6)}"
            )
        self.output = None if output is None else check_output(output, "wandb")
        if self.output is not None and not self.output.is_dir():
            raise ValueError(f"-o {self.output}: W&B writes into a folder; create it first")
        self.wandb = require("wandb", "wandb")
        self.project, self.entity, self.mode, self.timeout_s = project, entity, mode, timeout_s

    def _settings(self) -> Any:
        """Quiet, bounded, and about the exported run only; a setting this W&B version does
        not have is left out (several are private, ``x_``, and may come and go)."""
        wanted = {
            "silent": True,
            "console": "off",
            "save_code": False,
            "disable_git": True,
            "disable_job_creation": True,
            "init_timeout": self.timeout_s,
            "finish_timeout": self.timeout_s,
            "x_disable_stats": True,
            "x_disable_meta": True,
            "x_disable_machine_info": True,
            "x_save_requirements": False,
        }
        known = getattr(self.wandb.Settings, "model_fields", {})
        return self.wandb.Settings(**{k: v for k, v in wanted.items() if k in known})

    def write(self, record: Record, report: Report, artifacts: Path | None) -> Exported:
        with self._errors():
            run = self.wandb.init(
                project=self.project or record.project or "greentrack",
                entity=self.entity,
                name=record.label,
                dir=str(self.output) if self.output is not None else None,
                mode=self.mode,
                config=dict(record.params),
                job_type="greentrack-export",
                reinit="create_new",
                settings=self._settings(),
            )
        try:
            with self._errors():
                for step, _, values in record.steps():
                    run.log(values, step=step)
                if record.series:  # each curve ends at the run's final figure
                    finals = {k: v for k, v in record.metrics.items() if k in record.series}
                    run.log(finals, step=record.final_step)
                run.summary.update(dict(record.metrics))
                names: tuple[str, ...] = ()
                if artifacts is not None:
                    target = Path(run.dir) / FOLDER
                    shutil.copytree(artifacts, target, dirs_exist_ok=True)
                    files = sorted(p for p in target.rglob("*") if p.is_file())
                    for path in files:
                        run.save(str(path), base_path=run.dir, policy="now")
                    names = tuple(p.relative_to(target).as_posix() for p in files)
                url = run.url if self.mode == "online" else None
                folder = str(Path(run.dir).parent)
        except BaseException:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
                if self.mode == "offline":  # nothing half-written for `wandb sync` to upload
                    shutil.rmtree(Path(run.dir).parent)
            raise
        with self._errors():
            run.finish()
        return Exported("wandb", record.run_dir, folder, url, record, names)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """W&B's errors as one line (its login, above all)."""
        try:
            yield
        except self.wandb.errors.AuthenticationError as e:
            raise ExportError(
                f"W&B refused the login ({_line(e)}): run `wandb login` or set WANDB_API_KEY "
                "(greentrack never stores it), or export offline (--mode offline)"
            ) from e
        except self.wandb.errors.Error as e:
            text = str(e).lower()
            if self.mode == "online" and "api" in text and "key" in text:
                raise ExportError(
                    f"W&B online needs your W&B login ({_line(e).rstrip('.')}): run `wandb "
                    "login` or set WANDB_API_KEY (greentrack never stores it), or export offline"
                ) from e
            raise ExportError(f"W&B: {_line(e)}") from e


def _line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]
