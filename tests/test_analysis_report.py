"""The report from a fake run dir (every section, PNGs, HTML, CSV, YAML) and, marked slow,
from a real tiny sweep run through ``steadytune sweep``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_analysis_fakerun import make_run
from test_analysis_tables import table

import analysis
from analysis._render import render_markdown
from sweeps.cli.main import main

SECTIONS = (
    "## Headline",
    "## Decision: strategy, K and λ",
    "### Every configuration against vanilla, with power",
    "## Dataset alpha",
    "### Seed statistics, dev accuracy",
    "### Against vanilla, paired by seed",
    "### Figures",
    "## Seed ensembles (VOTE, AVG)",
    "## Missing",
    "## Cost",
    "## Statistics used",
)


def check_report(out: Path) -> str:
    md = (out / "report.md").read_text()
    for section in SECTIONS[:3] + SECTIONS[-4:]:
        assert section in md, section
    pngs = sorted((out / "figures").glob("*.png"))
    assert pngs
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
        assert f"figures/{png.name}" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)
    assert not re.search(r'src="(?!data:)', html)  # self-contained
    summary = pd.read_csv(out / "summary.csv")
    assert {"n", "mean", "std", "var", "sem", "ci_low", "ci_high", "median"} <= set(summary)
    selection = yaml.safe_load((out / "selection.yaml").read_text())
    assert "rule" in selection and selection["datasets"]
    return md


def test_report_of_a_fake_run(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path, save_models=False)
    assert main(["ensemble", str(run), "--method", "vote"]) == 0
    shutil.rmtree(run / "trials" / "alpha_se_kall_dlNone_nlNone_s1")  # lost result.json
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["report", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "selected configuration vs vanilla" in printed
        and "verdict " in printed
        and "partial sweep" in printed
    )
    md = check_report(out)
    for section in SECTIONS:
        assert section in md, section
    assert {p.name for p in (out / "figures").glob("*.png")} == {
        "alpha-seeds.png",
        "alpha-k.png",
        "alpha-lambda.png",
        "alpha-curves.png",
        "beta-seeds.png",
        "beta-k.png",
        "beta-curves.png",
    }
    # ensembles appear as their own rows; what is missing is said
    assert "| VOTE |" in md
    assert "beta_noisytune_kNone_dlNone_nl0.15_s4 | beta | noisytune | 4 | ERROR" in md
    assert "no result yet" in md and "alpha_se_kall_dlNone_nlNone_s1" in md
    headline = md.split("## Headline")[1].split("##")[0]
    assert "| alpha | dev accuracy |" in headline and "| beta | dev mcc |" in headline


def test_report_errors_cleanly(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a sweep run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_report_of_a_real_tiny_sweep(tmp_path, cache_dir):
    """Every task: classification, a regression and a tagger, through Ray, the seed
    ensembles and the report, each scored by its own metrics."""
    spec = {
        "name": "tiny",
        "model": "tiny-bert",
        "datasets": [
            {"name": "synthetic-sentiment", "train_size": 96, "k": [1, 2]},
            {"id": "sim", "name": "synthetic-similarity", "train_size": 96, "k": [1]},
            {"id": "ner", "name": "synthetic-ner", "train_size": 96, "k": [1]},
        ],
        "strategies": ["vanilla", "sda"],
        "seeds": 3,
        "defaults": {
            "optim": {"max_steps": 6, "batch_size": 16, "lr": 2e-3, "head_lr": 2e-3},
            "eval": {"every_steps": 3},
            "save_model": True,
            "cache_dir": str(cache_dir),
        },
        "resources": {"cpu": 1},
        "max_concurrent": 2,
        "storage": str(tmp_path / "runs"),
    }
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    exe = [sys.executable, "-m", "sweeps.cli.main"]
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [*exe, "sweep", str(spec_path), "--num-cpus", "2", "--no-dashboard"],
        check=True,
        cwd=root,
        timeout=900,
    )
    run = tmp_path / "runs" / "tiny"
    df = analysis.load(run)
    assert df["finished"].sum() == 9 + 6 + 6  # 3 vanilla + 2 K × 3 sda; 3 + 3 per task
    primary = df.groupby("dataset")["primary_metric"].first().to_dict()
    assert primary == {"synthetic-sentiment": "accuracy", "sim": "pearson_spearman",
                       "ner": "entity_f1"}  # fmt: skip
    subprocess.run([*exe, "ensemble", str(run)], check=True, cwd=root, timeout=300)
    done = subprocess.run(
        [*exe, "report", str(run)],
        check=True,
        cwd=root,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert "selected configuration vs vanilla" in done.stdout
    md = check_report(run / "report")
    assert "| VOTE |" in md and "| AVG |" in md
    ensembles = analysis.load_ensembles(run)
    scored = {
        ds: set(part.columns[part.notna().any()]) for ds, part in ensembles.groupby("dataset")
    }
    assert {"dev_pearson_spearman", "dev_spearman"} <= scored["sim"]
    assert {"dev_entity_f1", "dev_token_accuracy"} <= scored["ner"]
    assert "| ner | dev entity_f1 |" in md and "| sim | dev pearson_spearman |" in md


def test_report_of_two_runs_with_intro_and_markdown_copy(tmp_path, capsys):
    """A study's grid and its λ search as one report, published as docs/results.md."""
    grid = make_run(tmp_path / "a", save_models=False)
    search = tmp_path / "b" / "search-run"
    search.mkdir(parents=True)
    table = pd.read_parquet(grid / "results.parquet")
    is_search = table["optuna_trial"].notna()
    assert is_search.any() and (~is_search).any()
    table[is_search].to_parquet(search / "results.parquet")
    table[~is_search].to_parquet(grid / "results.parquet")
    intro = tmp_path / "findings.md"
    intro.write_text(
        "# Findings\n\nSDA is **steadier** here.\n\n- one\n- two\n\n"
        "```bash\nsteadytune a <b>\n```\n"
    )
    docs = tmp_path / "docs"
    args = ["report", str(grid), str(search), "--out", str(tmp_path / "out")]
    args += ["--title", "The study", "--intro", str(intro), "--markdown", str(docs / "results.md")]
    assert main(args) == 0
    md = (docs / "results.md").read_text()
    assert md.startswith("# The study\n")
    assert "## Findings\n\nSDA is **steadier** here.\n\n- one\n- two" in md
    assert f"{int(is_search.sum())} Optuna candidate trials" in md
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<code class="language-bash">steadytune a &lt;b&gt;\n</code></pre>' in html
    assert "<h2>Findings</h2>" in html
    figures = sorted((docs / "results-figures").glob("*.png"))
    assert "alpha-lambda.png" in {f.name for f in figures}
    for figure in figures:
        assert f"](results-figures/{figure.name})" in md
    assert md.split("## Headline")[0] == (tmp_path / "out" / "report.md").read_text().split(
        "## Headline"
    )[0].replace("](figures/", "](results-figures/")
    # the same run twice would count every seed twice
    capsys.readouterr()
    assert main(["report", str(grid), str(grid), "--out", str(tmp_path / "o2")]) == 2
    assert "is in both" in capsys.readouterr().err
    assert main(["report", str(grid), "--intro", str(tmp_path / "nope.md")]) == 2


def test_report_warns_about_trials_that_predict_one_class(tmp_path):
    run = make_run(tmp_path, save_models=False)
    logits = run / "trials" / "beta_vanilla_kNone_dlNone_nlNone_s0" / "logits.npz"
    arrays = dict(np.load(logits))
    arrays["dev_logits"][:, 0] = 5.0  # class 0 wins everywhere
    np.savez_compressed(logits, **arrays)
    df = analysis.load(run)
    assert df["one_class_on_dev"].sum() == 1
    report = analysis.write_report(run, tmp_path / "out", plots=False)
    md = report.out_dir / "report.md"
    assert "**Degenerate trials:**" in md.read_text()
    assert "beta: 1 of " in md.read_text()
    # and in the terminal, under the verdicts
    import io

    from sweeps.cli.report import print_headline

    out = io.StringIO()
    print_headline(report, stream=out)
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith("warning: ")]
    assert line.startswith("warning: Degenerate trials: finished trials") and "beta: 1 of " in line


def test_report_has_no_degenerate_warning_when_every_trial_varies(tmp_path):
    run = make_run(tmp_path, save_models=False)
    md = analysis.write_report(run, tmp_path / "out", plots=False).out_dir / "report.md"
    assert "Degenerate" not in md.read_text()


def test_header_keeps_the_dirty_mark_of_each_commit():
    df = table({("vanilla", None, None, None): [0.7, 0.8, 0.9]})
    df["git_commit"] = ["a" * 40, "a" * 40 + "-dirty", "b" * 40]
    md = render_markdown(analysis.build_report(df, plots=False))
    assert f"Code: git {'a' * 10}, {'a' * 10}-dirty, {'b' * 10}." in md


def test_intro_tables_render_as_tables_in_html(tmp_path):
    run = make_run(tmp_path, save_models=False)
    intro = "Findings.\n\n| config | Δ |\n| --- | ---: |\n| sda | +0.01 |\n| se | −0.02 |"
    out = analysis.write_report(run, tmp_path / "out", plots=False, intro=intro).out_dir
    html = (out / "report.html").read_text()
    assert "<td>sda</td>" in html and '<th style="text-align:right">Δ</th>' in html
    assert "| sda |" not in html
    assert "| sda | +0.01 |" in (out / "report.md").read_text()
