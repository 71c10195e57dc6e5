"""``steadytune ensemble RUN_DIR``: VOTE and AVG seed ensembles of a sweep's configurations."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ensemble",
        help="build VOTE/AVG seed ensembles into RUN_DIR/ensembles.parquet",
        description="For every configuration of a run, ensemble its seeds: VOTE sums the "
        "members' softmax probabilities from their logits.npz; AVG averages their "
        "model.safetensors weights (trials run with save_model: true) and evaluates once. "
        "Results go to RUN_DIR/ensembles.parquet; `steadytune report` shows them.",
    )
    p.add_argument("run_dir", help="the sweep's run directory (<storage>/<name>)")
    p.add_argument(
        "--method",
        dest="methods",
        action="append",
        choices=["vote", "avg"],
        default=None,
        help="vote and/or avg (repeatable; default both, AVG where weights were saved)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="members per ensemble: a configuration's sorted seeds are cut into disjoint "
        "groups of this size (default: one ensemble of all its seeds)",
    )
    p.add_argument("--dataset", dest="datasets", action="append", default=None, help="only these")
    p.add_argument(
        "--strategy", dest="strategies", action="append", default=None, help="only these"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from analysis import AnalysisError, config_label, run_ensembles

    if args.size is not None and args.size < 2:
        raise AnalysisError(f"--size must be at least 2 (members per ensemble), got {args.size}")
    table, notes = run_ensembles(
        args.run_dir,
        methods=args.methods or ("vote", "avg"),
        size=args.size,
        datasets=args.datasets,
        strategies=args.strategies,
    )
    for note in notes:
        print(f"steadytune ensemble: {note}", file=sys.stderr)
    if table.empty:
        print("steadytune ensemble: no ensemble could be built", file=sys.stderr)
        return 1
    out = Table(title=f"seed ensembles in {args.run_dir}/ensembles.parquet")
    metrics = [c for c in table.columns if c.startswith("dev_") or c == "test_accuracy"]
    out.add_column("configuration", no_wrap=True)
    for col in ("method", "model", "seeds", *metrics):
        out.add_column(col.replace("_", " ", 1), justify="right" if col in metrics else "left")
    for r in table.to_dict("records"):
        out.add_row(
            config_label(r, with_dataset=True),
            r["method"].upper(),
            r["model"],
            r["seeds"],
            *("—" if r.get(m) is None or r.get(m) != r.get(m) else f"{r[m]:.4f}" for m in metrics),
        )
    Console(width=max(Console().width, 130)).print(out)
    return 0
