"""ClientApp: local training and evaluation, measured by greentrack's client mod."""

from __future__ import annotations

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from greentrack.integrations.flower import energy_mod
from greentrack_fl import task

app = ClientApp(mods=[energy_mod])


def _partition(context: Context) -> int:
    return int(context.node_config.get("partition-id", 0))


@app.train()
def train(msg: Message, context: Context) -> Message:
    net = task.model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    epochs = int(context.run_config.get("local-epochs", 2))  # run_simulation has no run config
    n, loss = task.train(net, _partition(context), epochs)
    metrics = MetricRecord({"num-examples": n, "train_loss": loss})
    content = RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": metrics})
    return Message(content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    net = task.model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    n, loss, accuracy = task.evaluate(net, _partition(context))
    metrics = MetricRecord({"num-examples": n, "loss": loss, "accuracy": accuracy})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
