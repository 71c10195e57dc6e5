"""A run directory written by steadytune 0.1.0, before every knob was a dotted key
(tests/fixtures/rundir-0.1.0, made by ``steadytune sweep spec.yaml`` of that version:
tiny-bert, vanilla / SE / NoisyTune / SDA K ∈ {1, all} / re-init layers ∈ {1, 2}, 2
seeds), still loads, reports and resumes, through the one compatibility mapping
(``trainer.recorded.LEGACY_KNOB_NAMES``)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import analysis
from sweeps.cli.main import main
from sweeps.grid import TrialSpec, config_key
from sweeps.results import read_results
from trainer.recorded import LEGACY_KNOB_NAMES, upgrade_table

FIXTURE = Path(__file__).parent / "fixtures" / "rundir-0.1.0"


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A copy of the 0.1.0 run dir (never the fixture itself), as a run of this machine."""
    run_dir = tmp_path / "runs" / "knobs-0.1"
    shutil.copytree(FIXTURE, run_dir)
    return run_dir


def test_the_fixture_is_a_run_of_0_1_0():
    raw = pd.read_parquet(FIXTURE / "results.parquet")
    assert set(LEGACY_KNOB_NAMES) <= set(raw.columns)
    trial = json.loads(next(FIXTURE.glob("trials/*/trial.json")).read_text())["trial"]
    assert set(LEGACY_KNOB_NAMES) <= set(trial)


def test_an_old_table_loads_with_dotted_knob_columns_and_the_same_labels(old_run):
    df = analysis.load(old_run)
    assert not set(LEGACY_KNOB_NAMES) & set(df.columns)
    assert {"distill.k", "distill.lambda", "noise.lambda", "reinit.layers"} <= set(df.columns)
    by_key = df.set_index("key")
    assert by_key.loc["tiny_sda_kall_dl1_s0", "settings"] == "distill.k=all distill.lambda=1"
    assert by_key.loc["tiny_sda_kall_dl1_s0", "distill.k"] == "all"
    assert by_key.loc["tiny_reinit_reinit.layers=2_s1", "settings"] == "reinit.layers=2"
    labels = {analysis.config_label(r) for r in df.to_dict("records")}
    assert {"sda K=all dλ=1", "se K=1", "noisytune nλ=0.15", "reinit reinit.layers=2",
            "vanilla"} <= labels  # fmt: skip
    stats = analysis.seed_stats(df, metrics=["accuracy"], splits=["dev"])
    assert stats.groupby("config_key").ngroups == 8 and (stats["n"] == 2).all()


def test_an_old_trial_record_keeps_its_key(old_run):
    for path in old_run.glob("trials/*/trial.json"):
        recorded = json.loads(path.read_text())["trial"]
        spec = TrialSpec.from_dict(recorded)
        assert spec.key == recorded["key"] == path.parent.name
        assert config_key(spec) == spec.key.rsplit("_s", 1)[0]


def test_an_old_run_dir_resumes_with_nothing_rerun_and_reports(old_run, capsys):
    spec = FIXTURE / "spec.yaml"
    before = {p: p.stat().st_mtime_ns for p in old_run.glob("trials/*/result.json")}
    storage = f"storage={old_run.parent}"
    assert main(["sweep", str(spec), "--set", storage, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "holds 16 finished trial(s) of these; 0 to run, 0 of them new" in plan
    assert main(["resume", str(old_run), "--no-report"]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in old_run.glob("trials/*/result.json")} == before
    assert main(["report", str(old_run), "--no-plots"]) == 0
    table = read_results(str(old_run / "results.parquet"))
    assert "distill.k" in table.columns and "teacher_k" not in table.columns
    assert len(table) == 16


def test_upgrading_a_table_twice_changes_nothing():
    once = upgrade_table(pd.read_parquet(FIXTURE / "results.parquet"))
    pd.testing.assert_frame_equal(upgrade_table(once), once)
