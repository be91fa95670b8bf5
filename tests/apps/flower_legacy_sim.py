"""A 3-client, 2-round simulation with Flower's legacy API (NumPyClient, legacy FedAvg) and
greentrack on both sides (run as a script: python flower_legacy_sim.py RUN_DIR)."""

import sys
import time

import numpy as np

import greentrack

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))


def main() -> None:
    from flwr.client import NumPyClient
    from flwr.clientapp import ClientApp
    from flwr.server import ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from greentrack.integrations.flower import EnergyMod
    from greentrack.integrations.flower_legacy import LegacyEmissionsStrategy
    from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace

    def meters():
        spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(50.0), has_power=False)
        return [FakeMeter([spec], time.monotonic)]

    class Client(NumPyClient):  # type: ignore[misc]
        def fit(self, parameters, config):
            time.sleep(0.05)
            return [p + 1 for p in parameters], 10, {"train_loss": 0.25}

        def evaluate(self, parameters, config):
            return 0.5, 10, {"accuracy": 0.75}

    client = ClientApp(
        client_fn=lambda context: Client().to_client(), mods=[EnergyMod(meters_factory=meters)]
    )

    def server_fn(context):
        inner = FedAvg(
            min_available_clients=3,
            min_fit_clients=3,
            min_evaluate_clients=3,
            initial_parameters=__import__("flwr").common.ndarrays_to_parameters(
                [np.zeros(1000, dtype=np.float32)]
            ),
        )
        strategy = LegacyEmissionsStrategy(
            inner, sys.argv[1], num_rounds=2, carbon=greentrack.CarbonSettings.resolve("FR")
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=2))

    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=client,
        num_supernodes=3,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False},
        },
    )


if __name__ == "__main__":
    main()
