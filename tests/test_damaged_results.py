"""A damaged ``result.json`` is seen, never trusted: status, report and the dry run name
it, its stale row leaves ``results.parquet``, and the trainer moves it aside and trains
the trial anew (no Ray: the stand-in trainer writes the trial directories)."""

from __future__ import annotations

import json
import warnings

import pytest
from test_confirm import _run_grid
from test_race import _fake_trial

from sweeps.cli.main import main
from sweeps.ledger import build_record, write_record
from sweeps.progress import read_progress
from sweeps.results import damaged_results, ensure_results, read_results
from sweeps.rundir import RUN_MARKER
from trainer.checkpoint import CorruptResultWarning
from trainer.layout import LOGITS_FILE, RESULT_FILE, RESULTS_FILE, trial_dir


@pytest.fixture
def finished_run(tmp_path, monkeypatch):
    """A grid run dir whose every trial finished, as a driver leaves it."""
    from sweeps.grid import plan_sweep

    spec, run_dir, trials = _run_grid(tmp_path, monkeypatch, confirm=None)
    run_dir.mkdir(parents=True)
    (run_dir / RUN_MARKER).write_text("{}\n")
    write_record(str(run_dir), build_record(plan_sweep(spec)))
    for trial in trials:
        _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    return run_dir, trials


def _damage(run_dir, key: str):
    path = trial_dir(str(run_dir), key) / RESULT_FILE
    path.write_text(path.read_text()[:40])  # truncated mid-write by a full disk, say
    return path


def test_a_damaged_result_is_reported_and_its_stale_row_dropped(finished_run, capsys):
    run_dir, trials = finished_run
    assert len(read_results(str(run_dir / RESULTS_FILE))) == len(trials)
    path = _damage(run_dir, trials[0].key)
    assert damaged_results(run_dir) == [path]
    before = read_progress(run_dir)
    assert before.unfinished == 1 and before.finished == len(trials) - 1
    ensure_results(run_dir)
    table = read_results(str(run_dir / RESULTS_FILE))
    assert trials[0].key not in set(table["key"]) and len(table) == len(trials) - 1
    # status, report and the dry run each name the file
    for argv in (["status", str(run_dir)], ["report", str(run_dir), "--no-plots"]):
        capsys.readouterr()
        assert main(argv) == 0
        assert f"{path} is damaged" in capsys.readouterr().err
    spec = run_dir.parent / "s.json"
    spec.write_text(json.dumps(json.loads((run_dir / "sweep.json").read_text())["spec"]))
    assert main(["sweep", str(spec), "--dry-run", "--run-dir", str(run_dir)]) == 0
    assert f"{path} is damaged" in capsys.readouterr().err


def test_the_only_row_stale_leaves_no_table_behind(finished_run):
    run_dir, trials = finished_run
    for trial in trials:
        _damage(run_dir, trial.key)
    assert ensure_results(run_dir) == 0
    assert not (run_dir / RESULTS_FILE).exists()


def test_the_trainer_moves_a_damaged_result_aside_and_trains_anew(tmp_path):
    from trainer.loop import _finished_result

    (tmp_path / LOGITS_FILE).write_bytes(b"")
    (tmp_path / RESULT_FILE).write_text('{"config": {"seed": 0}, "metr')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _finished_result(tmp_path, {"seed": 0}) is None
    assert any(issubclass(w.category, CorruptResultWarning) for w in caught)
    assert not (tmp_path / RESULT_FILE).exists()
    assert (tmp_path / f"{RESULT_FILE}.corrupt-1").read_text().endswith('"metr')


def test_a_trial_outcome_that_cannot_be_recorded_does_not_end_the_sweep(tmp_path, capsys):
    """Recording a failed trial's error.json in a directory that cannot take it raised
    inside Tune's callback, which ended the sweep (issue 28); now it is that trial's."""
    from types import SimpleNamespace

    from sweeps._ray import ResultsCallback

    key = "synthetic-sentiment_vanilla_s0"
    trials = tmp_path / "run" / "trials"
    trials.mkdir(parents=True)
    (trials / key).write_text("a file where the trial's directory should be")
    trial = SimpleNamespace(config={"trial": {"key": key}}, trial_id="t1", error_file=None,
                            last_result={})  # fmt: skip
    ResultsCallback(str(tmp_path / "run")).on_trial_error(0, [], trial)
    err = capsys.readouterr().err
    assert f"could not record the outcome of trial {key}" in err and "resume" in err


EVIL = "![t](http://127.0.0.1:9/t.png)<script>alert(1)</script>"


def test_user_text_in_a_report_is_text(finished_run):
    """A dataset name (a data directory's name, say) holding Markdown and HTML: report.md
    neither runs nor fetches it, report.html loads nothing from outside itself."""
    import analysis
    from analysis._render import render_html, render_markdown

    run_dir, _ = finished_run
    df = analysis.load(run_dir)
    df["dataset"] = EVIL
    df["error"] = EVIL
    report = analysis.build_report(df, plots=False)
    md = render_markdown(report)
    assert "<script" not in md and "](http" not in md and "&lt;script>" in md
    page = render_html(report, {})
    assert "<script" not in page and 'src="http' not in page and "<img" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert report.selection_yaml["datasets"][EVIL]  # the data keeps the name as it is
