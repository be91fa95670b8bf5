"""Trainer + greentrack's callback under torchrun, 2 processes on CPU (gloo), train() then
evaluate():
python -m torch.distributed.run --nproc_per_node 2 hf_ddp.py RUN_DIR OUT_DIR"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    import transformers

    from greentrack.integrations.transformers import EmissionsCallback
    from greentrack.meters.fake import FakeChannelSpec, FakeMeter, PowerTrace
    from tests.test_transformers import Data, tiny_bert

    def meters():
        spec = FakeChannelSpec("gpu0", "gpu", PowerTrace.constant(100.0))
        return [FakeMeter([spec], time.monotonic)]

    args = transformers.TrainingArguments(
        output_dir=sys.argv[2],
        num_train_epochs=2,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        ddp_backend="gloo",
        save_strategy="no",
        logging_strategy="epoch",
        disable_tqdm=True,
    )
    cb = EmissionsCallback(sys.argv[1], meters_factory=meters)
    trainer = transformers.Trainer(
        model=tiny_bert(),
        args=args,
        train_dataset=Data(),
        eval_dataset=Data(16),
        callbacks=[cb],
    )
    trainer.train()
    if trainer.is_world_process_zero():
        print("TOTAL", cb.last_metrics["energy/total_kwh"])
    trainer.evaluate()  # as most Hugging Face scripts do after training: a stage of the run
    if trainer.is_world_process_zero():
        print("AFTER_EVALUATE", cb.last_metrics["energy/total_kwh"])


if __name__ == "__main__":
    main()
