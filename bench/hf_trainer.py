"""Baseline: HF ``Trainer`` fine-tuning the same model on the same rows.

What a user would write: ``AutoModelForSequenceClassification`` and dynamic padding with
``DataCollatorWithPadding``, in one of three configurations (``--hf-config``):

* ``defaults``: the Trainer as it comes (random batches; bf16 only on CUDA);
* ``grouped``: ``train_sampling_strategy="group_by_length"`` (transformers 5's length
  grouping), fp32 on CPU — what a speed-aware user sets first;
* ``grouped-bf16``: length grouping and ``bf16=True`` — the best-configured peer on a
  CPU with native bf16 (AMX) and on CUDA.

Throughput is timed from ``on_train_begin`` to ``on_train_end`` (no evaluation, no
saving), the same span as our trainer's ``train_samples_per_s``.

    python bench/hf_trainer.py --steps 30 --rows 1024 --hf-config grouped-bf16 [--device cuda]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from _common import add_workload_arguments, emit, machine, sst2_data

HF_CONFIGS = ("defaults", "grouped", "grouped-bf16")


def _with_lengths(encoded):
    """A ``length`` column, as HF's docs advise for length grouping: without it the sampler
    measures every example itself at the start of training."""
    encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
    return encoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.add_argument("--hf-config", choices=HF_CONFIGS, default="defaults")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from trainer.loading import load_config
    from trainer.prepare import prepare

    torch.set_num_threads(args.threads)  # the same threads as our trainer's side
    config = load_config({"model": args.model, "data": sst2_data(args.data, args.rows)})
    # the same model, rows and head initialisation as our trainer's; HF tokenizes its own way
    prepared = prepare(config)
    tokenizer, model = prepared.tokenizer, prepared.model
    train = Dataset.from_pandas(prepared.text_splits.train[["text", "label"]]).map(
        lambda b: _with_lengths(
            tokenizer(b["text"], truncation=True, max_length=config.data.max_length)
        ),
        batched=True,
        remove_columns=["text"],
    )

    class Clock(TrainerCallback):
        def on_train_begin(self, *_, **__):
            if args.device == "cuda":
                torch.cuda.synchronize()
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_train_end(self, *_, **__):
            if args.device == "cuda":
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.start
            self.cpu_seconds = time.process_time() - self.cpu_start

    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            learning_rate=2e-5,
            warmup_steps=0.1,  # a float in [0, 1) is a ratio in transformers 5
            weight_decay=0.01,
            bf16=args.device == "cuda" or args.hf_config == "grouped-bf16",
            train_sampling_strategy="random" if args.hf_config == "defaults" else "group_by_length",
            use_cpu=args.device == "cpu",
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            dataloader_num_workers=0,
            seed=0,
        )
        Trainer(
            model=model,
            args=training_args,
            train_dataset=train,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[clock],
        ).train()
    samples = args.steps * args.batch_size
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if args.device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    emit(
        {
            "bench": "hf_trainer",
            "hf_config": args.hf_config,
            "model": args.model,
            "device": args.device,
            "rows": args.rows,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "samples_per_s": samples / clock.seconds,
            "step_time_s": clock.seconds / args.steps,
            "step_cpu_s": clock.cpu_seconds / args.steps,
            "peak_memory_mib": peak,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
