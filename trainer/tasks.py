"""What a task changes in the one loop: the model's head, the loss, the distillation term,
and which outputs are scored. The loop, the strategies' parts and the inference call these;
none of them asks which task it runs.

* classification: a sequence classifier (``AutoModelForSequenceClassification``), cross
  entropy, one row of logits per example;
* regression (STS-B): the same head with one output and ``problem_type="regression"``
  (transformers' ``run_glue.py``), mean squared error, one score per example;
* token classification (CoNLL-2003): ``AutoModelForTokenClassification``, cross entropy
  over the labelled tokens (each word's first sub-word; the others carry
  ``trainer.tokenized.IGNORED``), one row of logits per scored word.

SDA and SDV distil with the squared difference of student and teacher outputs, averaged
over what the task scores: every logit of every example, the score of a regression, the
logits of the labelled tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.tokenized import IGNORED

__all__ = ["Task"]


@dataclass(frozen=True)
class Task:
    """A task's part of the loop (see the module's docstring)."""

    name: str

    @property
    def per_token(self) -> bool:
        return self.name == "token_classification"

    def num_labels(self, label_names: list[str]) -> int:
        return 1 if self.name == "regression" else len(label_names)

    def model_class(self):
        """The transformers auto class of the task's head."""
        import transformers

        if self.per_token:
            return transformers.AutoModelForTokenClassification
        return transformers.AutoModelForSequenceClassification

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The task's training loss, in float32 whatever the autocast."""
        if self.name == "regression":
            return F.mse_loss(logits.float().squeeze(-1), labels.float())
        if self.per_token:
            return F.cross_entropy(
                logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORED
            )
        return F.cross_entropy(logits.float(), labels)

    def distillation(
        self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """MSE between the student's and the teacher's outputs over what is scored."""
        if self.per_token:
            scored = labels != IGNORED
            return F.mse_loss(student.float()[scored], teacher[scored])
        return F.mse_loss(student.float(), teacher)
