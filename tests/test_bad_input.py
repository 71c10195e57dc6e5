"""Bad input a user will type, over every command that takes it: ``train``, ``sweep``,
``sweep --dry-run``, ``resume`` and ``report``.

Each case must end the way a fixable mistake should: exit status 2, one line on stderr
that names the key, file or row to fix, no traceback, no Ray started (no ``ray/`` under
the run directory, no Ray connection in this process), and not one file on disk changed.
The commands run in this process (``sweeps.cli.main.main``) so the table stays fast; a
few cases also run as a real subprocess to prove the same holds for the installed CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from sweeps.cli.main import main
from sweeps.ledger import build_record, write_record
from sweeps.rundir import RUN_MARKER, DriverLock
from sweeps.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


# -- inputs ---------------------------------------------------------------------------
def train_config(cache: Path, **over) -> dict:
    config = {
        "model": "tiny-bert",
        "data": {"name": "synthetic-sentiment", "train_size": 64, "max_length": 32},
        "optim": {"max_steps": 2, "batch_size": 16},
        "cache_dir": str(cache),
    }
    for dotted, value in over.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


def sweep_spec(tmp: Path, cache: Path, **over) -> dict:
    """A small valid spec with ``over`` applied; a key given as None is left out."""
    spec = {
        "name": "bad",
        "model": "tiny-bert",
        "datasets": [{"name": "synthetic-sentiment", "train_size": 64, "max_length": 32}],
        "strategies": ["vanilla", "sda"],
        "seeds": 2,
        "defaults": {"optim": {"max_steps": 2, "batch_size": 16}, "cache_dir": str(cache)},
        "storage": str(tmp / "runs"),
    }
    spec.update(over)
    return {k: v for k, v in spec.items() if v is not None}


def write_csv(path: Path, rows: list[tuple[str, str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["sentence,label"] + [f"{text},{label}" for text, label in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


GOOD_ROWS = [(f"a fine sentence number {i}", str(i % 2)) for i in range(40)]


def files_data(tmp: Path, train_rows=None, dev_rows=None, **extra) -> dict:
    train = write_csv(tmp / "data" / "train.csv", train_rows or GOOD_ROWS)
    dev = write_csv(tmp / "data" / "dev.csv", dev_rows or GOOD_ROWS[:10])
    return {"files": {"train": str(train), "dev": str(dev)}, "text": "sentence", **extra}


@dataclass
class Case:
    """One bad input: ``make(tmp, cache)`` writes what it needs and returns the argv."""

    name: str
    make: Callable[[Path, Path], list[str]]
    names: str  # what the one-line message must name (a key, file or row)
    extra: list[str] = field(default_factory=list)  # more substrings it must hold


def _yaml(path: Path, data) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def train_case(name: str, names: str, *extra: str, **over) -> Case:
    def make(tmp: Path, cache: Path) -> list[str]:
        return ["train", _yaml(tmp / "c.yaml", train_config(cache, **over)), "--out",
                str(tmp / "out")]  # fmt: skip

    return Case(f"train: {name}", make, names, list(extra))


def train_data_case(name: str, names: str, data: Callable[[Path], dict], *extra: str) -> Case:
    def make(tmp: Path, cache: Path) -> list[str]:
        config = train_config(cache)
        config["data"] = data(tmp)
        return ["train", _yaml(tmp / "c.yaml", config), "--out", str(tmp / "out")]

    return Case(f"train: {name}", make, names, list(extra))


def sweep_case(name: str, names: str, /, *extra: str, dry: bool = False, **over) -> Case:
    def make(tmp: Path, cache: Path) -> list[str]:
        spec = sweep_spec(tmp, cache, **over)
        return ["sweep", _yaml(tmp / "s.yaml", spec), *(["--dry-run"] if dry else [])]

    return Case(f"sweep: {name}" + (" (dry run)" if dry else ""), make, names, list(extra))


def both(name: str, names: str, /, *extra: str, **over) -> list[Case]:
    """The same bad spec through ``sweep`` and ``sweep --dry-run``: both must refuse it."""
    return [
        sweep_case(name, names, *extra, **over),
        sweep_case(name, names, *extra, dry=True, **over),
    ]


def raw_file_case(name: str, command: str, text: str, names: str, *extra: str) -> Case:
    def make(tmp: Path, cache: Path) -> list[str]:
        path = tmp / "in.yaml"
        path.write_text(text.replace("CACHE", str(cache)).replace("TMP", str(tmp)))
        argv = [command, str(path)]
        return argv + (["--out", str(tmp / "out")] if command == "train" else [])

    return Case(f"{command}: {name}", make, names, list(extra))


def dataset_case(name: str, names: str, data: Callable[[Path], dict], *extra: str) -> list[Case]:
    cases = []
    for dry in (False, True):

        def make(tmp: Path, cache: Path, dry=dry) -> list[str]:
            spec = sweep_spec(tmp, cache, datasets=[data(tmp)])
            return ["sweep", _yaml(tmp / "s.yaml", spec), *(["--dry-run"] if dry else [])]

        label = f"sweep: {name}" + (" (dry run)" if dry else "")
        cases.append(Case(label, make, names, list(extra)))
    return cases


def _recorded_run(tmp: Path, cache: Path) -> Path:
    """A run dir recorded for one spec (as a finished driver leaves it), no training."""
    spec = load_spec(sweep_spec(tmp, cache))
    from sweeps.grid import plan_sweep

    run_dir = Path(spec.run_dir())
    run_dir.mkdir(parents=True)
    (run_dir / RUN_MARKER).write_text("{}\n")
    write_record(str(run_dir), build_record(plan_sweep(spec)))
    return run_dir


def changed_spec(tmp: Path, cache: Path) -> list[str]:
    _recorded_run(tmp, cache)
    spec = sweep_spec(tmp, cache)
    spec["defaults"]["optim"]["lr"] = 1e-4
    return ["sweep", _yaml(tmp / "s.yaml", spec)]


def changed_spec_dry(tmp: Path, cache: Path) -> list[str]:
    return [*changed_spec(tmp, cache), "--dry-run"]


def shrunk_spec(tmp: Path, cache: Path) -> list[str]:
    _recorded_run(tmp, cache)
    return ["sweep", _yaml(tmp / "s.yaml", sweep_spec(tmp, cache, strategies=["vanilla"]))]


def victim_storage(tmp: Path, cache: Path) -> list[str]:
    victim = tmp / "victim" / "bad"
    victim.mkdir(parents=True)
    (victim / "report").mkdir()
    (victim / "report" / "report.html").write_text("<p>the user's own report</p>")
    return ["sweep", _yaml(tmp / "s.yaml", sweep_spec(tmp, cache, storage=str(tmp / "victim")))]


def storage_is_file(tmp: Path, cache: Path) -> list[str]:
    (tmp / "afile").write_text("not a directory")
    return ["sweep", _yaml(tmp / "s.yaml", sweep_spec(tmp, cache, storage=str(tmp / "afile")))]


def storage_too_deep(tmp: Path, cache: Path) -> list[str]:
    """A run dir whose own path fits PATH_MAX (4096 bytes) but its trials' files do not."""
    room = 4040 - len(str(tmp)) - len("/bad")
    parts = ["d" * 200] * (room // 201) + ["e" * (room % 201 - 1)]
    deep = tmp.joinpath(*parts)
    return ["sweep", _yaml(tmp / "s.yaml", sweep_spec(tmp, cache, storage=str(deep)))]


def no_cpus(tmp: Path, cache: Path) -> list[str]:
    return ["sweep", _yaml(tmp / "s.yaml", sweep_spec(tmp, cache)), "--num-cpus", "0"]


def fifo_spec(tmp: Path, cache: Path) -> list[str]:
    os.mkfifo(tmp / "s.yaml")
    return ["sweep", str(tmp / "s.yaml")]


def empty_set_key(tmp: Path, cache: Path) -> list[str]:
    spec = _yaml(tmp / "s.yaml", sweep_spec(tmp, cache))
    return ["sweep", spec, "--dry-run", "--set", "defaults..optim=1"]


def locked_run(tmp: Path, cache: Path) -> list[str]:
    run_dir = _recorded_run(tmp, cache)
    lock = DriverLock(run_dir).acquire()  # held by "another driver" (this process, another fd)
    LOCKS.append(lock)
    return ["resume", str(run_dir)]


LOCKS: list[DriverLock] = []


def resume_missing(tmp: Path, cache: Path) -> list[str]:
    return ["resume", str(tmp / "no-such-run")]


def resume_not_a_run(tmp: Path, cache: Path) -> list[str]:
    (tmp / "plain").mkdir()
    (tmp / "plain" / "notes.txt").write_text("mine")
    return ["resume", str(tmp / "plain")]


def resume_corrupt_record(tmp: Path, cache: Path) -> list[str]:
    run_dir = _recorded_run(tmp, cache)
    path = run_dir / "sweep.json"
    path.write_text(path.read_text()[:50])
    return ["resume", str(run_dir)]


def report_missing(tmp: Path, cache: Path) -> list[str]:
    return ["report", str(tmp / "no-such-run")]


def report_no_results(tmp: Path, cache: Path) -> list[str]:
    return ["report", str(_recorded_run(tmp, cache))]


def report_foreign_out(tmp: Path, cache: Path) -> list[str]:
    run_dir = _recorded_run(tmp, cache)
    (tmp / "mine").mkdir()
    (tmp / "mine" / "index.html").write_text("<p>mine</p>")
    return ["report", str(run_dir), "--out", str(tmp / "mine")]


def report_bad_parquet(tmp: Path, cache: Path) -> list[str]:
    (tmp / "copied").mkdir()
    (tmp / "copied" / "results.parquet").write_bytes(b"PAR1 this is not parquet")
    return ["report", str(tmp / "copied")]


def report_intro_missing(tmp: Path, cache: Path) -> list[str]:
    return ["report", str(_recorded_run(tmp, cache)), "--intro", str(tmp / "intro.md")]


def train_out_is_file(tmp: Path, cache: Path) -> list[str]:
    (tmp / "out").write_text("a file")
    return ["train", _yaml(tmp / "c.yaml", train_config(cache)), "--out", str(tmp / "out")]


def train_out_foreign(tmp: Path, cache: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "thesis.tex").write_text("mine")
    return ["train", _yaml(tmp / "c.yaml", train_config(cache)), "--out", str(tmp / "out")]


def train_set_malformed(tmp: Path, cache: Path) -> list[str]:
    config = _yaml(tmp / "c.yaml", train_config(cache))
    return ["train", config, "--out", str(tmp / "out"), "--set", "optim.lr"]


def train_missing_config(tmp: Path, cache: Path) -> list[str]:
    return ["train", str(tmp / "nope.yaml"), "--out", str(tmp / "out")]


def data_dir_not_dir(tmp: Path, cache: Path) -> list[str]:
    spec = _yaml(tmp / "s.yaml", sweep_spec(tmp, cache))
    return ["sweep", spec, "--data-dir", str(tmp / "no-data-here")]


def latin1(tmp: Path) -> dict:
    rows = [*GOOD_ROWS[:3], ("un film tr\xe8s caf\xe9", "1"), *GOOD_ROWS[3:]]
    return {**files_data(tmp), "files": {"train": str(write_csv(tmp / "d" / "train.csv", rows,
            "latin-1")), "dev": str(write_csv(tmp / "d" / "dev.csv", GOOD_ROWS[:10]))}}  # fmt: skip


def huge_text(tmp: Path) -> dict:
    return files_data(tmp, train_rows=[*GOOD_ROWS[:3], ("x" * 200_001, "1"), *GOOD_ROWS[3:]])


def one_class(tmp: Path) -> dict:
    return files_data(tmp, train_rows=[(f"sentence {i}", "1") for i in range(20)])


def empty_text(tmp: Path) -> dict:
    return files_data(tmp, train_rows=[*GOOD_ROWS[:5], ("  ", "0"), *GOOD_ROWS[5:]])


def unseen_label(tmp: Path) -> dict:
    return files_data(tmp, dev_rows=[*GOOD_ROWS[:4], ("a new kind of row", "7")])


def missing_file(tmp: Path) -> dict:
    data = files_data(tmp)
    data["files"]["train"] = str(tmp / "data" / "tain.csv")
    return data


def dir_as_file(tmp: Path) -> dict:
    data = files_data(tmp)
    data["files"]["train"] = str(tmp / "data")
    return data


def too_many_held_out(tmp: Path) -> dict:
    return {**files_data(tmp), "train_size": 10, "test_from_train": 10**6}


SCORED_ROWS = [(f"a fine sentence number {i}", f"{(i % 9) * 0.55:.2f}") for i in range(40)]


def score_not_a_number(tmp: Path) -> dict:
    rows = [*SCORED_ROWS[:7], ("a sentence scored in words", "high"), *SCORED_ROWS[7:]]
    return files_data(tmp, train_rows=rows, task="regression")


def scores_without_a_task(tmp: Path) -> dict:
    return files_data(tmp, train_rows=SCORED_ROWS, dev_rows=SCORED_ROWS[:10])


def _tagged(path: Path, sentences: list[tuple[list, list]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"tokens": w, "tags": t}) + "\n" for w, t in sentences))
    return str(path)


TAGGED = [(["Ana", "met", "Tom", "in", "Oslo"], ["B-PER", "O", "B-PER", "O", "B-LOC"])] * 30


def tagged_data(tmp: Path, train=None, dev=None) -> dict:
    files = {"train": _tagged(tmp / "data" / "train.jsonl", train or TAGGED),
             "dev": _tagged(tmp / "data" / "dev.jsonl", dev or TAGGED[:5])}  # fmt: skip
    return {"files": files, "text": "tokens", "label": "tags", "task": "token_classification"}


def tags_short_of_words(tmp: Path) -> dict:
    return tagged_data(tmp, train=[*TAGGED[:4], (["Ana", "left"], ["B-PER"]), *TAGGED[4:]])


def empty_sentence(tmp: Path) -> dict:
    return tagged_data(tmp, train=[*TAGGED[:2], ([], []), *TAGGED[2:]])


def pair_of_tagged_sentences(tmp: Path) -> dict:
    return {**tagged_data(tmp), "text_pair": "tokens"}


def unseen_tag(tmp: Path) -> dict:
    return tagged_data(tmp, dev=[*TAGGED[:3], (["Acme", "grew"], ["B-ORG", "O"])])


def conll_short_line(tmp: Path) -> dict:
    path = tmp / "data" / "train.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Ana NNP B-PER\nmet VBD O\n\nTom B-PER\n")
    files = {"train": str(path), "dev": str(path), "format": "conll",
             "columns": ["token", "pos", "tag"]}  # fmt: skip
    return {"files": files, "text": "token", "label": "tag"}


def curve_beyond_the_file(tmp: Path) -> dict:
    return {**files_data(tmp), "train_size": [10, 10**6]}


def wrong_column(tmp: Path) -> dict:
    return {**files_data(tmp), "text": "text"}


DUPLICATE_KEYS = """model: tiny-bert
data: {name: synthetic-sentiment}
optim:
  lr: 1.0e-3
optim:
  epochs: 1
cache_dir: CACHE
"""
BAD_YAML = "model: tiny-bert\ndata: {name: synthetic-sentiment\noptim: [\n"
SPEC_DUPLICATE = """name: dup
model: tiny-bert
datasets: [{name: synthetic-sentiment}]
strategies: [vanilla]
seeds: 2
seeds: 3
storage: TMP/runs
"""

CASES: list[Case] = [
    # train: config values
    train_case("K is 0", "'distill.k'", "Got 0", strategy="sda", distill__k=0),
    train_case("K is a word", "'distill.k'", strategy="sda", distill__k="many"),
    train_case("sdv with K all", "'distill.k'", strategy="sdv", distill__k="all"),
    train_case("negative distill λ", "'distill.lambda'", strategy="sda", distill__lambda=-1.0),
    train_case("NaN distill λ", "'distill.lambda'", strategy="sda", distill__lambda=float("nan")),
    train_case("negative noise λ", "'noise.lambda'", strategy="noisytune", noise__lambda=-0.1),
    train_case("betas above 1", "'optim.betas", optim__betas=[1.5, 0.9]),
    train_case("layer decay above 1", "'optim.layer_decay'", "Got 2", optim__layer_decay=2),
    train_case("EMA teacher for SDV", "'distill.average'", strategy="sdv", distill__average="ema"),
    train_case(
        "EMA teacher with a K", "'distill.k'", strategy="sda", distill__average="ema", distill__k=3
    ),
    train_case(
        "EMA decay 1",
        "'distill.ema_decay'",
        strategy="sda",
        distill__average="ema",
        distill__ema_decay=1.0,
    ),
    train_case("reinit 0 layers", "'reinit.layers'", "Got 0", strategy="reinit", reinit__layers=0),
    train_case("negative RecAdam γ", "'recadam.gamma'", strategy="recadam", recadam__gamma=-1.0),
    train_case("negative RecAdam k", "'recadam.k'", strategy="recadam", recadam__k=-0.5),
    train_case(
        "unknown RecAdam anneal",
        "'recadam.anneal'",
        "sigmoid",
        strategy="recadam",
        recadam__anneal="cosine",
    ),
    train_case(
        "RecAdam γ beyond 1/lr",
        "'recadam.gamma'",
        "1 / optim.lr",
        strategy="recadam",
        recadam__gamma=1e6,
    ),
    train_case("Mixout p of 1", "'mixout.p'", "less than 1", strategy="mixout", mixout__p=1.0),
    train_case("negative Mixout p", "'mixout.p'", strategy="mixout", mixout__p=-0.1),
    train_case("Mixout p a boolean", "'mixout.p'", "boolean", strategy="mixout", mixout__p=True),
    train_case("llrd without decay", "'optim.layer_decay'", "below 1", strategy="llrd"),
    train_case("layer decay on vanilla", "'optim.layer_decay'", "'llrd'", optim__layer_decay=0.9),
    train_case(
        "held-out test without a subset",
        "'data.test_from_train'",
        "needs 'train_size'",
        data__train_size=None,
        data__test_from_train=10,
    ),
    train_case(
        "reinit more layers than the model",
        "'reinit.layers'",
        "Got 5",
        strategy="reinit+sda",
        reinit__layers=5,
    ),
    train_case("modifiers out of order", "'strategy'", strategy="reinit+noisytune"),
    train_case("an SE window twice", "'eval.self_ensembles'", eval__self_ensembles=[2, 2]),
    train_case("an SE window of 0", "'eval.self_ensembles[0]'", eval__self_ensembles=[0]),
    train_case("negative eps", "'optim.eps'", optim__eps=-1.0),
    train_case("bad exclude regex", "'noise.exclude", strategy="noisytune", noise__exclude=["("]),
    train_case("negative lr", "'optim.lr'", optim__lr=-1.0),
    train_case("unknown key", "'optim.lrr'", optim__lrr=1e-3),
    train_case("unknown strategy", "'strategy'", strategy="sdx"),
    train_case("threads 0", "'threads'", threads=0),
    train_case("max_length beyond positions", "'data.max_length'", "512", data__max_length=1024),
    train_case("unknown offline model", "'model'", model="no-such-org/no-such-model"),
    # train: data
    train_data_case("missing data file", "tain.csv", missing_file, "data.files.train"),
    train_data_case("directory as data file", "data.files.train", dir_as_file, "directory"),
    train_data_case("missing column", "'text'", wrong_column, "sentence"),
    train_data_case("empty text", "row 5", empty_text, "'sentence'"),
    train_data_case("one class", "at least 2", one_class),
    train_data_case("a 200,000-character text", "row 3", huge_text, "at most 100,000"),
    train_data_case("unseen dev label", "'7'", unseen_label, "dev.csv"),
    train_data_case("latin-1 file", "train.csv", latin1, "encoding"),
    # train: files and arguments
    raw_file_case("duplicate YAML key", "train", DUPLICATE_KEYS, "'optim'", "line 5"),
    raw_file_case("YAML syntax error", "train", BAD_YAML, "in.yaml", "line"),
    raw_file_case("YAML not a mapping", "train", "- a\n- b\n", "in.yaml"),
    Case("config file missing", train_missing_config, "nope.yaml"),
    Case("--out is a file", train_out_is_file, "--out", ["file"]),
    Case("--out is someone else's directory", train_out_foreign, "--out", ["thesis.tex"]),
    Case("--set without =", train_set_malformed, "--set"),
    # sweep and --dry-run: the spec
    *both("no strategies", "'strategies'", strategies=[]),
    *both("seeds 0", "'seeds'", seeds=0),
    *both("negative λ grid", "'grid.distill.lambda", grid={"distill.lambda": [-1.0]}),
    *both("K grid 0", "'grid.distill.k", grid={"distill.k": [0]}),
    *both(
        "SDV K grid all",
        "'grid.distill.k.sdv'",
        strategies=["vanilla", "sdv"],
        grid={"distill.k": {"sdv": ["all"]}},
    ),
    *both("race start 1", "'race.start'", "Got 1", seeds=None, race={"start": 1}),
    *both("race with a seed count", "'seeds'", race={"start": 3, "max": 5}),
    *both(
        "race without vanilla",
        "'strategies'",
        seeds=None,
        strategies=["sda"],
        race={"start": 3, "max": 5},
    ),
    *both("unknown tracker", "'callbacks.mlfow'", callbacks={"mlfow": {}}),
    *both("wandb mode", "'callbacks.wandb.mode'", callbacks={"wandb": {"mode": "sometimes"}}),
    *both("NaN decision margin", "'decision.margin'", decision={"margin": float("nan")}),
    *both("decision alpha 0", "'decision.alpha'", "Got 0", decision={"alpha": 0}),
    *both("boolean margin", "'decision.margin'", "not a boolean", decision={"margin": True}),
    *both("negative min_gain", "'decision.min_gain'", "Got -0.01", decision={"min_gain": -0.01}),
    *both("boolean min_gain", "'decision.min_gain'", "not a boolean", decision={"min_gain": True}),
    *both(
        "failure rate 1", "'decision.max_failure_rate'", "Got 1", decision={"max_failure_rate": 1}
    ),
    # booleans are never numbers, and counts have bounds checked before expansion
    *both(
        "boolean lr in defaults", "'optim.lr'", "not a boolean", defaults={"optim": {"lr": True}}
    ),
    *both("boolean cpu", "'resources.cpu'", "not a boolean", resources={"cpu": True}),
    *both("infinite cpu", "'resources.cpu'", "finite", resources={"cpu": float("inf")}),
    *both("boolean max_concurrent", "'max_concurrent'", "not a boolean", max_concurrent=True),
    *both("boolean max_failures", "'max_failures'", "not a boolean", max_failures=True),
    *both("a boolean seed", "'seeds[0]'", "not a boolean", seeds=[True, 1]),
    *both("10^11 seeds", "'seeds'", "from 1 to 1000", seeds=10**11),
    *both(
        "10^9 Optuna trials",
        "'search.n_trials'",
        "10000",
        search={"param": "distill.lambda", "low": 0.1, "high": 1.0, "n_trials": 10**9},
    ),
    *both("boolean fresh seeds", "'confirm.seeds'", "not a boolean", confirm={"seeds": True}),
    # what the real run would crash on, refused by the dry run too
    *both("a 300-character name", "'name'", "at most 100", name="n" * 300),
    *both("storage under /proc", "/proc/bad", storage="/proc"),
    *both(
        "a dataset id with a space",
        "'datasets[0].id'",
        "names the trials' directories",
        datasets=[{"id": "a b", "name": "synthetic-sentiment", "train_size": 64}],
    ),
    *both(
        "a 300-character dataset id",
        "'datasets[0].id'",
        "at most 100",
        datasets=[{"id": "d" * 300, "name": "synthetic-sentiment", "train_size": 64}],
    ),
    Case(
        "sweep: storage too deep for a trial's files",
        storage_too_deep,
        "'storage'",
        ["trial directory", "a path of"],
    ),
    Case("sweep: --num-cpus 0", no_cpus, "--num-cpus", ["at least 1"]),
    Case("sweep: a FIFO as the spec", fifo_spec, "s.yaml", ["not a regular file"]),
    Case("sweep: --set with an empty key", empty_set_key, "--set", ["defaults..optim"]),
    *both(
        "two ids for the same data",
        "datasets[1]",
        "'a' and 'b'",
        datasets=[{"id": x, "name": "synthetic-sentiment", "train_size": 64} for x in "ab"],
    ),
    *both(
        "dataset max_length too small",
        "'datasets[0].max_length'",
        datasets=[{"name": "synthetic-sentiment", "max_length": 4}],
    ),
    *both(
        "dataset max_length beyond positions",
        "'data.max_length'",
        datasets=[{"name": "synthetic-sentiment", "max_length": 2048}],
    ),
    *both("defaults lr negative", "'optim.lr'", defaults={"optim": {"lr": -1.0}}),
    *both("unknown offline model", "'model'", model="no-such-org/no-such-model"),
    *both(
        "search range upside down",
        "'search.high'",
        search={"param": "distill.lambda", "low": 2.0, "high": 1.0},
    ),
    *both(
        "Optuna storage unreachable",
        "'search.storage'",
        search={
            "param": "distill.lambda",
            "low": 0.1,
            "high": 1.0,
            "storage": "sqlite:////no-such-dir-here/o.db",
        },
    ),
    *both(
        "grid over an unknown setting",
        "'grid.optim.lrr'",
        "did you mean 'lr'",
        grid={"optim.lrr": [1e-5]},
    ),
    *both("grid lr negative", "'grid.optim.lr[1]'", "Got -1", grid={"optim.lr": [2e-5, -1]}),
    *both("grid over the seed", "'grid.seed'", grid={"seed": [1, 2]}),
    *both(
        "grid over a setting no strategy reads",
        "'grid.reinit.layers'",
        grid={"reinit.layers": [1, 2]},
    ),
    *both(
        "search over a non-numeric setting",
        "'search.param'",
        search={"param": "optim.group_by_length", "low": 0.0, "high": 1.0},
    ),
    *both(
        "search lr from 0", "'search.low'", search={"param": "optim.lr", "low": 0.0, "high": 1e-4}
    ),
    *both(
        "reinit more layers than the model",
        "'reinit.layers'",
        "at most the 2",
        strategies=["vanilla", "reinit"],
        defaults={"reinit": {"layers": 3}, "optim": {"max_steps": 2}},
    ),
    *both("more CPUs than the machine", "'resources.cpu'", resources={"cpu": 4096}),
    *both(
        "per-strategy setting for a strategy not in the spec",
        "'grid.distill.average.sdv'",
        grid={"distill.average": {"sdv": ["window"]}},
    ),
    *both(
        "layer decay in defaults with vanilla",
        "'optim.layer_decay'",
        "'llrd'",
        defaults={"optim": {"max_steps": 2, "layer_decay": 0.9}},
    ),
    *both(
        "NaN in the noise grid",
        "'grid.noise.lambda",
        strategies=["noisytune"],
        grid={"noise.lambda": [float("nan")]},
    ),
    # sweep and --dry-run: the data
    *dataset_case("missing data file", "tain.csv", missing_file),
    *dataset_case("one-class dataset", "at least 2", one_class),
    *dataset_case("directory as data file", "directory", dir_as_file),
    *dataset_case("latin-1 data", "encoding", latin1),
    *dataset_case(
        "regression score not a number", "train.csv", score_not_a_number, "data row 7", "'high'"
    ),
    *dataset_case(
        "fractional scores read as classes", "'data.task'", scores_without_a_task, "regression"
    ),
    *dataset_case(
        "tags short of words",
        "train.jsonl",
        tags_short_of_words,
        "sentence 4",
        "2 words and 1 tags",
    ),
    *dataset_case("empty sentence", "train.jsonl", empty_sentence, "sentence 2"),
    *dataset_case("dev tag unseen in train", "dev.jsonl", unseen_tag, "'B-ORG'", "sentence 3"),
    *dataset_case(
        "a sentence pair to tag",
        "'datasets[0].text_pair'",
        pair_of_tagged_sentences,
        "one sentence",
    ),
    *dataset_case(
        "CoNLL line short of fields", "train.txt", conll_short_line, "line 4", "sentence 1"
    ),
    *both(
        "metric of another task",
        "'datasets[0].metric'",
        "regression",
        datasets=[{"name": "synthetic-similarity", "metric": "accuracy", "max_length": 32}],
    ),
    *dataset_case(
        "learning-curve size beyond the train file",
        "'data.train_size' parameter must be at most the number of train rows",
        curve_beyond_the_file,
        "@1000000",
    ),
    *both(
        "a learning curve named by hand",
        "'datasets[0].curve'",
        "list of sizes",
        datasets=[{"name": "synthetic-sentiment", "curve": "mine", "max_length": 32}],
    ),
    *both(
        "learning-curve size twice",
        "'datasets[0].train_size'",
        "each size once",
        datasets=[{"name": "synthetic-sentiment", "train_size": [32, 32], "max_length": 32}],
    ),
    *dataset_case(
        "held-out test rows beyond the train file",
        "'data.test_from_train' parameter must be at most the 30 train rows",
        too_many_held_out,
    ),
    # sweep: files and run directories
    raw_file_case("duplicate key in spec", "sweep", SPEC_DUPLICATE, "'seeds'", "line 6"),
    Case("storage is a file", storage_is_file, "afile"),
    Case("storage holds someone else's directory", victim_storage, "victim", ["marker"]),
    Case("changed spec on a recorded run", changed_spec, "optim.lr", ["--restart"]),
    Case("changed spec on a recorded run (dry run)", changed_spec_dry, "optim.lr", ["--restart"]),
    Case("shrunk spec on a recorded run", shrunk_spec, "no longer in the spec"),
    Case("--data-dir not a directory", data_dir_not_dir, "--data-dir"),
    # resume
    Case("resume a missing directory", resume_missing, "no-such-run"),
    Case("resume a directory that is not a run", resume_not_a_run, "sweep.json"),
    Case("resume with a corrupt sweep.json", resume_corrupt_record, "sweep.json", ["corrupt"]),
    Case("resume a run another driver holds", locked_run, "PID", [str(os.getpid())]),
    # report
    Case("report a missing directory", report_missing, "no-such-run"),
    Case("report a run without results", report_no_results, "results.parquet"),
    Case("report into someone else's directory", report_foreign_out, "--out", ["index.html"]),
    Case("report a corrupt parquet", report_bad_parquet, "results.parquet", ["parquet"]),
    Case("report with a missing intro", report_intro_missing, "--intro", ["intro.md"]),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content hash, and every directory."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        state[rel] = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


@pytest.fixture(autouse=True)
def _release_locks():
    yield
    while LOCKS:
        LOCKS.pop().release()


def test_the_table_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, tmp_path, cache_dir, capsys):
    import ray

    argv = case.make(tmp_path, cache_dir)
    before = snapshot(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, f"exit {code}; stderr: {captured.err[-2000:]}; stdout: {captured.out[-500:]}"
    assert "Traceback" not in captured.err + captured.out
    assert len(err.splitlines()) == 1, f"not one line:\n{err}"
    assert err.startswith(f"steadytune {argv[0]}: error: "), err
    for needle in (case.names, *case.extra):
        assert needle in err, f"{needle!r} not in: {err}"
    assert not ray.is_initialized(), "Ray was started"
    assert not list(tmp_path.rglob("ray")), "a Ray temp dir was made"
    assert snapshot(tmp_path) == before, "files on disk changed"


SUBPROCESS_CASES = [
    c
    for c in CASES
    if c.name
    in (
        "train: K is 0",
        "sweep: missing data file (dry run)",
        "changed spec on a recorded run",
        "report a missing directory",
    )
]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.name for c in SUBPROCESS_CASES])
def test_the_installed_cli_behaves_the_same(case, tmp_path, cache_dir):
    argv = case.make(tmp_path, cache_dir)
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps.cli.main", *argv],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert case.names in proc.stderr
    assert snapshot(tmp_path) == before


def test_a_refused_changed_spec_names_old_and_new(tmp_path, cache_dir, capsys):
    assert main(changed_spec(tmp_path, cache_dir)) == 2
    err = capsys.readouterr().err
    assert "optim.lr: 2e-05 -> 0.0001" in err, err
    record = json.loads((tmp_path / "runs" / "bad" / "sweep.json").read_text())
    assert record["spec"]["defaults"]["optim"].get("lr") is None  # the record is the old one
