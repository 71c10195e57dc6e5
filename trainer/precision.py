"""Which precision the student and the teacher compute in, as autocast context factories.

The student trains in bf16 autocast on CUDA by default (and on CPU when asked); the
teacher, whose logits are only a distillation target, runs in bf16 wherever the hardware
computes it natively. A factory, not a context, because the loop enters it every step.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from trainer.config import TrainConfig

__all__ = ["autocast", "native_bf16", "student_in_bf16", "teacher_in_bf16"]

Autocast = Callable[[], AbstractContextManager]


def autocast(device: torch.device, bf16: bool) -> Autocast:
    """A context factory: bf16 autocast on ``device``, or nothing (fp32)."""
    if not bf16:
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def student_in_bf16(config: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast on CUDA by default (and on CPU when asked); fp32 otherwise."""
    return config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA; CPUs with AMX or AVX512-BF16)."""
    if device.type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def teacher_in_bf16(config: TrainConfig, device: torch.device) -> bool:
    """The teacher runs in bf16 when asked, or by default where bf16 is native."""
    wanted = config.distill.teacher_precision
    return wanted == "bf16" or (wanted == "auto" and native_bf16(device))
