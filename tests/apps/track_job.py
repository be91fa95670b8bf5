"""A torchrun worker that tracks itself with run_dir=None (the launcher's placeholder id):
python -m torch.distributed.run --standalone --nproc_per_node 2 track_job.py"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    import greentrack
    from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace

    spec = FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(100.0))
    with greentrack.track(meters=[FakeMeter([spec], time.monotonic)]) as run:
        time.sleep(0.3)
    print("RUN_DIR", run.run_dir.parts[1] if run.run_dir.parts[0] == "runs" else run.run_dir)


if __name__ == "__main__":
    main()
