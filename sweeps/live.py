"""What a running sweep shows: a live board on a terminal, a plain line now and then elsewhere.

The board is fed trial events (``sweeps._ray.LiveCallback`` is its Tune adapter) and
holds what a person watching wants: how many trials run, finished and failed; each running
trial's step and last dev score; per configuration the mean ± std of its finished seeds
so far; elapsed time and an ETA. It knows nothing of Ray, so it is tested on its own.

On a TTY it renders as a rich table, redrawn about once a second (``rich.live.Live``); a
non-TTY (CI, ``nohup``, a log file) gets one plain summary line every ``every_s`` seconds
instead, beside the one line per trial event the sweep always prints.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

__all__ = ["Board", "format_duration"]


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``: short enough for a status line."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class _Running:
    config: str
    step: int | None = None
    score: float | None = None


@dataclass
class Board:
    """The state of one Tune experiment of a sweep, as a person watching it needs it.

    ``total`` is the number of trials the experiment will run, None when a searcher
    decides as it goes (a seed race): then there is no ETA. Events may come from Tune's
    loop while the live display redraws from its own thread, hence the lock.
    """

    label: str
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    running: dict[str, _Running] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)  # config -> finished seeds
    finished: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getstate__(self) -> dict:
        """Tune pickles its callbacks with the experiment (``tuner.pkl``): no lock."""
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    # -- events ------------------------------------------------------------------
    def start(self, key: str, config: str) -> None:
        with self._lock:
            self.running[key] = _Running(config)

    def result(self, key: str, step: int | None, score: float | None) -> None:
        with self._lock:
            trial = self.running.get(key)
            if trial is None:
                return
            trial.step = step if step is not None else trial.step
            trial.score = score if score is not None else trial.score

    def finish(self, key: str, config: str, score: float | None) -> None:
        with self._lock:
            self.running.pop(key, None)
            self.finished += 1
            if score is not None:
                self.scores.setdefault(config, []).append(float(score))

    def fail(self, key: str) -> None:
        with self._lock:
            self.running.pop(key, None)
            self.failed += 1

    def retry(self, key: str) -> None:
        """A failed attempt that Tune will run again: no longer running, not failed."""
        with self._lock:
            self.running.pop(key, None)

    # -- views -------------------------------------------------------------------
    def elapsed(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.started

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the pace so far (trials ended per second of this experiment),
        None before the first trial ends or without a known total."""
        ended = self.finished + self.failed
        if self.total is None or ended == 0:
            return None
        return self.elapsed(now) / ended * max(0, self.total - ended)

    def summary(self, now: float | None = None) -> str:
        """One plain line: counts, elapsed and ETA."""
        with self._lock:
            total = self.total if self.total is not None else "?"
            eta = self.eta(now)
            return (
                f"[{self.label}] finished {self.finished}/{total}  running {len(self.running)}"
                f"  failed {self.failed}  | elapsed {format_duration(self.elapsed(now))}"
                + (f", ETA {format_duration(eta)}" if eta is not None else "")
            )

    def config_rows(self) -> list[tuple[str, int, float, float | None]]:
        """(configuration, n, mean, std or None) of the finished seeds, in first-seen order."""
        with self._lock:
            items = list(self.scores.items())
        return [
            (config, len(v), statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else None)
            for config, v in items
        ]

    def __rich__(self) -> Group:
        """The board; rich calls this at every redraw, so elapsed and ETA stay current."""
        with self._lock:
            running = [(k, r.step, r.score) for k, r in self.running.items()]
        head = Text(self.summary(), style="bold")
        live = _table("running", ("trial", "step", "last dev"))
        for key, step, score in running:
            live.add_row(key, "-" if step is None else str(step), _score(score))
        done = _table("finished, per configuration", ("configuration", "n", "dev mean ± std"))
        for config, n, mean, std in self.config_rows():
            spread = f" ± {std:.4f}" if std is not None else ""
            done.add_row(config, str(n), f"{mean:.4f}{spread}")
        return Group(head, live, done)


def _table(title: str, columns: tuple[str, str, str]) -> Table:
    """A names-left, numbers-right table of three columns."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column(columns[0], justify="left")
    for name in columns[1:]:
        table.add_column(name, justify="right")
    return table


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
