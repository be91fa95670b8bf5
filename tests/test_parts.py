"""A job is what ran: only the job's own parts count (the reader skips the others with a note
naming the part and why; ``greentrack merge`` refuses them, one line each, and copies
nothing), merge copies no symbolic link, a job whose rank 0 left nothing loads from the ranks
that ran, and docs/distributed.md's launcher table names the variables greentrack reads."""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.cli import main
from greentrack.errors import RunFormatError
from greentrack.launcher import RankInfo
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, ManualClock, PowerTrace
from greentrack.report.model import build_report
from tests.helpers import run_for

ROOT = Path(__file__).resolve().parents[1]


def _rank(
    root: Path, rank: int, world: int = 2, job: str | None = "j", watts: float = 100.0
) -> Path:
    """Rank ``rank`` of a job of ``world`` ranks, tracked for 2 s into ``root``; its folder."""
    clock = ManualClock(1_678_795_200.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(watts))], clock)]
    info = RankInfo(
        rank=rank,
        local_rank=rank,
        world_size=world,
        local_world_size=world,
        launcher="torchrun",
        job_id=job,
    )
    with greentrack.track(root, meters=meters, clock=clock, background=False, rank=info) as t:
        run_for(t, clock, 2.0)
    return root if rank == 0 else root / "parts" / f"seg0-rank{rank}"


def _kwh(path: Path) -> float:
    return account_run(greentrack.load_run(path)).it_kwh.value


def _set_part(**change: Any) -> Callable[[Path], None]:
    def edit(part: Path) -> None:
        meta = json.loads((part / "meta.json").read_text())
        meta["part"].update(change)
        (part / "meta.json").write_text(json.dumps(meta))

    return edit


def _drop_part(part: Path) -> None:
    meta = json.loads((part / "meta.json").read_text())
    del meta["part"]
    (part / "meta.json").write_text(json.dumps(meta))


def _write(name: str, text: str) -> Callable[[Path], None]:
    def edit(part: Path) -> None:
        (part / name).write_text(text)

    return edit


# (case, edit of a valid seg0-rank1 part of job j, folder it is put in, why it does not belong)
NOT_THE_JOBS = [
    ("another job", _set_part(job_id="other"), "seg0-rank1", "belongs to job other"),
    ("no job id", _set_part(job_id=None), "seg0-rank1", "has no job id; this job is j"),
    ("rank -1", _set_part(rank=-1), "seg0-rank1", "rank is -1"),
    ("rank 1e6", _set_part(rank=1e6), "seg0-rank1", "rank is 1000000.0"),
    ("rank 1.9", _set_part(rank=1.9), "seg0-rank1", "rank is 1.9"),
    ("rank true", _set_part(rank=True), "seg0-rank1", "rank is True"),
    ("rank beyond the world", _set_part(rank=5), "seg0-rank5", "outside its world of 2"),
    ("segment -1", _set_part(segment=-1), "seg0-rank1", "segment is -1"),
    ("segment as text", _set_part(segment="0"), "seg0-rank1", "segment is '0'"),
    ("misnamed folder", _set_part(), "seg0-rank7", "its folder would be seg0-rank1"),
    ("another world", _set_part(world_size=4, rank=3), "seg0-rank3", "had 4 ranks"),
    ("the root's place", _set_part(rank=0), "seg0-rank0", "place is the run directory"),
    ("no part block", _drop_part, "seg0-rank1", "no 'part' block"),
    ("meta.json torn", _write("meta.json", '{"run_id": '), "seg0-rank1", "not valid JSON"),
]
IDS = [c[0] for c in NOT_THE_JOBS]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Rank 0 of job j (world 2) alone, and a valid rank 1 of it written elsewhere."""
    base = tmp_path_factory.mktemp("job")
    root = _rank(base / "a" / "job", 0)
    part = _rank(base / "b" / "job", 1, watts=150.0)
    return {"root": root, "part": part}


def _foreign(job: dict[str, Path], where: Path, edit: Callable[[Path], None], name: str) -> Path:
    """A copy of the job's rank 1, edited, in ``where/parts/<name>``."""
    target = where / "parts" / name
    shutil.copytree(job["part"], target)
    edit(target)
    return target


@pytest.mark.parametrize("case,edit,name,why", NOT_THE_JOBS, ids=IDS)
def test_the_reader_skips_a_part_that_is_not_the_jobs_and_says_so(
    job: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    edit: Callable[[Path], None],
    name: str,
    why: str,
) -> None:
    alone = _kwh(job["root"])
    run_dir = tmp_path / "job"
    shutil.copytree(job["root"], run_dir)
    _foreign(job, run_dir, edit, name)
    run = greentrack.load_run(run_dir)
    assert run.parts == []
    acct = account_run(run)
    assert acct.it_kwh.value == pytest.approx(alone)  # never added to the job's total
    assert {c.key for c in acct.components} == {"gpu0"}
    notes = [n for n in acct.notes if f"parts/{name} skipped" in n]
    assert len(notes) == 1 and why in notes[0] and "not counted" in notes[0], acct.notes
    assert main(["summary", str(run_dir), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(f"parts/{name} skipped" in n and why in n for n in out["notes"])


def test_a_part_whose_timeline_is_another_runs_is_skipped_not_a_crash(
    job: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "job"
    shutil.copytree(job["root"], run_dir)
    header = "t_unix_s,t_mono_s,cpu0_power_w,cpu0_energy_j,gaps\n1,1,1,1,\n"
    _foreign(job, run_dir, _write("timeline.csv", header), "seg0-rank1")
    acct = account_run(greentrack.load_run(run_dir))
    assert acct.it_kwh.value == pytest.approx(_kwh(job["root"]))
    assert any("parts/seg0-rank1 skipped" in n and "does not match" in n for n in acct.notes)


def test_the_jobs_own_part_still_counts(job: dict[str, Path], tmp_path: Path) -> None:
    run_dir = tmp_path / "job"
    shutil.copytree(job["root"], run_dir)
    _foreign(job, run_dir, _set_part(), "seg0-rank1")
    acct = account_run(greentrack.load_run(run_dir))
    assert {c.key for c in acct.components} == {"gpu0", "seg0-rank1/gpu0"}
    assert acct.it_kwh.value == pytest.approx(_kwh(job["root"]) + _kwh(job["part"]))
    assert not any("skipped" in n or "left no run directory" in n for n in acct.notes)


@pytest.mark.parametrize("case,edit,name,why", NOT_THE_JOBS, ids=IDS)
def test_merge_refuses_a_part_that_is_not_the_jobs_and_copies_nothing(
    job: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    edit: Callable[[Path], None],
    name: str,
    why: str,
) -> None:
    source = tmp_path / "b" / "job"
    bad = _foreign(job, source, edit, name)
    dest = tmp_path / "merged"
    assert main(["merge", str(dest), str(job["root"]), str(source)]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("greentrack: "), err
    assert str(bad) in lines[0] and why in lines[0] and "nothing was copied" in lines[0]
    assert "Traceback" not in err
    assert not dest.exists()  # not even the job's good root


def test_merge_follows_no_symbolic_link(
    job: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the job's\n")
    source = tmp_path / "b" / "job"
    part = _foreign(job, source, _set_part(), "seg0-rank1")
    (part / "notes.txt").symlink_to(outside / "secret.txt")
    (part / "extra").symlink_to(outside, target_is_directory=True)
    # a whole part that is a link out of the source: rank 1 of job j, kept elsewhere
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(job["part"], elsewhere)
    (source / "parts" / "seg0-rank9").symlink_to(elsewhere, target_is_directory=True)
    dest = tmp_path / "merged"
    assert main(["merge", str(dest), str(job["root"]), str(source)]) == 0
    err = capsys.readouterr().err
    assert "merged 2 parts" in err, err
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert not any("notes.txt" in p or "extra" in p or "seg0-rank9" in p for p in copied)
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert "parts/seg0-rank1/meta.json" in copied
    notes = [ln for ln in err.splitlines() if ln.startswith("greentrack: note: skipped")]
    assert len(notes) == 3 and all("symbolic link" in n for n in notes), err
    assert _kwh(dest) == pytest.approx(_kwh(job["root"]) + _kwh(job["part"]))


def test_a_job_where_only_rank_1_ran_loads_and_names_the_missing_rank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "job"
    part = _rank(run_dir, 1)
    assert not (run_dir / "meta.json").exists()
    run = greentrack.load_run(run_dir)
    assert run.meta["part"]["rank"] == 1 and run.complete and run.parts == []
    acct = account_run(run)
    assert acct.it_kwh.value == pytest.approx(_kwh(part)) and acct.it_kwh.value > 0
    assert any("rank 0 of 2 left no run directory" in n for n in acct.notes), acct.notes
    assert any("meta.json is missing" in n and "parts/seg0-rank1" in n for n in acct.notes)
    assert main(["summary", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "rank 0 of 2" in out and "its energy is not counted" in out
    assert "Fix: parts written on another host join the run with `greentrack merge`" in out
    # the paper keeps the note and leaves its terminal advice to stderr
    report = build_report([run_dir])
    notes = report.data["runs"][0]["notes"]
    assert any(n.startswith("segment 0: rank 0 of 2 left no run directory") for n in notes)
    assert not any("greentrack merge" in n or "Fix:" in n for n in notes), notes
    assert any(a.endswith("join the run with `greentrack merge`") for a in report.advice)


def test_a_job_merged_without_its_rank_0_loads_from_the_ranks_that_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host_b = tmp_path / "b" / "job"
    for rank in (1, 2):
        _rank(host_b, rank, world=3)
    dest = tmp_path / "merged"
    assert main(["merge", str(dest), str(host_b)]) == 0
    acct = account_run(greentrack.load_run(dest))
    assert {c.key for c in acct.components} == {"gpu0", "seg0-rank2/gpu0"}
    assert any("rank 0 of 3 left no run directory" in n for n in acct.notes)
    # a foreign part does not join a job led by its first rank either
    foreign = _rank(tmp_path / "c" / "job", 2, world=3, job="other")
    shutil.copytree(foreign, dest / "parts" / "seg0-rank0-copy")
    bad = greentrack.load_run(dest)
    assert [p.path.name for p in bad.parts] == ["seg0-rank2"]
    assert any("parts/seg0-rank0-copy skipped" in n for n in bad.damage)


def test_a_directory_with_only_unreadable_parts_says_why_in_one_line(tmp_path: Path) -> None:
    part = tmp_path / "job" / "parts" / "seg0-rank1"
    part.mkdir(parents=True)
    (part / "meta.json").write_text("[]")
    with pytest.raises(RunFormatError) as e:
        greentrack.load_run(tmp_path / "job")
    assert "\n" not in str(e.value) and "parts/seg0-rank1" in str(e.value)


# --- docs/distributed.md: the launcher table ---------------------------------------------------

VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Za-z0-9]+)*")


def _launcher_table() -> list[list[str]]:
    text = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
    section = text.split("\n## Launchers\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def _read_by_launcher_py() -> set[str]:
    """The environment variables greentrack/launcher.py reads: its string constants that are
    spelled like one (docstrings left out)."""
    tree = ast.parse((ROOT / "greentrack" / "launcher.py").read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and VARIABLE.fullmatch(node.value)
    }


def test_the_launcher_table_names_the_variables_greentrack_reads() -> None:
    rows = _launcher_table()
    launchers = " ".join(row[0] for row in rows)
    for name in (
        "torchrun",
        "accelerate launch",
        "srun",
        "mpirun",
        "MPICH",
        "deepspeed",
        "Lightning",
    ):
        assert name in launchers, name
    documented = {
        token
        for row in rows
        for cell in row[1:]
        for token in re.findall(r"`([^`]+)`", cell)
        if VARIABLE.fullmatch(token)
    }
    read = _read_by_launcher_py()
    assert read, "no variable found in greentrack/launcher.py"
    assert documented - read == set(), "documented but not read by greentrack/launcher.py"
    assert read - documented == set(), "read by greentrack/launcher.py but not in the table"
    assert all(len(row) == len(rows[0]) for row in rows)


def test_a_run_of_one_process_takes_no_rank_of_another_job(
    job: dict[str, Path], tmp_path: Path
) -> None:
    """A run tracked by one process (no part block) has no rank 1 and no job: a rank of job j
    copied into its parts/ is not added to it (it doubled the total, with no note)."""
    clock = ManualClock(1_700_000_000.0)
    meters = [FakeMeter([FakeChannelSpec("gpu0", trace=PowerTrace.constant(100.0))], clock)]
    with greentrack.track(
        tmp_path / "one", meters=meters, clock=clock, background=False, rank=None
    ) as t:
        run_for(t, clock, 2.0)
    alone = _kwh(tmp_path / "one")
    _foreign(job, tmp_path / "one", _set_part(), "seg0-rank1")
    run = greentrack.load_run(tmp_path / "one")
    assert run.parts == [] and _kwh(tmp_path / "one") == pytest.approx(alone)
    assert any("seg0-rank1 skipped" in d and "had 1" in d for d in run.damage)
    assert main(["merge", str(tmp_path / "one"), str(tmp_path / "merged")]) == 2
