"""The set-up every use of a config shares: its model files, data, tokenizer and model.

Training (``trainer/loop.py``), evaluating saved weights (``trainer/inference.py``) and the
HF Trainer benchmark (``bench/hf_trainer.py``) all start from the same config, so they
start from the same :func:`prepare`: the model is resolved and its limits checked before
any data is read (a typo in the model name should not wait for a tokenizer pass), the text
splits are tokenized through the shared cache, and the classifier's new head is
initialised from the config's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from trainer.config import TrainConfig, default_cache_dir
from trainer.data import TextSplits, load_splits
from trainer.models import (
    check_model_limits,
    check_model_resolvable,
    load_classifier,
    load_tokenizer,
)
from trainer.tasks import Task
from trainer.tokenized import TokenizedSplit, tokenize_splits

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """What a config's run starts from."""

    model_path: str  # the resolved local directory or hub id
    text_splits: TextSplits
    tokenizer: Any
    splits: dict[str, TokenizedSplit]
    cache_hit: bool  # whether the tokenized splits came from the cache
    model: nn.Module  # on the CPU, in float32, its head initialised from the seed

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    @property
    def task(self) -> Task:
        return Task(self.text_splits.task)


def prepare(config: TrainConfig, cache_dir: Path | None = None) -> Prepared:
    """Resolve and check ``config``'s model, load and tokenize its data, load the model."""
    cache_dir = Path(cache_dir or config.cache_dir or default_cache_dir())
    model_path = check_model_resolvable(config.model, cache_dir)
    check_model_limits(config, model_path)
    text_splits = load_splits(config.data)
    tokenizer = load_tokenizer(model_path)
    splits, cache_hit = tokenize_splits(text_splits, tokenizer, config.data.max_length, cache_dir)
    task = Task(text_splits.task)
    model = load_classifier(model_path, task.num_labels(text_splits.label_names), config.seed, task)
    return Prepared(model_path, text_splits, tokenizer, splits, cache_hit, model)
