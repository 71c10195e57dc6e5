"""The shared fine-tuning loop and the strategies that are parts of it.

Public API: :func:`train`, :class:`TrainConfig`, :func:`load_config`, and
:func:`trainer.noisytune.perturb`. Importing this package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.config import TrainConfig
from trainer.errors import ConfigError, DataError, UserInputError
from trainer.loading import load_config

if TYPE_CHECKING:
    from trainer.loop import train

__all__ = ["ConfigError", "DataError", "TrainConfig", "UserInputError", "load_config", "train"]


def __getattr__(name: str) -> Any:
    """Import the loop (and torch) only when it is used, so CLIs start fast."""
    if name == "train":
        from trainer.loop import train

        return train
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
