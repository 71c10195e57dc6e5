"""Cross-lingual evaluation: extra evaluation splits (a test set per language) scored at
the final evaluation, reported per split and decided on when the spec says so; a tiny
XLM-R generated here loads through the same model code as BERT."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pandas as pd
import pytest
from test_analysis_tables import knob_columns

import analysis
from sweeps.cli.report import print_headline
from sweeps.results import make_row
from sweeps.spec import load_spec
from trainer import load_config, train
from trainer.data.synthetic import generate
from trainer.errors import ConfigError
from trainer.loading import merge

# a word-for-word "translation" of some English template words: enough to make a
# language the tagger was not trained on, with the same tags
GERMAN = dict(visited="besuchte", last="letzte", week="Woche", works="arbeitet", opened="eröffnete",
              office="Büro", said="sagte")  # fmt: skip
FRENCH = dict(visited="visita", last="dernière", week="semaine", works="travaille",
              opened="a ouvert", office="bureau", said="dit")  # fmt: skip


def _jsonl(path, frame: pd.DataFrame, words: dict[str, str] | None = None) -> str:
    rows = []
    for tokens, tags in zip(frame["text"], frame["label"], strict=True):
        tokens = [words.get(t, t) if words else t for t in tokens]
        rows.append(json.dumps({"tokens": tokens, "tags": tags}))
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture
def files(tmp_path) -> dict:
    """English train and dev, and German and French test sets, as JSONL."""
    test = generate("synthetic-ner", "test").head(120)
    return {
        "train": _jsonl(tmp_path / "train.jsonl", generate("synthetic-ner", "train")),
        "dev": _jsonl(tmp_path / "dev.jsonl", generate("synthetic-ner", "dev").head(120)),
        "eval": {
            "de": _jsonl(tmp_path / "de.jsonl", test, GERMAN),
            "fr": _jsonl(tmp_path / "fr.jsonl", test, FRENCH),
        },
    }


def test_extra_splits_are_scored_once_at_the_end_by_a_tiny_xlmr(tiny_config, tmp_path, files):
    data = {"files": files, "text": "tokens", "label": "tags", "task": "token_classification",
            "train_size": 192}  # fmt: skip
    config = load_config(merge({**tiny_config, "data": data}, {"model": "tiny-xlmr"}))
    result = train(config, tmp_path / "run")
    assert set(result["metrics"]) == {"dev", "de", "fr"}  # no test split in these files
    assert set(result["metrics"]["de"]) == {"entity_f1", "token_accuracy"}
    assert all(set(h) >= {"dev"} and "de" not in h for h in result["history"][:-1])
    with np.load(tmp_path / "run" / "logits.npz") as saved:
        assert {"de_logits", "de_labels", "de_offsets", "fr_logits"} <= set(saved.files)
    row = make_row({"key": "k", "dataset": "ner", "strategy": "vanilla", "seed": 0,
                    "primary_metric": "entity_f1", "config": result["config"], "settings": {}},
                   {f"{split}/{m}": v for split, scores in result["metrics"].items()
                    for m, v in scores.items()}, trial_id="t", status="TERMINATED")  # fmt: skip
    assert row["de_entity_f1"] == result["metrics"]["de"]["entity_f1"]
    assert "fr_token_accuracy" in row


def _table() -> pd.DataFrame:
    rng, rows = random.Random(0), []
    for strategy, gain in (("vanilla", 0.0), ("noisytune", 0.05)):
        knobs = knob_columns({"noise.lambda": 0.15} if gain else {})
        for seed in range(5):
            base = 0.6 + rng.gauss(0, 0.01)
            rows.append({"key": f"{strategy}{seed}", "dataset": "ner", "strategy": strategy,
                         "seed": seed, **knobs, "primary_metric": "entity_f1",
                         "status": "TERMINATED", "primary_dev_score": base,
                         "dev_entity_f1": base, "de_entity_f1": base - 0.2 + gain,
                         "fr_entity_f1": base - 0.3})  # fmt: skip
    return analysis.tidy(pd.DataFrame(rows))


def test_each_split_is_reported_and_the_spec_may_decide_on_one():
    df = _table()
    long = analysis.long_metrics(df)
    assert set(long["split"]) == {"dev", "de", "fr"}
    on_de = analysis.compare_to_vanilla(df, split="de")
    assert on_de["mean_diff"].round(2).tolist() == [0.05]
    assert analysis.decisions(df)["ner"].decision.verdict != "better"  # no gain on dev
    german = analysis.DecisionSettings(split="de")
    assert analysis.decisions(df, settings=german)["ner"].decision.verdict == "better"
    report = analysis.build_report(df, settings=german, plots=False)
    headings = [b.content for b in report.blocks if b.kind == "h3"]
    assert "Against vanilla, paired by seed (de entity_f1)" in headings
    assert report.selection_yaml["split"] == "de"
    # the headline, the rule and the learning curves speak of the split decided on
    (headline,) = report.headline.to_dict("records")
    vanilla_de = df.loc[df["strategy"] == "vanilla", "de_entity_f1"].mean()
    assert headline["metric"] == "de entity_f1"
    assert headline["vanilla"].startswith(f"{vanilla_de:.4f}")
    assert report.selection_yaml["rule"].startswith("The de split")
    assert any("(de split, the dataset's primary metric)" in b.content for b in report.blocks)
    shown = io.StringIO()
    print_headline(report, shown)
    assert "vs vanilla (de)" in shown.getvalue()
    # a split one dataset lacks is not reported for it
    other = _table().assign(dataset="other", de_entity_f1=float("nan"))
    both = analysis.build_report(pd.concat([df, other], ignore_index=True), plots=False)
    sections = [b.content for b in both.blocks if b.kind in ("h2", "h3")]
    at = sections.index("Dataset other (primary metric: entity_f1)")
    assert not any("(de " in h or ", de " in h for h in sections[at:])


def test_a_verdict_decided_on_test_is_not_confirmed_on_test_again():
    df = _table()
    df["test_entity_f1"] = df["de_entity_f1"]
    on_de = analysis.decisions(df, settings=analysis.DecisionSettings(split="de"))["ner"]
    assert on_de.confirmation is not None and on_de.confirmation["outcome"] == "confirmed"
    on_test = analysis.decisions(df, settings=analysis.DecisionSettings(split="test"))["ner"]
    assert on_test.decision.verdict == "better" and on_test.confirmation is None


def test_the_decision_split_must_be_one_every_dataset_scores(files):
    spec = {"name": "x", "model": "tiny-bert", "strategies": ["vanilla"], "seeds": 1,
            "datasets": [{"files": files, "text": "tokens", "label": "tags",
                          "task": "token_classification"}]}  # fmt: skip
    assert load_spec({**spec, "decision": {"split": "de"}}).decision.split == "de"
    with pytest.raises(ConfigError, match=r"'decision.split' parameter must name a split"):
        load_spec({**spec, "decision": {"split": "es"}})
    bad = {**files, "eval": {"de_at": files["dev"]}}
    with pytest.raises(ConfigError, match=r"'datasets\[0\].files.eval"):
        load_spec({**spec, "datasets": [{**spec["datasets"][0], "files": bad}]})


def test_xlmr_holds_two_tokens_fewer_than_its_position_embeddings(tiny_config):
    """XLM-R numbers positions from pad_token_id + 1: of its 514 embeddings, 512 hold
    tokens, and a longer max_length is refused before any weights load."""
    from trainer.models import check_model_limits, check_model_resolvable

    def config(length: int):
        data = {"name": "synthetic-ner", "max_length": length}
        return load_config(merge({**tiny_config, "data": data}, {"model": "tiny-xlmr"}))

    path = check_model_resolvable("tiny-xlmr", tiny_config["cache_dir"])
    check_model_limits(config(512), path)
    with pytest.raises(ConfigError, match=r"'data.max_length' parameter must be at most 512"):
        check_model_limits(config(513), path)
