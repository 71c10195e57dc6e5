"""The parts a strategy adds to the one training loop, and the hooks the loop calls on them.

A strategy is its parts (``trainer/catalog.py`` names each part's builder): NoisyTune
perturbs the model before training; SDA and SDV add a distillation term to the loss from a
teacher that remembers earlier steps; SE keeps an average of the parameters to evaluate.
The loop knows none of them by name: it calls the hooks of :class:`StrategyPart`, named
after Lightning's ``Callback`` where one fits, at fixed points of every step:

``setup(model)``
    before the model moves to its device and its parameters become one flat vector
    (modifiers change the pretrained weights here);
``on_fit_start(model, flat, optimizer)``
    once, before the first step (parts that shadow the model build it here; a part that
    changes the update keeps the optimizer, whose groups hold each step's learning rates);
``extra_loss(inputs, logits, labels)``
    a term added to the task's loss, or None;
``on_before_optimizer_step(flat)``
    after the backward pass, with θ_t, the parameters this step started from;
``on_train_batch_end(flat)``
    after the optimizer step, with θ_{t+1}, before the scheduler moves the learning rates
    (the modifiers' hooks run before the base's, so an average records a corrected step);
``eval_models()``
    models to evaluate beside the student, by role (``averaged``);
``state_dict()`` / ``load_state_dict(state)``
    what a checkpoint keeps of the part (None: nothing), so a resumed run is bit-exact.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from trainer import strategies
from trainer.config import TrainConfig
from trainer.noisytune import perturb
from trainer.precision import autocast, teacher_in_bf16
from trainer.strategies import se_role
from trainer.tasks import Task
from trainer.teachers import AveragedTeacher, EmaTeacher, SelfEnsemble, VotingTeacher

__all__ = ["StrategyPart", "build_parts"]

_NOISE_SEED_OFFSET = 0x5EED  # the noise generator must not share the dropout stream


class StrategyPart:
    """No-op hooks: a part overrides those it needs."""

    def setup(self, model: nn.Module) -> None:
        pass

    def on_fit_start(
        self, model: nn.Module, flat: torch.Tensor, optimizer: torch.optim.Optimizer
    ) -> None:
        pass

    def extra_loss(
        self, inputs: Mapping[str, torch.Tensor], logits: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor | None:
        return None

    def on_before_optimizer_step(self, flat: torch.Tensor) -> None:
        pass

    def on_train_batch_end(self, flat: torch.Tensor) -> None:
        pass

    def eval_models(self) -> dict[str, nn.Module]:
        return {}

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def result_fields(self) -> dict[str, Any]:
        """Entries this part adds to ``result.json``."""
        return {}


Teacher = AveragedTeacher | EmaTeacher | VotingTeacher


class _Remembering(StrategyPart):
    """A part around one object that remembers earlier steps (a teacher, an ensemble),
    built once the model is flat: it is evaluated as ``role`` ('averaged') where it holds
    an averaged model, and checkpointed as that object's state."""

    def __init__(self, role: str = "averaged") -> None:
        self.memory: Teacher | SelfEnsemble | None = None
        self.role = role

    def eval_models(self) -> dict[str, nn.Module]:
        # SDA's teacher and SE's ensemble hold a model worth evaluating; SDV's is snapshots
        averaged = self.memory.averaged_model()
        return {} if averaged is None else {self.role: averaged}

    def state_dict(self) -> dict[str, Any]:
        return self.memory.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory.load_state_dict(state)


class Distillation(_Remembering):
    """SDA/SDV: loss += λ·MSE(student outputs, teacher outputs) over what the task scores
    (``trainer.tasks.Task.distillation``); the teacher records θ_t."""

    def __init__(
        self,
        make_teacher: Callable[[nn.Module, torch.Tensor], Teacher],
        lam: float,
        bf16: bool,
        device: torch.device,
        task: Task,
    ) -> None:
        super().__init__()
        self.make_teacher = make_teacher
        self.lam = lam
        self.bf16 = bf16
        self.autocast = autocast(device, bf16)
        self.task = task

    def on_fit_start(
        self, model: nn.Module, flat: torch.Tensor, optimizer: torch.optim.Optimizer
    ) -> None:
        self.memory = self.make_teacher(model, flat)

    def extra_loss(
        self, inputs: Mapping[str, torch.Tensor], logits: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor | None:
        with self.autocast():
            target = self.memory.logits(inputs)
        return None if target is None else self.lam * self.task.distillation(logits, target, labels)

    def on_before_optimizer_step(self, flat: torch.Tensor) -> None:
        self.memory.record(flat)

    def result_fields(self) -> dict[str, Any]:
        return {"teacher_bf16": self.bf16}


class SelfEnsemblePart(_Remembering):
    """SE: the mean of θ after each of the last K steps, evaluated as 'averaged' (or, for
    a window ``eval.self_ensembles`` asks for beside the student, as 'se_k<K>')."""

    def __init__(self, k: int | str, role: str = "averaged") -> None:
        super().__init__(role)
        self.k = k

    def on_fit_start(
        self, model: nn.Module, flat: torch.Tensor, optimizer: torch.optim.Optimizer
    ) -> None:
        self.memory = SelfEnsemble(model, flat, self.k)

    def on_train_batch_end(self, flat: torch.Tensor) -> None:
        self.memory.record(flat)


class NoisyTunePart(StrategyPart):
    """NoisyTune: perturb the pretrained parameters once, from the seed's own generator."""

    def __init__(self, config: TrainConfig) -> None:
        self.noise = config.noise
        self.seed = config.seed

    def setup(self, model: nn.Module) -> None:
        perturb(
            model,
            self.noise.lam,
            distribution=self.noise.distribution,
            scope=self.noise.scope,
            exclude=self.noise.exclude,
            generator=torch.Generator().manual_seed(self.seed + _NOISE_SEED_OFFSET),
        )


# -- builders: the registry names these as "module:function" ------------------------


def sda(config: TrainConfig, device: torch.device) -> StrategyPart:
    if config.distill.average == "ema":
        decay = config.distill.ema_decay

        def make(model: nn.Module, flat: torch.Tensor) -> Teacher:
            return EmaTeacher(model, flat, decay)
    else:
        k = config.teacher_k

        def make(model: nn.Module, flat: torch.Tensor) -> Teacher:
            return AveragedTeacher(model, flat, k)

    return Distillation(make, config.distill.lam, teacher_in_bf16(config, device), device,
                        Task(config.data.resolved_task))  # fmt: skip


def sdv(config: TrainConfig, device: torch.device) -> StrategyPart:
    k = config.teacher_k

    def make(model: nn.Module, flat: torch.Tensor) -> Teacher:
        return VotingTeacher(model, flat, k)

    return Distillation(make, config.distill.lam, teacher_in_bf16(config, device), device,
                        Task(config.data.resolved_task))  # fmt: skip


def se(config: TrainConfig, device: torch.device) -> StrategyPart:
    return SelfEnsemblePart(config.teacher_k)


def noisytune(config: TrainConfig, device: torch.device) -> StrategyPart:
    return NoisyTunePart(config)


def build_parts(config: TrainConfig, device: torch.device) -> dict[str, StrategyPart]:
    """The parts of ``config.strategy``, by name, in the order their hooks run: the
    modifiers left to right as the name lists them, then the base strategy; then one SE
    average per window of ``eval.self_ensembles`` (evaluation only: they never touch the
    loss or the parameters, so the student is the same run with or without them)."""
    parts: dict[str, StrategyPart] = {}
    for part in strategies.parts(config.strategy):
        if part.builder:
            module, _, function = part.builder.partition(":")
            parts[part.name] = getattr(importlib.import_module(module), function)(config, device)
    for k in config.eval.self_ensembles:
        parts[se_role(k)] = SelfEnsemblePart(k, role=se_role(k))
    return parts
