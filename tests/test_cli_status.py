"""``steadytune --version``, ``status RUN_DIR`` (read from the files, no Ray) and
``sweep --set`` (spec overrides, validated like the file)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from sweeps.cli.main import main
from sweeps.grid import plan_sweep
from sweeps.ledger import build_record, write_record
from sweeps.progress import read_progress
from sweeps.spec import load_spec
from trainer.layout import ERROR_FILE, RESULT_FILE, TRIAL_FILE, trial_dir
from trainer.provenance import git_commit


def _spec(tmp: Path, cache: Path, **over) -> dict:
    return {
        "name": "progress",
        "model": "tiny-bert",
        "datasets": [{"name": "synthetic-sentiment", "train_size": 64, "max_length": 32}],
        "strategies": ["vanilla", "sda"],
        "seeds": 3,
        "grid": {"distill.k": ["all"]},
        "defaults": {"optim": {"max_steps": 2, "batch_size": 16}, "cache_dir": str(cache)},
        "storage": str(tmp / "runs"),
        **over,
    }


def _spec_file(tmp: Path, spec: dict) -> str:
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


# -- --version ---------------------------------------------------------------------------


def test_version_names_the_distribution_and_the_commit(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    commit = git_commit()
    expected = f"steadytune {metadata.version('steadytune')}"
    assert capsys.readouterr().out == expected + (f" (commit {commit})" if commit else "") + "\n"


def test_version_imports_neither_torch_nor_ray():
    code = (
        "import sys\nfrom sweeps.cli.main import main\ntry:\n    main(['--version'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'ray', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


# -- status of a run directory -----------------------------------------------------------


def _run_dir(tmp: Path, cache: Path) -> tuple[Path, dict[str, list]]:
    """A run dir as a driver leaves it mid-sweep: the record of the real plan, and trial
    directories of each state (vanilla: two finished, one failed; sda: one finished, one
    running with a checkpoint, one only described by trial.json)."""
    spec = load_spec(_spec(tmp, cache))
    plan = plan_sweep(spec)
    run_dir = Path(spec.run_dir())
    run_dir.mkdir(parents=True)
    write_record(str(run_dir), build_record(plan))
    by_strategy: dict[str, list] = {}
    for t in plan.grid:
        by_strategy.setdefault(t.strategy, []).append(t)
        path = trial_dir(run_dir, t.key)
        path.mkdir(parents=True)
        (path / TRIAL_FILE).write_text(json.dumps({"trial": t.to_dict(), "trial_id": None}))
    return run_dir, by_strategy


def _finish(run_dir: Path, trial, accuracy: float) -> None:
    result = {"config": trial.config, "metrics": {"dev": {"accuracy": accuracy}}, "history": []}
    (trial_dir(run_dir, trial.key) / RESULT_FILE).write_text(json.dumps(result))


def _fail(run_dir: Path, trial) -> None:
    (trial_dir(run_dir, trial.key) / ERROR_FILE).write_text(json.dumps({"error": "OOM"}))


@pytest.fixture
def planned(tmp_path, cache_dir) -> tuple[Path, dict[str, list]]:
    return _run_dir(tmp_path, cache_dir)


@pytest.fixture
def half_done(planned) -> Path:
    run_dir, trials = planned
    vanilla, sda = trials["vanilla"], trials["sda"]
    assert len(vanilla) == len(sda) == 3
    _finish(run_dir, vanilla[0], 0.7)
    _finish(run_dir, vanilla[1], 0.9)
    _fail(run_dir, vanilla[2])
    _finish(run_dir, sda[0], 0.85)
    (trial_dir(run_dir, sda[1].key) / "checkpoint").mkdir()
    return run_dir


def test_progress_counts_each_state_and_scores_the_finished(half_done):
    progress = read_progress(half_done)
    assert progress.name == "progress"
    cells = {c.strategy: c for c in progress.cells}
    assert (cells["vanilla"].planned, cells["vanilla"].finished, cells["vanilla"].failed,
            cells["vanilla"].unfinished) == (3, 2, 1, 0)  # fmt: skip
    assert (cells["sda"].planned, cells["sda"].finished, cells["sda"].failed,
            cells["sda"].unfinished) == (3, 1, 0, 2)  # fmt: skip
    assert (progress.planned, progress.finished, progress.failed, progress.unfinished) == (
        6, 3, 1, 2)  # fmt: skip
    scores = {s.strategy: s for s in progress.scores}
    assert scores["vanilla"].n == 2 and scores["vanilla"].metric == "accuracy"
    assert scores["vanilla"].mean == pytest.approx(0.8)
    assert scores["vanilla"].std == pytest.approx(0.1414, abs=1e-4)  # sample std of .7, .9
    assert scores["sda"].n == 1 and scores["sda"].mean == pytest.approx(0.85)
    assert scores["sda"].config == "sda K=all dλ=1"


def test_a_stale_result_is_not_a_finished_trial(planned, half_done):
    """A result.json of another config (a copied directory) is not this trial's result."""
    sda = planned[1]["sda"]
    other = {**sda[2].config, "seed": 99}
    result = {"config": other, "metrics": {"dev": {"accuracy": 0.1}}, "history": []}
    (trial_dir(half_done, sda[2].key) / RESULT_FILE).write_text(json.dumps(result))
    cells = {c.strategy: c for c in read_progress(half_done).cells}
    assert cells["sda"].finished == 1 and cells["sda"].unfinished == 2


def test_status_prints_the_counts_and_the_mean(half_done, capsys):
    assert main(["status", str(half_done)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "3 of 6 trials finished, 1 failed, 2 unfinished" in lines[0]
    rows = {w[1]: w[3:] for w in map(str.split, lines) if w[:1] == ["synthetic-sentiment"]
            and w[2:3] == ["grid"]}  # fmt: skip
    assert rows["vanilla"] == ["3", "2", "1", "0"] and rows["sda"] == ["3", "1", "0", "2"]
    assert next(line for line in lines if "total" in line).split()[-4:] == ["6", "3", "1", "2"]
    vanilla = next(line for line in lines if line.split()[1:2] == ["vanilla"] and "±" in line)
    assert vanilla.split()[-4:] == ["0.8000", "±", "0.1414", "2"]
    assert "sda K=all dλ=1" in out and "0.8500 ± -" in out


def test_status_writes_nothing(half_done):
    before = sorted(p.relative_to(half_done) for p in half_done.rglob("*"))
    read_progress(half_done)
    assert sorted(p.relative_to(half_done) for p in half_done.rglob("*")) == before


def test_status_of_a_missing_path_is_one_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    assert main(["status", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("steadytune status: error: ")
    assert str(missing) in err


def test_status_of_a_directory_without_a_record_names_sweep_json(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err and "sweep.json" in err


# -- sweep --set -------------------------------------------------------------------------


def test_set_changes_the_planned_trials_of_a_dry_run(tmp_path, cache_dir, capsys):
    spec = _spec(tmp_path, cache_dir, strategies=["vanilla"], seeds=5, grid={})
    assert main(["sweep", _spec_file(tmp_path, spec), "--dry-run", "--set", "seeds=2"]) == 0
    total = next(line for line in capsys.readouterr().out.splitlines() if "total" in line)
    assert total.split("│")[5].strip() == "2"  # the trials column: 2 seeds, not the file's 5
    assert not Path(tmp_path / "runs" / "progress").exists()  # a dry run writes nothing


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("seedz=2", "'seedz'"),
        ("defaults.optim.lrr=1e-4", "optim.lrr"),
        ("seeds=0", "'seeds'"),
        ("seeds", "--set"),
        ("datasets.0.k=1", "--set datasets.0.k: 'datasets' is a list"),
    ],
)
def test_a_bad_set_is_one_line_naming_the_key(tmp_path, cache_dir, capsys, override, named):
    path = _spec_file(tmp_path, _spec(tmp_path, cache_dir))
    assert main(["sweep", path, "--dry-run", "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("steadytune sweep: error: "), err
    assert named in err, err


def test_set_reaches_nested_defaults_and_dotted_grid_keys(tmp_path, cache_dir):
    path = _spec_file(tmp_path, _spec(tmp_path, cache_dir))
    spec = load_spec(path, overrides=["defaults.optim.lr=1e-4", "grid.distill.k=[1, all]",
                                      "max_concurrent=1"])  # fmt: skip
    assert spec.defaults["optim"] == {"max_steps": 2, "batch_size": 16, "lr": 1e-4}
    assert spec.grid.values_of("distill.k") == [1, "all"] and spec.max_concurrent == 1


def test_an_se_configuration_is_scored_by_its_averaged_model(tmp_path, cache_dir):
    """SE's student is the plain run's (vanilla's, scored in vanilla's row): what stands
    for SE is its parameter average."""
    spec = load_spec(_spec(tmp_path, cache_dir, strategies=["vanilla", "se"], grid={}))
    plan = plan_sweep(spec)
    run_dir = Path(spec.run_dir())
    run_dir.mkdir(parents=True)
    write_record(str(run_dir), build_record(plan))
    for t in plan.grid:  # every student scores 0.8, every average 0.6
        student, averaged = 0.8, 0.6
        path = trial_dir(run_dir, t.key)
        path.mkdir(parents=True)
        (path / TRIAL_FILE).write_text(json.dumps({"trial": t.to_dict(), "trial_id": None}))
        metrics = {"dev": {"accuracy": student}, "averaged": {"dev": {"accuracy": averaged}}}
        result = {"config": t.config, "metrics": metrics, "history": []}
        (path / RESULT_FILE).write_text(json.dumps(result))
    scores = {s.strategy: s for s in read_progress(run_dir).scores}
    assert scores["se"].n == 3 and scores["vanilla"].n == 3
    assert scores["se"].mean == pytest.approx(0.6) and scores["vanilla"].mean == pytest.approx(0.8)
