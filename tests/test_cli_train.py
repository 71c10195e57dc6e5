"""`steadytune train` as a user runs it: overrides, outputs, clear errors, fast --help."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from sweeps.cli.main import main


def test_train_with_overrides_writes_result(tiny_config, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    out = tmp_path / "out"
    code = main(
        [
            "train",
            str(path),
            "--set",
            "strategy=sdv",
            "--set",
            "distill.k=2",
            "--set",
            "optim.max_steps=6",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["strategy"] == "sdv"
    assert result["config"]["distill"]["k"] == 2
    assert result["steps"] == 6
    assert json.loads(capsys.readouterr().out)["metrics"] == result["metrics"]


def test_bad_config_exits_2_with_the_key(tiny_config, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    code = main(["train", str(path), "--set", "distill.k=0", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "distill.k" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_help_does_not_import_torch():
    code = (
        "import sys; from sweeps.cli.main import build_parser; build_parser(); "
        "print('torch' in sys.modules, 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
