"""A 3-client, 2-round Flower simulation (Ray) with greentrack on both sides (run as a script)."""

import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

from greentrack.integrations.flower import EmissionsStrategy, EnergyMod
from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace


def meters():
    return [
        FakeMeter(
            [FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(50.0), has_power=False)],
            time.monotonic,
        )
    ]


client = ClientApp(mods=[EnergyMod(meters_factory=meters)])


@client.train()
def train(msg: Message, context: Context) -> Message:
    time.sleep(0.05)
    return Message(
        RecordDict(
            {"arrays": msg.content["arrays"], "metrics": MetricRecord({"num-examples": 10})}
        ),
        reply_to=msg,
    )


@client.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return Message(
        RecordDict({"metrics": MetricRecord({"num-examples": 10, "loss": 1.0})}), reply_to=msg
    )


server = ServerApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    strategy = EmissionsStrategy(FedAvg(min_available_nodes=3), sys.argv[1])
    strategy.start(grid, ArrayRecord([np.zeros(1000, dtype=np.float32)]), num_rounds=2)


if __name__ == "__main__":
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=3,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False},
        },
    )
