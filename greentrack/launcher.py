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
of a world of one. A placeholder id (torchrun and ``accelerate launch`` set
``TORCHELASTIC_RUN_ID=none`` unless given ``--rdzv-id``; an empty value) is no id:
:func:`agree_job_id` then has the ranks agree a fresh one.

Identity is decided here, once, for every integration: :func:`decide` prefers the launcher's
variables to a framework's own idea of its rank (a Trainer on CPU under torchrun calls every
process rank 0), and takes the framework's only where no launcher is in charge (Lightning
starting its own processes).

>>> detect({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}).rank
3
>>> detect({}).distributed
False
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
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

    def part(self, segment: int) -> dict[str, Any]:
        """The ``part`` block of ``meta.json`` for this process in ``segment`` (which rank of
        which job wrote a run directory; docs/run-format.md)."""
        return {
            "segment": segment,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "local_world_size": self.local_world_size,
            "host": self.node,
            "launcher": self.launcher,
            "job_id": self.job_id,
        }


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
                job_id=_job_id(env, "TORCHELASTIC_RUN_ID") or _job_id(env, "SLURM_JOB_ID"),
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


PLACEHOLDER_IDS = frozenset({"", "none", "null", "default"})
"""Values a launcher writes where the user gave no job id (torchrun: ``none``)."""


def _job_id(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return None if value.lower() in PLACEHOLDER_IDS else value


def decide(framework: RankInfo | None = None, environ: Mapping[str, str] | None = None) -> RankInfo:
    """This process's identity, decided once: the launcher's (:func:`detect`) whenever a
    launcher says the job is distributed; a framework's own (``framework``: Lightning's
    ``trainer.global_rank``...) only when no launcher is in charge and the framework started
    several processes itself. Never the framework's rank over the launcher's.

    >>> env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    >>> decide(RankInfo(rank=0, world_size=1, launcher="transformers"), env).rank
    1
    >>> decide(RankInfo(rank=3, local_rank=1, world_size=4, local_world_size=2), {}).rank
    3
    """
    launched = detect(environ)
    if launched.distributed or launched.restart or framework is None:
        return launched
    if not framework.distributed:
        return launched
    return _checked(framework)


JOB_ID_KEY = "greentrack/job_id"
"""The key under which the ranks of a job agree its id in the launcher's store."""


def fresh_job_id() -> str:
    """A new job id: UTC time and a random suffix (sortable, never reused)."""
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


STORE_WAIT_S = 5.0
"""How long a rank waits at most for the launcher's store to agree a job id (it answers in
milliseconds when it is there; a misconfigured environment costs this once per process)."""

_AGREED: dict[tuple[str, str], str | None] = {}
"""What each store (``MASTER_ADDR``, ``MASTER_PORT``) answered in this process, failures too:
one attempt per process."""


def agree_job_id(
    info: RankInfo, environ: Mapping[str, str] | None = None, *, timeout_s: float = STORE_WAIT_S
) -> RankInfo:
    """``info`` with a job id every rank of this job shares, where the launcher gave none.

    torchrun and ``accelerate launch`` run a key-value store for their workers
    (``TORCHELASTIC_USE_AGENT_STORE=True`` at ``MASTER_ADDR:MASTER_PORT``): the first rank to
    ask sets a fresh id there and every other rank reads the same (an atomic compare-and-set;
    no rank waits for another). A job whose ranks have already joined a process group agree
    through it (rank 0's id, broadcast). Otherwise ``info`` comes back unchanged (the caller
    then asks for a run directory). The store is asked once per process, on a thread given at
    most ``timeout_s`` (a peer that accepts and never answers cannot hold training).
    """
    if info.job_id is not None or not info.distributed:
        return info
    env = os.environ if environ is None else environ
    agreed: str | None = None
    if env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true":
        agreed = _agree_in_store(env, timeout_s)
    if agreed is None:
        agreed = _agree_in_group()
    if agreed is None:
        return info
    from dataclasses import replace

    return replace(info, job_id=agreed)


def _agree_in_store(env: Mapping[str, str], timeout_s: float) -> str | None:
    host, port = env.get("MASTER_ADDR"), env.get("MASTER_PORT")
    if not host or not (port or "").isdigit():
        return None
    key = (host, port or "")
    if key not in _AGREED:
        import threading

        answer: list[str | None] = []
        asking = threading.Thread(
            target=lambda: answer.append(_ask_store(host, int(port or 0), timeout_s)),
            name="greentrack-job-id",
            daemon=True,
        )
        asking.start()
        asking.join(timeout_s)
        _AGREED[key] = answer[0] if answer else None
    return _AGREED[key]


def _ask_store(host: str, port: int, timeout_s: float) -> str | None:
    """Compare-and-set the job id in the store at ``host:port`` (``None`` on any failure)."""
    try:
        import importlib
        from datetime import timedelta

        store_class = importlib.import_module("torch.distributed").TCPStore
        store = store_class(
            host,
            port,
            None,
            False,
            timeout=timedelta(seconds=timeout_s),
            wait_for_workers=False,
        )
        value = store.compare_set(JOB_ID_KEY, "", fresh_job_id())
    except Exception:  # no torch, no store: the caller falls back
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text or None


def process_group() -> Any:
    """``torch.distributed`` when this process has joined a process group of several ranks,
    else ``None``. Never imports torch: a job that has a group has imported it."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is None or not (dist.is_available() and dist.is_initialized()):
            return None
        return dist if dist.get_world_size() > 1 else None
    except Exception:  # a half-torn-down group: none to use
        return None


def _agree_in_group() -> str | None:
    dist = process_group()
    if dist is None:
        return None
    try:
        box = [fresh_job_id()]
        dist.broadcast_object_list(box, src=0)
        return str(box[0])
    except Exception:
        return None


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
    """The visible GPU indices this rank drives (``None``: no GPU visible). The rule:

    * a local rank outside ``0 .. local_world_size - 1`` is an error (``ValueError``, one line
      naming ``LOCAL_RANK``, the device count and the fix), never a guess;
    * one GPU visible: that one (a launcher that gives each task its own GPU, or ranks sharing
      the only one);
    * at least as many GPUs as local ranks: the one at ``local_rank`` (then every local rank
      has a device of its own);
    * fewer GPUs than local ranks (torchrun ``--nproc_per_node`` above the GPU count): ranks
      share them, ``local_rank % visible``, the convention of such scripts. Every rank on a
      shared GPU measures all of it; the account finds them by the GPU's UUID and splits it
      equally (labelled ``shared by N ranks``, docs/methodology.md), never counting it twice.

    A rank that drives several GPUs declares them (``gpu_indices=``).

    >>> gpus_for(RankInfo(rank=5, local_rank=1, world_size=8, local_world_size=4), 4)
    [1]
    >>> gpus_for(RankInfo(rank=5, local_rank=1, world_size=8, local_world_size=4), 1)
    [0]
    >>> gpus_for(RankInfo(rank=5, local_rank=5, world_size=8, local_world_size=8), 2)
    [1]
    """
    if visible <= 0:
        return None
    local, per_node = info.local_rank, max(info.local_world_size, 1)
    if not 0 <= local < per_node:
        var = {
            "slurm": "SLURM_LOCALID",
            "openmpi": "OMPI_COMM_WORLD_LOCAL_RANK",
            "mpich": "MPI_LOCALRANKID",
        }.get(info.launcher, "LOCAL_RANK")
        # real plurals, written here: this layer may not import greentrack.numbers
        processes = f"{per_node} process" + ("es" if per_node != 1 else "")
        gpus = f"{visible} visible GPU" + ("s" if visible != 1 else "")
        raise ValueError(
            f"{var}={local} but this node runs {processes} (local ranks 0-"
            f"{per_node - 1}) on {gpus}: start one process per GPU "
            f"(torchrun --nproc_per_node={visible}) or choose the GPUs with CUDA_VISIBLE_DEVICES"
        )
    if visible == 1:
        return [0]
    if per_node <= visible:
        return [local]
    return [local % visible]
