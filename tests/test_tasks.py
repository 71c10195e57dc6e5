"""Regression and token classification through the one loop: the invariants every
classification strategy keeps hold per task, on tiny models and the generated sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_resume import Interrupted, _die_at_step_8, assert_same_logits
from test_trainer_invariants import _run, _student_history

from trainer import load_config, train
from trainer.inference import predict_logits
from trainer.loading import merge
from trainer.metrics import METRICS, regression_metrics, score, token_metrics
from trainer.prepare import prepare
from trainer.tasks import Task
from trainer.tokenized import IGNORED

TASKS = {"regression": "synthetic-similarity", "token_classification": "synthetic-ner"}


@pytest.fixture(params=sorted(TASKS))
def task_config(request, tiny_config):
    return merge(tiny_config, {"data": {"name": TASKS[request.param]}})


def test_sda_k1_equals_sdv_k1_and_zero_lambda_equals_vanilla(task_config, tmp_path):
    sda, sda_logits = _run(task_config, tmp_path / "sda", strategy="sda", distill={"k": 1})
    sdv, sdv_logits = _run(task_config, tmp_path / "sdv", strategy="sdv", distill={"k": 1})
    assert _student_history(sda) == _student_history(sdv)
    np.testing.assert_array_equal(sda_logits["dev_logits"], sdv_logits["dev_logits"])
    vanilla, v_logits = _run(task_config, tmp_path / "vanilla")
    off, off_logits = _run(task_config, tmp_path / "off", strategy="sda",
                           distill={"lambda": 0.0, "k": 3})  # fmt: skip
    assert _student_history(off) == _student_history(vanilla)
    np.testing.assert_array_equal(v_logits["dev_logits"], off_logits["dev_logits"])
    assert _student_history(sda) != _student_history(vanilla)  # distillation does change training
    assert vanilla["task"] == load_config(task_config).data.resolved_task
    assert set(vanilla["metrics"]["dev"]) == set(METRICS[vanilla["task"]])


@pytest.mark.parametrize("strategy", ["sda", "noisytune+se"])
def test_resume_after_interruption_is_exact(task_config, tmp_path, strategy):
    config = load_config(merge(task_config, {"strategy": strategy, "distill": {"k": 2}}))
    reference = train(config, tmp_path / "reference")
    with pytest.raises(Interrupted):
        train(config, tmp_path / "resumed", report=_die_at_step_8)
    resumed = train(config, tmp_path / "resumed")
    assert resumed["resumed_from_steps"] == [8]
    assert resumed["history"] == reference["history"]
    assert_same_logits(tmp_path / "reference", tmp_path / "resumed")


def test_a_regression_predicts_one_score_per_pair(tiny_config, tmp_path):
    config = merge(tiny_config, {"data": {"name": "synthetic-similarity"}})
    result, logits = _run(config, tmp_path / "run")
    assert result["config"]["eval"]["primary_metric"] == "pearson_spearman"
    assert logits["dev_logits"].shape == (500, 1) and logits["dev_labels"].dtype == np.float32
    assert logits["dev_labels"].min() >= 0 and logits["dev_labels"].max() <= 5
    again = regression_metrics(logits["dev_logits"], logits["dev_labels"])
    assert again == pytest.approx(result["metrics"]["dev"])


def test_tags_are_scored_on_each_words_first_sub_word_whatever_the_batching(tiny_config, tmp_path):
    """Evaluation does not depend on how sentences are batched (one a batch or many): the
    padding is masked and only labelled positions are scored."""
    config = load_config(merge(tiny_config, {"data": {"name": "synthetic-ner"}}))
    train(config, tmp_path / "run")
    prepared = prepare(config)
    dev = prepared.splits["dev"]
    words = sum(len(s) for s in prepared.text_splits.dev["text"])
    assert len(dev.targets) == words  # every word scored once (none cut at this length)
    assert dev.target_offsets[-1] == words and len(dev.target_offsets) == len(dev) + 1
    model = prepared.model
    one = predict_logits(model, dev, 1, prepared.pad_id, torch.device("cpu"))
    many = predict_logits(model, dev, 64, prepared.pad_id, torch.device("cpu"))
    np.testing.assert_allclose(one, many, atol=1e-5)
    names = prepared.text_splits.label_names
    assert score(one, dev.targets, dev.target_offsets, names) == pytest.approx(
        score(many, dev.targets, dev.target_offsets, names)
    )
    saved = np.load(tmp_path / "run" / "logits.npz")
    assert list(saved["label_names"]) == names and "dev_offsets" in saved.files
    assert json.loads((tmp_path / "run" / "result.json").read_text())["task"] == (
        "token_classification"
    )


def test_entity_f1_is_seqevals_and_a_constant_score_correlates_zero():
    names = ["B-PER", "I-PER", "O"]
    gold = np.array([0, 1, 2, 2, 0])  # "Ana Silva said hi Tom": two people
    offsets = np.array([0, 5])
    right = np.eye(3)[gold]
    half = np.eye(3)[[0, 2, 2, 2, 0]]  # Ana (not Ana Silva) wrong, Tom right
    assert token_metrics(right, gold, offsets, names) == {"entity_f1": 1.0, "token_accuracy": 1.0}
    assert token_metrics(half, gold, offsets, names) == {"entity_f1": 0.5, "token_accuracy": 0.8}
    flat = regression_metrics(np.full((4, 1), 2.5), np.array([1.0, 2.0, 3.0, 4.0]))
    assert flat == {"pearson_spearman": 0.0, "pearson": 0.0, "spearman": 0.0}
    assert score(np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 2.0, 3.0]))["spearman"] == 1.0
    diverged = regression_metrics(np.array([[np.inf], [np.inf], [-np.inf], [np.nan]]),
                                  np.array([1.0, 2.0, 3.0, 4.0]))  # fmt: skip
    assert diverged == flat  # non-finite outputs are 0: a constant, not NaN


def test_a_tagger_distils_and_learns_only_on_labelled_tokens():
    """The loss and the distillation term read each word's first sub-word only: what the
    model outputs on other sub-words, special tokens and padding changes neither."""
    task = Task("token_classification")
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    labels = torch.tensor([[IGNORED, 0, 2, IGNORED, IGNORED], [IGNORED, 1, 1, 2, IGNORED]])
    elsewhere = labels == IGNORED
    other_teacher = teacher.clone()
    other_teacher[elsewhere] += 10.0
    other_student = student.clone()
    other_student[elsewhere] -= 10.0
    assert task.distillation(student, teacher, labels) == task.distillation(
        other_student, other_teacher, labels
    )
    assert task.loss(student, labels) == task.loss(other_student, labels)
    assert task.distillation(student, teacher, labels) > 0


def test_tagged_sentences_read_the_same_from_jsonl_and_parquet(tmp_path):
    """Parquet hands a list column back as NumPy arrays; they are the same sentences."""
    import pandas as pd

    from trainer.data import load_splits
    from trainer.data_config import DataConfig

    sentences = pd.DataFrame({"tokens": [["Ana", "met", "Tom"], ["Oslo", "grew"]] * 4,
                              "tags": [["B-PER", "O", "B-PER"], ["B-LOC", "O"]] * 4})  # fmt: skip
    splits = {}
    for fmt in ("jsonl", "parquet"):
        files = {}
        for split in ("train", "dev"):
            path = tmp_path / f"{split}.{fmt}"
            if fmt == "jsonl":
                sentences.to_json(path, orient="records", lines=True)
            else:
                sentences.to_parquet(path)
            files[split] = str(path)
        data = DataConfig.model_validate({"files": files, "text": "tokens", "label": "tags",
                                          "task": "token_classification"})  # fmt: skip
        splits[fmt] = load_splits(data)
    assert splits["parquet"].train["text"].tolist() == sentences["tokens"].tolist()
    assert splits["parquet"].train.equals(splits["jsonl"].train)
    assert splits["parquet"].label_names == splits["jsonl"].label_names
