"""``steadytune train CONFIG.yaml --out DIR``: one fine-tuning run, resumable."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune one model with one strategy and seed",
        description="Fine-tune one model. Running the same command again on the same --out "
        "resumes from its last checkpoint.",
    )
    parser.add_argument("config", help="trial config YAML (see examples/train-tiny.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.SUB=VALUE",
        help="override a config value (repeatable), e.g. --set strategy=sda --set distill.k=all",
    )
    parser.add_argument("--out", required=True, help="output directory (result.json, logits)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeps.preflight import check_data, check_models
    from sweeps.rundir import check_owned, check_writable, claim
    from trainer import load_config, train
    from trainer.layout import TRAIN_MARKER

    config = load_config(args.config, args.overrides)
    # refuse what the run would refuse before --out is created or written
    check_writable(args.out, "--out")
    check_owned(args.out, TRAIN_MARKER, "--out")
    check_data([(config.data.source_label, config)])
    check_models([(config.data.source_label, config)])
    claim(args.out, TRAIN_MARKER, "--out")
    result = train(config, args.out, progress=not args.no_progress)
    summary = {"out": args.out, "metrics": result["metrics"], "runtime_s": result["runtime_s"]}
    print(json.dumps(summary, indent=2))
    return 0
