"""MLflow, through its client (``pip install 'greentrack[mlflow]'``: ``mlflow-skinny`` with
SQLAlchemy and Alembic, so a local ``sqlite:`` store works; a tracking server needs only the
client).

A new MLflow run per greentrack run, in the experiment named ``experiment`` (default: the run's
project, else MLflow's default experiment), named after the run, starting and ending when the
run did, ``FINISHED`` (or ``FAILED`` for a run that did not stop cleanly); or, with
``run_id``, the figures added to that existing run, which keeps its own status and times. The
metrics carry the run's own timestamps; params are the texts of :class:`~.record.Record`;
the report goes under the artifact folder ``greentrack/``.

Attaching to a run that a callback already logged live: a series the run already has is not
logged again, and a final value goes one step above that metric's last step, so it is the
value MLflow shows. A param the run already holds with another value is refused (MLflow never
changes a param): one line naming it. Waits: MLflow's own bounded HTTP timeout and retries
(``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from greentrack.export.api import Exported
from greentrack.export.extras import ExportError, require
from greentrack.export.record import Record

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from greentrack.report.model import Report

ARTIFACT_PATH = "greentrack"
MAX_METRICS = 1000  # per log_batch call (MLflow's limits)
MAX_PARAMS = 100
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
T = TypeVar("T")


def make(options: dict[str, Any], runs: int = 1) -> MlflowTarget:
    return MlflowTarget(**options)


class MlflowTarget:
    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        run_id: str | None = None,
    ) -> None:
        for name, value in (
            ("tracking_uri", tracking_uri),
            ("experiment", experiment),
            ("run_id", run_id),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name}={value!r}: takes a non-empty string")
        if run_id is not None and experiment is not None:
            raise ValueError(
                "experiment (--experiment) and run_id (--run-id) do not go together: an "
                "existing run stays in its own experiment"
            )
        mlflow = require("mlflow", "mlflow")
        require("mlflow.tracking", "mlflow")

        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_id = run_id
        self.uri = str(tracking_uri or mlflow.get_tracking_uri())
        if self.uri.split(":", 1)[0].split("+")[0] in DATABASES:  # a database store
            require("sqlalchemy", "mlflow")
            require("alembic", "mlflow")
        _check_sqlite(self.uri, run_id)
        _check_reachable(self.uri)
        # MLflow's INFO lines ("Creating initial MLflow database tables...") would make an
        # error of ours more than one line; its warnings and errors still show
        import logging

        for name in ("mlflow.store.db.utils", "alembic"):
            if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
                logging.getLogger(name).setLevel(logging.WARNING)
        self._client: MlflowClient | None = None  # opened at the first write (a new
        # sqlite store is created then: nothing is written before every run has been read)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            with self._errors():
                self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def write(self, record: Record, report: Report, artifacts: Path | None) -> Exported:
        if self.run_id is not None:
            run_id, created = self.run_id, False
            with self._errors():
                existing = self.client.get_run(run_id).data
            skip, steps = self._attached(record, run_id, existing.params, set(existing.metrics))
        else:
            with self._errors():
                run_id, created = self._create(record), True
            skip, steps = set(), {}
        try:
            with self._errors():
                self._log(record, run_id, skip, steps, created)
                if artifacts is not None:
                    self.client.log_artifacts(run_id, str(artifacts), ARTIFACT_PATH)
                if created:
                    status = "FINISHED" if record.complete else "FAILED"
                    self.client.set_terminated(run_id, status, _ms(record.end_unix_s))
                url = str(self.client.get_run(run_id).info.artifact_uri)
        except BaseException:
            if created:  # an export that failed leaves no half-written run behind
                with contextlib.suppress(Exception):
                    self.client.delete_run(run_id)
            raise
        names = (
            tuple(sorted(p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*")))
            if artifacts is not None
            else ()
        )
        return Exported("mlflow", record.run_dir, run_id, url, record, names)

    def _create(self, record: Record) -> str:
        name = self.experiment or record.project
        if name is None:
            experiment_id = "0"  # MLflow's default experiment
            found = self.client.get_experiment_by_name("Default")
            if found is not None:
                experiment_id = str(found.experiment_id)
        else:
            found = self.client.get_experiment_by_name(name)
            experiment_id = (
                str(found.experiment_id) if found else str(self.client.create_experiment(name))
            )
        run = self.client.create_run(
            experiment_id,
            start_time=_ms(record.start_unix_s),
            run_name=record.label,
            tags={"greentrack.run_id": record.run_id, "greentrack.run_dir": record.run_dir},
        )
        return str(run.info.run_id)

    def _attached(
        self, record: Record, run_id: str, params: Mapping[str, str], metrics: set[str]
    ) -> tuple[set[str], dict[str, int]]:
        """What an existing run already has: params that clash (refused), series it logged
        live (not logged again), and the step above each metric's last one."""
        for key, value in record.params.items():
            if key in params and params[key] != value:
                raise ExportError(
                    f"MLflow run {run_id} already has the param {key} = {params[key]!r}; this "
                    f"run's is {value!r} (MLflow never changes a param): attach another run, or "
                    "export under another --prefix"
                )
        steps = {}
        for key in set(record.metrics) & metrics:
            history = self.client.get_metric_history(run_id, key)
            steps[key] = max((int(m.step) for m in history), default=-1) + 1
        return set(record.series) & metrics, steps

    def _log(
        self, record: Record, run_id: str, skip: set[str], steps: dict[str, int], created: bool
    ) -> None:
        from mlflow.entities import Metric, Param

        params = [Param(k, v) for k, v in record.params.items()]
        metrics = [
            Metric(name, p.value, _ms(p.wall_unix_s), p.step)
            for name, points in record.series.items()
            if name not in skip
            for p in points
        ]
        end = _ms(record.end_unix_s)
        metrics += [
            Metric(name, value, end, max(record.final_step, steps.get(name, 0)))
            for name, value in record.metrics.items()
        ]
        for chunk in _chunks(params, MAX_PARAMS):
            self.client.log_batch(run_id, params=chunk)
        for mchunk in _chunks(metrics, MAX_METRICS):
            self.client.log_batch(run_id, metrics=mchunk)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """MLflow's exceptions as one line naming the store and the fix where we know it."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as e:
            text = str(e.message if hasattr(e, "message") else e)
            uri = shown_uri(self.uri)
            if "MLFLOW_ALLOW_FILE_STORE" in text:
                raise ExportError(
                    f"MLflow refuses the file store {uri} unless MLFLOW_ALLOW_FILE_STORE=true "
                    "is set: use a database store (--tracking-uri sqlite:///mlflow.db) or a "
                    "tracking server, or set that variable"
                ) from e
            if self.run_id is not None and "RESOURCE_DOES_NOT_EXIST" in str(e.error_code):
                raise ExportError(
                    f"MLflow ({uri}) has no run {self.run_id}: pass the id of an existing run "
                    "(--run-id), or none to create one"
                ) from e
            first = shown_uri(" ".join(text.split()))[:300]
            raise ExportError(f"MLflow ({uri}): {first}") from e


def shown_uri(uri: str) -> str:
    """A tracking URI as a message shows it: a login (``user:password@``) replaced by
    ``***@``.

    >>> shown_uri("https://me:s3cret@mlflow.example.org/"), shown_uri("sqlite:///m.db")
    ('https://***@mlflow.example.org/', 'sqlite:///m.db')
    """
    import re

    return re.sub(r"(?<=://)[^/?#@]*@", "***@", uri)


def _check_sqlite(uri: str, run_id: str | None = None) -> None:
    """A ``sqlite:`` store whose folder is missing or not writable is refused here, in one
    line: MLflow would retry creating its engine for about 100 s, printing a warning each time.
    With ``run_id``, a store that does not exist holds no run: refused before MLflow creates
    an empty one."""
    import os

    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:///:memory:"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    if path.exists():
        if path.is_dir() or not os.access(path, os.R_OK | os.W_OK):
            raise ExportError(
                f"--tracking-uri {uri}: {path} is a folder or not readable and writable: "
                "name the store's file (sqlite:///mlflow.db)"
            )
    elif run_id is not None:
        raise ExportError(
            f"--tracking-uri {uri}: {path} does not exist, so it has no run {run_id}: pass the "
            "store that holds it, or no --run-id to create a run"
        )
    elif not path.parent.is_dir():
        raise ExportError(
            f"--tracking-uri {uri}: the folder {path.parent} does not exist; create it first"
        )
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        raise ExportError(
            f"--tracking-uri {uri}: the folder {path.parent} is not writable (read-only, or "
            "not yours); put the store elsewhere"
        )


REACH_TIMEOUT_S = 10.0
"""How long the first connection to a tracking server may take before the export is refused."""


def _check_reachable(uri: str) -> None:
    """An ``http(s)://`` tracking server that refuses or does not answer a connection within
    :data:`REACH_TIMEOUT_S` is refused here, in one line: MLflow's own retries would wait about
    four minutes before saying so. Behind a proxy (``https_proxy``...) MLflow's client is left
    to reach it."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return
    host = parts.hostname
    if urllib.request.getproxies().get(scheme) and not urllib.request.proxy_bypass(host):
        return
    try:
        port = parts.port or (443 if scheme == "https" else 80)
        socket.create_connection((host, port), timeout=REACH_TIMEOUT_S).close()
    except (OSError, ValueError) as e:
        why = "no answer" if isinstance(e, TimeoutError) else (getattr(e, "strerror", None) or e)
        raise ExportError(
            f"--tracking-uri {shown_uri(uri)}: cannot reach the tracking server ({why}); "
            "start it, or check the host and port"
        ) from None


def _ms(t_unix_s: float) -> int:
    return round(t_unix_s * 1000)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
