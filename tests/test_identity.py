"""Who a process is, decided once from the launcher: placeholder job ids, the launcher's rank
over a framework's, and a job id agreed among the ranks when the launcher gives none."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

import greentrack
from greentrack.launcher import RankInfo, agree_job_id, decide, detect

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}


@pytest.mark.parametrize("placeholder", ["none", "", "None", " "])
def test_a_placeholder_job_id_is_no_id(placeholder: str) -> None:
    assert detect({**TORCHRUN, "TORCHELASTIC_RUN_ID": placeholder}).job_id is None
    # SLURM's id still names the job around torchrun's workers
    assert detect(
        {**TORCHRUN, "TORCHELASTIC_RUN_ID": placeholder, "SLURM_JOB_ID": "77"}
    ).job_id == ("77")
    assert detect({**TORCHRUN, "TORCHELASTIC_RUN_ID": "exp-3"}).job_id == "exp-3"


def test_the_launchers_rank_wins_over_the_frameworks() -> None:
    # a Trainer on CPU under torchrun calls every process rank 0 of 1: the launcher knows better
    trainer = RankInfo(rank=0, world_size=1, launcher="transformers")
    assert decide(trainer, TORCHRUN).rank == 1 and decide(trainer, TORCHRUN).world_size == 2
    # no launcher: a framework that started its own processes (Lightning's ddp) is believed
    lightning = RankInfo(rank=1, local_rank=1, world_size=2, local_world_size=2)
    assert decide(lightning, {}).rank == 1
    assert decide(None, {}).rank == 0 and not decide(None, {}).distributed
    with pytest.raises(ValueError, match="not a valid rank"):
        decide(RankInfo(rank=4, world_size=2, local_world_size=2), {})


def _store():  # type: ignore[no-untyped-def]
    dist = pytest.importorskip("torch.distributed")
    return dist.TCPStore(
        "127.0.0.1", 0, None, True, timeout=timedelta(seconds=5), wait_for_workers=False
    )


def test_ranks_agree_one_job_id_in_the_launchers_store() -> None:
    store = _store()
    env = {
        **TORCHRUN,
        "TORCHELASTIC_RUN_ID": "none",
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(store.port),
    }
    ids: list[str | None] = []

    def rank(r: int) -> None:
        info = detect({**env, "RANK": str(r), "LOCAL_RANK": str(r)})
        ids.append(agree_job_id(info, {**env, "RANK": str(r)}).job_id)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ids) == 2 and ids[0] == ids[1] and ids[0]
    # another job (its own store) gets another id
    other = _store()
    info = detect({**env, "MASTER_PORT": str(other.port)})
    assert agree_job_id(info, {**env, "MASTER_PORT": str(other.port)}).job_id not in (None, ids[0])


def test_without_a_store_or_id_the_job_asks_for_a_run_directory(tmp_path: Path) -> None:
    info = detect({**TORCHRUN, "TORCHELASTIC_RUN_ID": "none"})
    assert agree_job_id(info, {}).job_id is None
    with pytest.raises(ValueError, match=r"pass run_dir=.*--rdzv-id"):
        greentrack.api.place(None, greentrack.TrackerOptions(), info)


def test_two_concurrent_torchrun_jobs_get_a_directory_each(tmp_path: Path) -> None:
    """torchrun sets TORCHELASTIC_RUN_ID=none for every job: with run_dir=None two jobs started
    together must still write two directories, each with both of its ranks."""
    pytest.importorskip("torch")
    app = ROOT / "tests" / "apps" / "track_job.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    procs = [
        subprocess.Popen(
            [*cmd, str(app)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.startswith("torchrun-") for r in runs)
    for r in runs:
        run = greentrack.load_run(r)
        assert [p.path.name for p in run.parts] == ["seg0-rank1"]
        assert run.meta["part"]["job_id"] == run.parts[0].meta["part"]["job_id"]
        assert greentrack.summarize(run).status == "finished"


def test_a_misspelled_argument_names_the_closest_one() -> None:
    import inspect

    from greentrack.api import _TRACK_ARGUMENTS

    own = [p for p in inspect.signature(greentrack.track).parameters if p != "options"]
    assert sorted(own) == sorted(_TRACK_ARGUMENTS)  # the list the message names is track()'s
    with pytest.raises(TypeError, match=r"unknown argument 'regoin' \(did you mean 'region'\?\)"):
        greentrack.track(regoin="DE")
    with pytest.raises(TypeError, match=r"'power_hzz' \(did you mean 'power_hz'\?\).*valid: "):
        greentrack.track(power_hzz=5)


def test_a_store_that_never_answers_costs_one_bounded_wait() -> None:
    """A peer at MASTER_PORT that accepts and never answers (a misconfigured environment)
    must not hold training: one attempt per process, bounded."""
    import socket
    import time

    pytest.importorskip("torch.distributed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    env = {
        **TORCHRUN,
        "TORCHELASTIC_RUN_ID": "none",
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(server.getsockname()[1]),
    }
    try:
        started = time.monotonic()
        assert agree_job_id(detect(env), env, timeout_s=1.0).job_id is None
        assert time.monotonic() - started < 5.0
        started = time.monotonic()
        assert agree_job_id(detect(env), env, timeout_s=1.0).job_id is None  # asked once
        assert time.monotonic() - started < 0.5
    finally:
        server.close()
