"""The view of a running sweep: the board's counts, ETA and per-configuration means, its
rendering, and the Tune callback's plain lines where there is no terminal."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from sweeps.live import Board, format_duration


def test_format_duration():
    assert [format_duration(s) for s in (0, 9.6, 75, 3725)] == ["0s", "10s", "1m15s", "1h02m"]


def test_board_counts_scores_and_eta():
    board = Board("grid", total=4, started=100.0)
    board.start("a_s0", "a")
    board.start("a_s1", "a")
    board.result("a_s0", 8, 0.7)
    board.result("a_s0", None, None)  # a checkpoint report: keeps step and score
    assert (board.running["a_s0"].step, board.running["a_s0"].score) == (8, 0.7)
    assert board.eta(now=110.0) is None  # nothing ended yet
    board.finish("a_s0", "a", 0.8)
    board.finish("a_s1", "a", 0.6)
    board.start("b_s0", "b")
    board.fail("b_s0")
    # 3 ended in 30 s, 1 left: 10 s
    assert board.eta(now=130.0) == 10.0
    ((config, n, mean, std),) = board.config_rows()
    assert (config, n) == ("a", 2) and abs(mean - 0.7) < 1e-12 and abs(std - 0.1414) < 1e-4
    line = board.summary(now=130.0)
    assert "finished 2/4" in line and "running 0" in line and "failed 1" in line
    assert "elapsed 30s, ETA 10s" in line


def test_a_retried_trial_is_neither_running_nor_failed():
    board = Board("grid", total=1)
    board.start("a_s0", "a")
    board.retry("a_s0")
    assert not board.running and board.failed == 0 and board.finished == 0


def test_a_race_has_no_eta():
    board = Board("race", total=None, started=0.0)
    board.start("a_s0", "a")
    board.finish("a_s0", "a", 0.5)
    assert board.eta(now=5.0) is None and "finished 1/?" in board.summary(now=5.0)


def test_the_board_renders_running_trials_and_configurations():
    board = Board("grid", total=3)
    board.start("sst2_sda_k5_s1", "sst2_sda_k5")
    board.result("sst2_sda_k5_s1", 40, 0.8125)
    board.finish("sst2_vanilla_s0", "sst2_vanilla", 0.75)
    console = Console(record=True, width=120)
    console.print(board)
    text = console.export_text()
    assert "sst2_sda_k5_s1" in text and "40" in text and "0.8125" in text
    assert "sst2_vanilla" in text and "0.7500" in text  # one seed: no ± std


@dataclass
class _Trial:
    """What the callback reads of a Tune trial."""

    key: str
    last_result: dict = field(default_factory=dict)
    trial_id: str = "t0"

    @property
    def config(self) -> dict:
        return {"trial": {"key": self.key}}


def test_without_a_terminal_the_callback_prints_event_and_periodic_lines(capsys, monkeypatch):
    from sweeps import _ray

    monkeypatch.setattr(_ray, "_config_of", lambda spec: spec["key"].rsplit("_s", 1)[0])
    callback = _ray.ProgressCallback("grid", total=2, live=False, every_s=0.0)
    callback.setup()
    trial = _Trial("a_s0")
    callback.on_trial_start(0, [trial], trial)
    callback.on_trial_result(0, [trial], trial, {"step": 3, "objective": 0.5})
    callback.on_step_end(0, [trial])
    trial.last_result = {"objective": 0.625}
    callback.on_trial_complete(0, [trial], trial)
    callback.on_experiment_end([trial])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("| started a_s0")
    assert "running 1" in lines[1] and "started" not in lines[1]  # the periodic summary
    assert "finished 1/2" in lines[2] and lines[2].endswith("| finished a_s0 (0.6250)")
    assert lines[-1].startswith("[grid] finished 1/2")
    assert callback.board.config_rows()[0][:2] == ("a", 1)


def test_the_board_and_callback_pickle_as_tune_needs(monkeypatch):
    import pickle

    from sweeps import _ray

    callback = _ray.ProgressCallback("grid", total=2, live=False)
    callback.board.start("a_s0", "a")
    copy = pickle.loads(pickle.dumps(callback))
    assert list(copy.board.running) == ["a_s0"]
    copy.board.finish("a_s0", "a", 0.5)  # its lock works again
    assert copy.board.finished == 1
