"""One GPU, several ranks: torchrun started with more processes than GPUs. Every rank on the
GPU measures all of it; the account finds them by UUID and host and splits it equally, labelled,
never counting the device twice (issue 23). And the rule that picks a rank's GPU."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import greentrack
from greentrack.account import account_run
from greentrack.discovery import DiscoveryOptions, discover
from greentrack.launcher import RankInfo, gpus_for
from greentrack.meters.fake import FakeGpu, FakeNvml, ManualClock, PowerTrace
from greentrack.units import J_PER_KWH

WATTS, SECONDS = 175.0, 2.0


def _job(tmp_path: Path, ranks: int, gpus: int) -> tuple[greentrack.Run, float]:
    """``ranks`` local ranks of one torchrun job on a node with ``gpus`` fake GPUs, all driven
    on one clock; returns the run and the joules the GPUs drew."""
    clock = ManualClock()
    nvml = FakeNvml(
        [FakeGpu(uuid=f"GPU-{i}000aaaa", trace=PowerTrace.constant(WATTS)) for i in range(gpus)],
        clock,
    )
    trackers = []
    for r in range(ranks):
        info = RankInfo(
            rank=r,
            local_rank=r,
            world_size=ranks,
            local_world_size=ranks,
            launcher="torchrun",
            job_id="j",
            node="node-a",
        )
        trackers.append(
            greentrack.track(
                tmp_path / "job",
                rank=info,
                nvml=nvml,
                cpu=False,
                environ={},
                clock=clock,
                background=False,
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in trackers:
            t.start()
        for _ in range(round(SECONDS / 0.1)):
            clock.advance(0.1)
            for t in trackers:
                t.sampler.tick()
        for t in trackers:
            t.stop()
    return greentrack.load_run(tmp_path / "job"), WATTS * SECONDS * gpus


def test_two_ranks_on_one_gpu_count_it_once_and_say_so(tmp_path: Path) -> None:
    run, drawn = _job(tmp_path, ranks=2, gpus=1)
    uuids = [c["details"]["uuid"] for r in (run, *run.parts) for c in r.channels]
    assert uuids == ["GPU-0000aaaa", "GPU-0000aaaa"]  # both ranks measured the one GPU
    acct = account_run(run)
    assert acct.it_kwh.value * J_PER_KWH == pytest.approx(drawn, rel=1e-6)  # not twice
    assert acct.it_kwh.low * J_PER_KWH <= drawn <= acct.it_kwh.high * J_PER_KWH
    assert all("shared by 2 ranks, split equally" in c.method for c in acct.components)
    assert any("measured by 2 processes at once" in n for n in acct.notes)
    boundary = " ".join(b["detail"] for b in run.meta["boundary"])
    assert "2 local ranks, 1 visible GPU:" in boundary


def test_ranks_sharing_two_gpus_split_each_by_its_uuid(tmp_path: Path) -> None:
    run, drawn = _job(tmp_path, ranks=4, gpus=2)
    acct = account_run(run)
    assert acct.it_kwh.value * J_PER_KWH == pytest.approx(drawn, rel=1e-6)
    assert all("shared by 2 ranks" in c.method for c in acct.components)


def test_ranks_with_a_gpu_each_are_not_split(tmp_path: Path) -> None:
    run, drawn = _job(tmp_path, ranks=2, gpus=2)
    acct = account_run(run)
    assert acct.it_kwh.value * J_PER_KWH == pytest.approx(drawn, rel=1e-6)
    assert not any("shared" in c.method for c in acct.components)


def test_one_gpu_on_two_hosts_or_at_two_times_is_not_shared(tmp_path: Path) -> None:
    """The same UUID in two segments (a resumed job on the same GPU) ran at different times."""
    from greentrack.account.accuracy import device_shares

    run, _ = _job(tmp_path, ranks=2, gpus=1)
    part = run.parts[0]
    part.meta["host"] = {**part.meta["host"], "hostname": "elsewhere"}
    assert device_shares([run, part]) == {}
    part.meta["host"]["hostname"] = run.meta["host"]["hostname"]
    part.meta["part"] = {**part.meta["part"], "segment": 1}
    assert device_shares([run, part]) == {}


def _info(local_rank: int, local_world_size: int, launcher: str = "torchrun") -> RankInfo:
    return RankInfo(
        rank=local_rank,
        local_rank=local_rank,
        world_size=max(local_world_size, local_rank + 1),
        local_world_size=local_world_size,
        launcher=launcher,
    )


def test_the_rule_for_a_ranks_gpu() -> None:
    assert gpus_for(_info(1, 2), 2) == [1]  # a GPU each
    assert gpus_for(_info(1, 2), 8) == [1]
    assert gpus_for(_info(1, 4), 1) == [0]  # one visible: its own (launcher) or shared
    assert gpus_for(_info(5, 8), 2) == [1]  # more ranks than GPUs: shared, stated
    assert gpus_for(_info(0, 1), 0) is None


@pytest.mark.parametrize(
    ("launcher", "var"), [("torchrun", "LOCAL_RANK"), ("slurm", "SLURM_LOCALID")]
)
def test_a_local_rank_without_a_device_is_an_error_naming_the_fix(launcher: str, var: str) -> None:
    """LOCAL_RANK=5 on a node of 2 processes and 2 GPUs measured gpu1 silently before."""
    with pytest.raises(ValueError, match=rf"^{var}=5 but this node runs 2 process") as e:
        gpus_for(_info(5, 2, launcher), 2)
    message = str(e.value)
    assert "2 visible GPUs" in message and "--nproc_per_node=2" in message
    assert "CUDA_VISIBLE_DEVICES" in message and "\n" not in message


def test_discovery_refuses_a_rank_without_a_device_and_closes_nvml() -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(uuid=f"GPU-{i}000aaaa") for i in range(2)], clock)
    with pytest.raises(ValueError, match="LOCAL_RANK=5"):
        discover(DiscoveryOptions(nvml=nvml, cpu=False, rank=_info(5, 2), environ={}))
    assert nvml.initialized == 0
