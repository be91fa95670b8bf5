"""Flower integration (Message API): energy and bytes of federated rounds.

Server side, wrap any strategy::

    from flwr.serverapp.strategy import FedAvg
    from greentrack.integrations.flower import EmissionsStrategy, energy_mod
    from greentrack import CarbonSettings
    strategy = EmissionsStrategy(
        FedAvg(), run_dir="runs/fl", carbon=CarbonSettings.resolve("US-CA", pue=1.1)
    )

Client side, add the mod::

    app = ClientApp(mods=[energy_mod])

What is recorded, per round and per client (``fl.jsonl`` in the run directory):

* ``download_bytes`` / ``upload_bytes``: the payload of each message as Flower moves it, i.e.
  the sum of the deflated objects of the message tree (message, record dict, records, arrays,
  array chunks); measured by the server on the messages it sends and receives, so exact for
  both directions, separately for train and evaluate.
* client energy: measured by :data:`energy_mod` around the ClientApp's handler with the
  client's own meters (NVML/RAPL, else the labelled estimate) and returned in a ConfigRecord
  named :data:`RECORD` (one JSON text entry; :func:`client_record` reads it); the server
  removes that record before the inner strategy aggregates, so strategies that validate
  replies (FedAvg) never see it.
* server energy: spans ``round`` > ``aggregate_train`` / ``aggregate_evaluate`` in the run.

Also: a GPU shared by concurrent simulated clients is split among them by time windows
(:mod:`greentrack.analysis.attribution`); clients that cannot measure can be modelled from a
device profile (:mod:`greentrack.meters.profiles`); the legacy strategy API is in
:mod:`greentrack.integrations.flower_legacy`. See docs/flower.md.
"""

from greentrack.integrations.flower.keys import FIELD, LEGACY_PREFIX, RECORD
from greentrack.integrations.flower.mod import (
    EnergyMod,
    client_record,
    energy_mod,
    pop_legacy_record,
)
from greentrack.integrations.flower.recorder import RoundRecorder
from greentrack.integrations.flower.strategy import EmissionsStrategy
from greentrack.integrations.flower.wire import payload_bytes, payload_bytes_many

__all__ = [
    "FIELD",
    "LEGACY_PREFIX",
    "RECORD",
    "EmissionsStrategy",
    "EnergyMod",
    "RoundRecorder",
    "client_record",
    "energy_mod",
    "payload_bytes",
    "payload_bytes_many",
    "pop_legacy_record",
]
