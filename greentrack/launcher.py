"""Which rank of which job this process is, from the launcher's environment.

Every distributed launcher tells its processes who they are through environment variables:

* torchrun / ``torch.distributed.run`` (and Accelerate and DeepSpeed, which set the same):
  ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``; the job:
  ``TORCHELASTIC_RUN_ID``; restarts: ``TORCHELASTIC_RESTART_COUNT``.
* SLURM (``srun``): ``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS``, ``SLURM_NODEID``,
  ``SLURM_JOB_ID`` (+ ``SLURM_STEP_ID``); requeues: ``SLURM_RESTART_COUNT``.
* Open MPI: ``OMPI_COMM_WORLD_RANK``, ``OMPI_COMM_WORLD_LOCAL_RANK``, ``OMPI_COMM_WORLD_SIZE``,
  ``OMPI_COMM_WORLD_LOCAL_SIZE``.
* MPICH / Intel MPI (Hydra, PMI): ``PMI_RANK``, ``PMI_SIZE``, ``MPI_LOCALRANKID``,
  ``MPI_LOCALNRANKS``.

torchrun's variables win when several are set (``srun torchrun ...`` runs torchrun's workers
inside SLURM tasks). :func:`detect` never guesses: without a launcher's variables this is rank 0
of a world of one.

>>> detect({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}).rank
3
>>> detect({}).distributed
False
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RankInfo:
    """This process's place in its job.

    Attributes:
        rank, local_rank: global rank and rank on this node.
        world_size, local_world_size: processes in the job, and on this node.
        launcher: ``torchrun``, ``slurm``, ``openmpi``, ``mpich`` or ``none``.
        job_id: the launcher's id of the job (``None`` when it gives none): parts of one job
            share it, so a directory is never shared with an unrelated job.
        restart: how many times the launcher restarted the job (a new segment each time).
        node: this node's index or host name.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    launcher: str = "none"
    job_id: str | None = None
    restart: int = 0
    node: str = ""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def node_leader(self) -> bool:
        """Whether this process measures what belongs to the node (CPU packages, DRAM)."""
        return self.local_rank == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"${name}={value!r} is not an integer: the launcher's environment is broken "
            "(or pass rank=... to greentrack explicitly)"
        ) from None


def detect(environ: Mapping[str, str] | None = None) -> RankInfo:
    """This process's :class:`RankInfo` from its environment (see the module docstring)."""
    env = os.environ if environ is None else environ
    host = socket.gethostname()
    if _int(env, "RANK") is not None and _int(env, "WORLD_SIZE") is not None:
        world = _int(env, "WORLD_SIZE") or 1
        return _checked(
            RankInfo(
                rank=_int(env, "RANK") or 0,
                local_rank=_int(env, "LOCAL_RANK") or 0,
                world_size=world,
                local_world_size=_int(env, "LOCAL_WORLD_SIZE") or world,
                launcher="torchrun",
                job_id=env.get("TORCHELASTIC_RUN_ID") or env.get("SLURM_JOB_ID") or None,
                restart=_int(env, "TORCHELASTIC_RESTART_COUNT") or 0,
                node=host,
            )
        )
    if _int(env, "SLURM_PROCID") is not None and _int(env, "SLURM_NTASKS") is not None:
        job = env.get("SLURM_JOB_ID")
        step = env.get("SLURM_STEP_ID")
        return _checked(
            RankInfo(
                rank=_int(env, "SLURM_PROCID") or 0,
                local_rank=_int(env, "SLURM_LOCALID") or 0,
                world_size=_int(env, "SLURM_NTASKS") or 1,
                local_world_size=_tasks_on_node(env),
                launcher="slurm",
                job_id=f"{job}.{step}" if job and step else job,
                restart=_int(env, "SLURM_RESTART_COUNT") or 0,
                node=env.get("SLURMD_NODENAME") or host,
            )
        )
    for launcher, rank, local, size, local_size in (
        (
            "openmpi",
            "OMPI_COMM_WORLD_RANK",
            "OMPI_COMM_WORLD_LOCAL_RANK",
            "OMPI_COMM_WORLD_SIZE",
            "OMPI_COMM_WORLD_LOCAL_SIZE",
        ),
        ("mpich", "PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE", "MPI_LOCALNRANKS"),
    ):
        if _int(env, rank) is not None and _int(env, size) is not None:
            world = _int(env, size) or 1
            return _checked(
                RankInfo(
                    rank=_int(env, rank) or 0,
                    local_rank=_int(env, local) or 0,
                    world_size=world,
                    local_world_size=_int(env, local_size) or world,
                    launcher=launcher,
                    job_id=env.get("OMPI_MCA_orte_jobfam_session_dir")
                    or env.get("PMI_JOBID")
                    or env.get("SLURM_JOB_ID")
                    or None,
                    node=host,
                )
            )
    return RankInfo(node=host)


def _tasks_on_node(env: Mapping[str, str]) -> int:
    """SLURM's tasks on this node: ``SLURM_NTASKS_PER_NODE`` or the first entry of
    ``SLURM_TASKS_PER_NODE`` (``"4(x2)"`` means 4 on each of 2 nodes)."""
    per = _int(env, "SLURM_NTASKS_PER_NODE")
    if per:
        return per
    text = env.get("SLURM_TASKS_PER_NODE", "")
    head = text.split(",")[0].split("(")[0]
    return int(head) if head.isdigit() else (_int(env, "SLURM_NTASKS") or 1)


def _checked(info: RankInfo) -> RankInfo:
    if not 0 <= info.rank < info.world_size or not 0 <= info.local_rank < max(
        info.local_world_size, 1
    ):
        raise ValueError(
            f"{info.launcher} says rank {info.rank} of {info.world_size} (local "
            f"{info.local_rank} of {info.local_world_size}): not a valid rank; check the "
            "launcher's environment or pass rank=... to greentrack explicitly"
        )
    return info


def gpus_for(info: RankInfo, visible: int) -> list[int] | None:
    """The visible GPU indices this rank drives, by the usual convention: one GPU visible (a
    launcher that gives each task its own GPU): that one; at least as many GPUs as local ranks:
    the one at ``local_rank``; no GPU: ``None``. With fewer GPUs than local ranks, ranks share
    them (``local_rank % visible``): each shared GPU is then measured by every rank on it, which
    the account notes. A rank that drives several GPUs declares them (``gpu_indices=``).

    >>> gpus_for(RankInfo(rank=5, local_rank=1, world_size=8, local_world_size=4), 4)
    [1]
    >>> gpus_for(RankInfo(rank=5, local_rank=1, world_size=8, local_world_size=4), 1)
    [0]
    """
    if visible <= 0:
        return None
    if visible == 1:
        return [0]
    return [info.local_rank % visible]
