"""TensorBoard event files (``pip install 'greentrack[tensorboard]'``: the ``tensorboard``
package alone; no TensorFlow, no torch).

Written with TensorBoard's own event-file writer (``tensorboard.summary.writer``), into
``OUTPUT/<run name>/`` (``OUTPUT/<run name>-<run id>`` when that is taken), so that
``tensorboard --logdir OUTPUT`` shows each exported run beside the others:

* scalars: the series at each epoch (round) and every final figure at the step after the last
  one, stamped with the run's own times. TensorBoard's scalar dashboard reads float32 only (its
  data server drops float64 scalars: checked against ``tensorboard_data_server``), so the
  scalars carry 7 significant digits;
* text (rendered as Markdown by the text dashboard): ``<prefix>figures``, every final figure
  exactly (``repr`` of the float) with the params; ``<prefix>report``, the Markdown report;
* the report files beside the events, in ``greentrack/`` (TensorBoard ignores them).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack.export.api import Exported, check_output, unique_dir
from greentrack.export.extras import require
from greentrack.export.record import Record

if TYPE_CHECKING:
    from greentrack.report.model import Report

FOLDER = "greentrack"


def make(options: dict[str, Any], runs: int = 1) -> TensorboardTarget:
    return TensorboardTarget(**options)


class TensorboardTarget:
    def __init__(self, output: Any = None) -> None:
        self.output = check_output(output, "tensorboard")
        if self.output.exists() and not self.output.is_dir():
            raise ValueError(f"-o {self.output} is a file: TensorBoard reads a folder")
        require("tensorboard", "tensorboard")
        require("tensorboard.summary.writer.event_file_writer", "tensorboard")

    def write(self, record: Record, report: Report, artifacts: Path | None) -> Exported:
        self.output.mkdir(exist_ok=True)
        folder = unique_dir(self.output, record)
        events = _Events(folder)
        try:
            # texts first, at step 0: every tag's steps then only grow (a reader purges a
            # tag whose steps go back)
            events.text(record.prefix + "figures", _figures_table(record), record.end_unix_s)
            md = artifacts / "greentrack_report.md" if artifacts is not None else None
            if md is not None and md.is_file():
                text = md.read_text(encoding="utf-8")
                events.text(record.prefix + "report", text, record.end_unix_s)
            for step, wall, values in record.steps():
                for name, value in values.items():
                    events.scalar(name, value, step, wall)
            for name, value in record.metrics.items():
                events.scalar(name, value, record.final_step, record.end_unix_s)
            names: tuple[str, ...] = ()
            if artifacts is not None:
                shutil.copytree(artifacts, folder / FOLDER)
                names = tuple(
                    sorted(
                        p.relative_to(folder / FOLDER).as_posix()
                        for p in (folder / FOLDER).rglob("*")
                        if p.is_file()
                    )
                )
        finally:
            events.close()
        return Exported("tensorboard", record.run_dir, str(folder), None, record, names)


class _Events:
    """Scalar and text summaries, as TensorBoard's own ``tensorboard.summary`` writes them,
    through its event-file writer."""

    def __init__(self, folder: Path) -> None:
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.scalar import metadata as scalar_metadata
        from tensorboard.plugins.text import metadata as text_metadata
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.writer = EventFileWriter(str(folder))
        self.scalar_md = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name=scalar_metadata.PLUGIN_NAME
            ),
            data_class=summary_pb2.DataClass.DATA_CLASS_SCALAR,
        )
        self.text_md = text_metadata.create_summary_metadata(display_name=None, description=None)
        self.text_md.data_class = summary_pb2.DataClass.DATA_CLASS_TENSOR

    def scalar(self, tag: str, value: float, step: int, wall_unix_s: float) -> None:
        import numpy as np
        from tensorboard.util import tensor_util

        tensor = tensor_util.make_tensor_proto(np.float32(value))
        self._add(tag, tensor, self.scalar_md, step, wall_unix_s)

    def text(self, tag: str, text: str, wall_unix_s: float) -> None:
        from tensorboard.util import tensor_util

        self._add(tag, tensor_util.make_tensor_proto(text), self.text_md, 0, wall_unix_s)

    def _add(self, tag: str, tensor: Any, metadata: Any, step: int, wall_unix_s: float) -> None:
        from tensorboard.compat.proto import event_pb2

        event = event_pb2.Event(wall_time=wall_unix_s, step=step)
        event.summary.value.add(tag=tag, tensor=tensor, metadata=metadata)
        self.writer.add_event(event)

    def close(self) -> None:
        self.writer.close()


def _figures_table(record: Record) -> str:
    """Every final figure, exact (``repr``: it reads back as the same float), and the params,
    as a Markdown table."""
    rows = ["| name | value |", "|---|---|"]
    rows += [f"| {k} | {v!r} |" for k, v in record.metrics.items()]
    rows += [f"| {k} | {_cell(v)} |" for k, v in record.params.items()]
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
