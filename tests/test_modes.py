"""Files honour the umask: a run's files and a report are readable by the group and others as
any new file of the user's is (they were 0600 whatever the umask), and a file a report replaces
(a README a model card is merged into) keeps its own mode."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import greentrack
from greentrack.cli import main
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_run_files_and_reports_follow_the_umask(tmp_path: Path) -> None:
    meters = [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(50.0))], time.monotonic)]
    with greentrack.track(tmp_path / "run", meters=meters, region="DE"):
        time.sleep(0.05)
    for name in ("meta.json", "summary.json", "timeline.csv", "spans.jsonl", "events.jsonl"):
        assert _mode(tmp_path / "run" / name) == 0o644, name
    out = tmp_path / "energy.md"
    assert main(["report", str(tmp_path / "run"), "-f", "md", "-o", str(out), "--no-plots"]) == 0
    assert _mode(out) == 0o644
    readme = tmp_path / "README.md"
    readme.write_text("# model\n")
    readme.chmod(0o640)
    args = ["report", str(tmp_path / "run"), "-f", "model-card", "-o", str(readme), "--no-plots"]
    assert main(args) == 0
    assert "co2_eq_emissions" in readme.read_text() and _mode(readme) == 0o640


def test_a_tight_umask_is_honoured_too(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        meters = [
            FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(50.0))], time.monotonic)
        ]
        with greentrack.track(tmp_path / "run", meters=meters):
            time.sleep(0.05)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "run" / "meta.json") == 0o600


def test_escape_sequences_in_a_run_name_do_not_reach_the_terminal(tmp_path: Path) -> None:
    """A run named with terminal escapes (clear the screen, retitle the window, a bell) prints
    them as visible text in the summary."""
    import subprocess
    import sys

    name = "evil\x1b[2J\x1b]0;owned\x07\rname"
    meters = [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(5.0))], time.monotonic)]
    with greentrack.track(tmp_path / "run", meters=meters, name=name):
        time.sleep(0.02)
    text = str(greentrack.summarize(tmp_path / "run"))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "evil\\x1b[2J\\x1b]0;owned\\x07\\x0dname" in text
    cli = [sys.executable, "-m", "greentrack", "summary", str(tmp_path / "run")]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=120).stdout
    assert "\x1b" not in out and "\\x1b[2J" in out


def test_a_run_directory_under_a_regular_file_never_stops_training(tmp_path: Path) -> None:
    """`run_dir` below a regular file raised NotADirectoryError into training (track, greentrack
    run, the callbacks): the tracker measures on in memory with one warning, the command runs."""
    import subprocess
    import sys

    (tmp_path / "afile").write_text("x")
    meters = [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(5.0))], time.monotonic)]
    with (
        pytest.warns(RuntimeWarning, match="cannot write its run directory"),
        greentrack.track(tmp_path / "afile" / "run", meters=meters) as run,
    ):
        time.sleep(0.02)
    assert run.unwritten and sum(run.energy_j().values()) >= 0
    cli = [sys.executable, "-m", "greentrack", "run", "--run-dir", str(tmp_path / "afile" / "r")]
    done = subprocess.run(
        [*cli, "--", sys.executable, "-c", "print('trained')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "trained" in done.stdout
    assert "could not be saved" in done.stderr and "Traceback" not in done.stderr


def test_report_outputs_are_checked_before_anything_is_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`--bib nodir/refs.bib` printed a raw errno with a temporary file's name, after -o had
    been checked or written: both folders are checked first, in one line, nothing written."""
    meters = [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(5.0))], time.monotonic)]
    with greentrack.track(tmp_path / "run", meters=meters, region="DE"):
        time.sleep(0.02)
    out = tmp_path / "paper"
    out.mkdir()
    args = ["report", str(tmp_path / "run"), "-f", "latex", "-o", str(out / "energy.tex")]
    with pytest.raises(SystemExit) as stop:  # refused while the arguments are parsed
        main([*args, "--bib", str(tmp_path / "nodir" / "refs.bib")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nodir does not exist; create it first" in err
    assert ".tmp" not in err and list(out.iterdir()) == []
