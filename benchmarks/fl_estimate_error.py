"""How well a short measured run predicts longer and wider federated runs of the same task.

Runs the Flower example (``examples/flower_simulation.py``: a PyTorch MLP, FedAvg, Ray
simulation, greentrack on server and clients) for a short calibration run, calibrates
:func:`greentrack.analysis.fl_estimate.calibrate` on it, predicts longer and wider runs, runs
them, and reports the error of each part and of the total.

    python -m benchmarks.fl_estimate_error [--calibration 4x2] [--targets 4x6 8x3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import save

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower_simulation.py"
SAMPLES, LOCAL_EPOCHS = 2000, 2  # what the example's clients train on


def simulate(run_dir: Path, clients: int, rounds: int) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLE), "--run-dir", str(run_dir), "--clients", str(clients),
         "--rounds", str(rounds)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip


def parse(shape: str) -> tuple[int, int]:
    clients, rounds = shape.lower().split("x")
    return int(clients), int(rounds)


def main() -> None:
    import greentrack
    from greentrack.analysis import fl_estimate as fe

    parser = argparse.ArgumentParser()
    parser.add_argument("--calibration", default="4x2", help="CLIENTSxROUNDS")
    parser.add_argument("--targets", nargs="+", default=["4x6", "8x3"])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        c_clients, c_rounds = parse(args.calibration)
        simulate(Path(tmp) / "cal", c_clients, c_rounds)
        units = fe.calibrate(greentrack.load_run(Path(tmp) / "cal"), local_epochs=LOCAL_EPOCHS)
        for shape in args.targets:
            clients, rounds = parse(shape)
            setup = fe.FlSetup(rounds, clients, LOCAL_EPOCHS, SAMPLES)
            predicted = fe.estimate_fl(setup, units)
            simulate(Path(tmp) / shape, clients, rounds)
            error = fe.prediction_error(predicted, greentrack.load_run(Path(tmp) / shape))
            row = {
                "target": f"{clients} clients x {rounds} rounds",
                "predicted_kwh": predicted.parts_kwh | {"total": predicted.total_kwh},
                "error": error,
            }
            results.append(row)
            print(
                f"{row['target']}: total error {error['total']:+.1%} (client compute "
                f"{error['client_compute']:+.1%}, upload {error['upload']:+.1%}, download "
                f"{error['download']:+.1%}, server {error['server']:+.1%})"
            )
    save(
        "fl_estimate_error",
        {"calibration": f"{c_clients} clients x {c_rounds} rounds", "results": results},
    )


if __name__ == "__main__":
    main()
