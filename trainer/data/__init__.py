"""The data layer: built-in generated sets, hub and local files, checked into splits.

``load_splits(config.data)`` is the one entry the trainer needs; ``generate`` gives the
built-in sets directly.
"""

from trainer.data.splits import TextSplits, load_splits
from trainer.data.synthetic import generate

__all__ = ["TextSplits", "generate", "load_splits"]
