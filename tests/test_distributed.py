"""Every launcher: rank detection from the environment, one run directory per job with a part
per rank, the node's CPU counted once, restarts as segments, unrelated jobs kept apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.errors import RunExistsError
from greentrack.launcher import RankInfo, detect, gpus_for
from greentrack.meters.fake import FakeChannelSpec, FakeGpu, FakeMeter, FakeNvml, ManualClock
from tests.helpers import run_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "env,expected",
    [
        (
            {
                "RANK": "3",
                "LOCAL_RANK": "1",
                "WORLD_SIZE": "8",
                "LOCAL_WORLD_SIZE": "2",
                "TORCHELASTIC_RUN_ID": "abc",
                "TORCHELASTIC_RESTART_COUNT": "2",
            },
            ("torchrun", 3, 1, 8, 2, "abc", 2),
        ),
        (
            {
                "SLURM_PROCID": "5",
                "SLURM_LOCALID": "1",
                "SLURM_NTASKS": "8",
                "SLURM_TASKS_PER_NODE": "4(x2)",
                "SLURM_JOB_ID": "991",
                "SLURM_STEP_ID": "0",
            },
            ("slurm", 5, 1, 8, 4, "991.0", 0),
        ),
        (
            {
                "OMPI_COMM_WORLD_RANK": "2",
                "OMPI_COMM_WORLD_LOCAL_RANK": "0",
                "OMPI_COMM_WORLD_SIZE": "4",
                "OMPI_COMM_WORLD_LOCAL_SIZE": "1",
            },
            ("openmpi", 2, 0, 4, 1, None, 0),
        ),
        (
            {"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2"},
            ("mpich", 1, 1, 2, 2, None, 0),
        ),
        # srun torchrun ...: torchrun's workers win over the SLURM task around them
        (
            {
                "RANK": "1",
                "WORLD_SIZE": "2",
                "LOCAL_RANK": "1",
                "SLURM_PROCID": "0",
                "SLURM_NTASKS": "1",
                "SLURM_JOB_ID": "7",
            },
            ("torchrun", 1, 1, 2, 2, "7", 0),
        ),
        ({}, ("none", 0, 0, 1, 1, None, 0)),
    ],
)
def test_launchers_are_detected(env: dict[str, str], expected: tuple) -> None:  # type: ignore[type-arg]
    i = detect(env)
    assert (
        i.launcher,
        i.rank,
        i.local_rank,
        i.world_size,
        i.local_world_size,
        i.job_id,
        i.restart,
    ) == expected


def test_broken_launcher_environments_are_named() -> None:
    with pytest.raises(ValueError, match=r"\$RANK='x' is not an integer"):
        detect({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="not a valid rank"):
        detect({"RANK": "4", "WORLD_SIZE": "2"})


def test_each_rank_measures_the_gpu_it_drives() -> None:
    four = RankInfo(rank=6, local_rank=2, world_size=8, local_world_size=4)
    assert gpus_for(four, 4) == [2] and gpus_for(four, 1) == [0] and gpus_for(four, 0) is None
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(uuid=f"GPU-{i}000aaaa") for i in range(4)], clock)
    from greentrack.discovery import DiscoveryOptions, discover

    meters, _ = discover(DiscoveryOptions(nvml=nvml, cpu=False, rank=four, environ={}))
    assert [c.details["uuid"] for m in meters for c in m.channels] == ["GPU-2000aaaa"]


def _rank(tmp_path: Path, info: RankInfo, **kwargs: object) -> greentrack.Tracker:
    clock = ManualClock()
    meters = [FakeMeter([FakeChannelSpec("gpu0", "gpu")], clock)]
    return greentrack.track(
        tmp_path / "job", meters=meters, clock=clock, background=False, rank=info, **kwargs
    )


def test_a_job_writes_one_directory_with_a_part_per_rank(tmp_path: Path) -> None:
    infos = [
        RankInfo(
            rank=r, local_rank=r, world_size=3, local_world_size=3, launcher="torchrun", job_id="j1"
        )
        for r in range(3)
    ]
    trackers = [_rank(tmp_path, i) for i in infos]
    for t in trackers:
        t.start()
    for t in trackers:
        run_for(t, t._clock, 2.0)  # type: ignore[attr-defined]
        t.stop()
    run = greentrack.load_run(tmp_path / "job")
    assert sorted(p.path.name for p in run.parts) == ["seg0-rank1", "seg0-rank2"]
    acct = account_run(run)
    assert {c.key for c in acct.components} == {"gpu0", "seg0-rank1/gpu0", "seg0-rank2/gpu0"}
    assert not any("left no run directory" in n for n in acct.notes)


def test_a_missing_rank_is_named(tmp_path: Path) -> None:
    for r in (0, 2):
        t = _rank(tmp_path, RankInfo(rank=r, world_size=3, local_world_size=3, job_id="j"))
        with t:
            run_for(t, t._clock, 1.0)  # type: ignore[attr-defined]
    acct = account_run(greentrack.load_run(tmp_path / "job"))
    assert any("rank 1 of 3 left no run directory" in n for n in acct.notes)


def test_a_restart_is_a_segment_and_unrelated_jobs_are_refused(tmp_path: Path) -> None:
    first = RankInfo(rank=0, world_size=2, local_world_size=2, job_id="j", restart=0)
    with _rank(tmp_path, first) as t:
        run_for(t, t._clock, 1.0)  # type: ignore[attr-defined]
    again = RankInfo(rank=0, world_size=2, local_world_size=2, job_id="j", restart=1)
    with _rank(tmp_path, again) as t:
        run_for(t, t._clock, 1.0)  # type: ignore[attr-defined]
    assert (tmp_path / "job" / "parts" / "seg1-rank0" / "summary.json").exists()
    other = RankInfo(rank=1, world_size=2, local_world_size=2, job_id="other")
    with pytest.raises(RunExistsError, match="holds the run of job j; this is job other"):
        _rank(tmp_path, other)
    with pytest.raises(RunExistsError):
        _rank(tmp_path, RankInfo(rank=0, world_size=2, local_world_size=2, job_id="other")).start()


def _launch(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "GREENTRACK_CPU_TDP_W": "20", **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torchrun_bare_ddp_two_processes(tmp_path: Path) -> None:
    pytest.importorskip("torch.distributed")
    _launch(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            str(ROOT / "examples" / "torchrun_ddp.py"),
            "--run-dir",
            str(tmp_path / "ddp"),
        ],
        tmp_path,
    )
    run = greentrack.load_run(tmp_path / "ddp")
    assert run.complete and [p.path.name for p in run.parts] == ["seg0-rank1"]
    acct = account_run(run)
    # CPU: no RAPL here, so each rank estimates its own process (they add up)
    assert {c.key for c in acct.components} == {"cpu", "seg0-rank1/cpu"}
    assert acct.processes == 2 and acct.units and len(acct.units["rows"]) == 2


def test_slurm_srun_tasks_share_one_run_directory(tmp_path: Path) -> None:
    script = tmp_path / "task.py"
    script.write_text(
        "import sys, time, greentrack\n"
        "with greentrack.track(run_dir=sys.argv[1]) as run:\n"
        "    with run.span('work'):\n"
        "        t = time.time()\n"
        "        while time.time() - t < 0.3: pass\n"
    )
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "GREENTRACK_CPU_TDP_W": "20",
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank),
            "SLURM_NTASKS": "2",
            "SLURM_NTASKS_PER_NODE": "2",
            "SLURM_JOB_ID": "4242",
            "SLURM_STEP_ID": "0",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path / "job")],
                env=env,
                cwd=tmp_path,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    run = greentrack.load_run(tmp_path / "job")
    assert run.meta["part"]["launcher"] == "slurm" and run.meta["part"]["job_id"] == "4242.0"
    assert [p.path.name for p in run.parts] == ["seg0-rank1"]


def test_merge_gathers_the_parts_written_on_two_hosts(tmp_path: Path) -> None:
    """No shared file system: each 'host' writes its own copy of the run directory."""
    for rank, host in ((0, "a"), (1, "b"), (2, "b")):
        info = RankInfo(rank=rank, local_rank=rank, world_size=3, local_world_size=3, job_id="j9")
        with _rank(tmp_path / host, info) as t:
            run_for(t, t._clock, 1.0)  # type: ignore[attr-defined]
    from greentrack.cli import main

    assert (
        main(
            [
                "merge",
                str(tmp_path / "merged"),
                str(tmp_path / "a" / "job"),
                str(tmp_path / "b" / "job"),
            ]
        )
        == 0
    )
    acct = account_run(greentrack.load_run(tmp_path / "merged"))
    assert {c.key for c in acct.components} == {"gpu0", "seg0-rank1/gpu0", "seg0-rank2/gpu0"}
    # merging again changes nothing; another job's directory is refused
    assert main(["merge", str(tmp_path / "merged"), str(tmp_path / "b" / "job")]) == 0
    other = RankInfo(rank=1, world_size=2, local_world_size=2, job_id="zz")
    with _rank(tmp_path / "c", other) as t:
        run_for(t, t._clock, 1.0)  # type: ignore[attr-defined]
    assert main(["merge", str(tmp_path / "merged"), str(tmp_path / "c" / "job")]) == 2


def test_accelerate_custom_loop_on_two_processes(tmp_path: Path) -> None:
    """An Accelerator loop in two processes on CPU. `accelerate launch` starts GPU processes
    the way torchrun does; on a CPU-only machine torchrun starts them here."""
    pytest.importorskip("accelerate")
    _launch(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            str(ROOT / "examples" / "accelerate_loop.py"),
            "--run-dir",
            str(tmp_path / "acc"),
        ],
        tmp_path,
    )
    run = greentrack.load_run(tmp_path / "acc")
    assert run.complete and [p.path.name for p in run.parts] == ["seg0-rank1"]
    assert run.meta["part"]["launcher"] == "torchrun"
