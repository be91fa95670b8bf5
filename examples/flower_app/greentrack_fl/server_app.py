"""ServerApp: FedAvg wrapped in greentrack's EmissionsStrategy."""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

import greentrack
from greentrack.integrations.flower import EmissionsStrategy
from greentrack_fl import task

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    strategy = EmissionsStrategy(
        FedAvg(fraction_train=1.0, fraction_evaluate=1.0),
        str(config["run-dir"]) or None,  # none: a fresh directory for each run
        name="flower app",
        region=str(config["region"]),
        pue=float(config["pue"]),
    )
    strategy.start(
        grid,
        ArrayRecord(task.model().state_dict()),
        num_rounds=int(config["num-server-rounds"]),
        train_config=ConfigRecord({"local-epochs": int(config["local-epochs"])}),
    )
    print(greentrack.summarize(strategy.run_dir))
    print(f"run directory: {strategy.run_dir.resolve()}")
