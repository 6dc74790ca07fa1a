"""``medssl study``, ``report`` and ``demo``: run, follow, collect and report studies."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from medssl.experiments.demo import run_demo

    summary = run_demo(args.out, patients=args.patients, seed=args.seed)
    for line in summary:
        print(line)
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    if args.study_cmd == "run":
        from medssl.experiments.drive import run_study

        pipelines = [p for p in (args.pipelines or "").split(",") if p] or None
        status = run_study(
            args.study,
            args.out,
            args.launcher,
            args.workers,
            pipelines=pipelines,
            keep_checkpoints=args.keep_checkpoints,
            allow_collapsed=args.allow_collapsed,
        )
    elif args.study_cmd == "status":
        from medssl.experiments.status import study_status

        status = study_status(args.dir)
    else:
        from medssl.artifacts.study import StudyDir
        from medssl.experiments.collect import collect

        results, curves = collect(args.dir)
        study = StudyDir(args.dir)
        print(
            f"{len(results)} runs, {len(curves)} curve points -> "
            f"{study.table('results')} (and .csv), {study.table('curves').name}"
        )
        return 0
    for line in status.lines():
        print(line)
    return 0 if status.failed == 0 and not status.blocked else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from medssl.experiments.report import study_report

    paths = study_report(args.dir, synthetic=args.synthetic)
    print(f"report: {paths[0]}" + (f" and {paths[1]}" if len(paths) > 1 else ""))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``study run|status|collect`` and ``report``."""
    st = sub.add_parser("study", help="run, follow and collect a pretraining study")
    ssub = st.add_subparsers(dest="study_cmd", required=True)
    p = ssub.add_parser("run", help="run (or resume) every job of a study file")
    p.add_argument("study", type=Path, help="study YAML")
    p.add_argument("--out", type=Path, required=True, help="study folder")
    p.add_argument("--launcher", choices=["local", "slurm"], default="local")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep finished jobs' resume checkpoints (deleted by default once a job is done; "
        "weights and results are always kept)",
    )
    p.add_argument(
        "--allow-collapsed",
        action="store_true",
        help="also fine-tune from a pretraining whose collapse check fired (by default "
        "those fine-tunes wait and `study status` names them)",
    )
    p.add_argument(
        "--pipelines",
        metavar="NAME[,NAME]",
        help="run only these pipelines' jobs (and the pretrainings they need); the rest "
        "stays pending for a later run",
    )
    p.set_defaults(func=_cmd_study)
    for name, text in (
        ("status", "done / running / failed / remaining and ETA"),
        ("collect", "results table (Parquet + CSV)"),
    ):
        p = ssub.add_parser(name, help=text)
        p.add_argument("dir", type=Path)
        p.set_defaults(func=_cmd_study)
    p = sub.add_parser("report", help="Markdown + HTML report with figures of a study")
    p.add_argument("dir", type=Path)
    p.add_argument("--synthetic", action="store_true", help="label the report as synthetic")
    p.set_defaults(func=_cmd_report)


def add_demo_command(sub: argparse._SubParsersAction) -> None:
    """``demo``: the built-in synthetic study (listed last)."""
    p = sub.add_parser("demo", help="the built-in synthetic demo")
    p.add_argument("--out", type=Path, default=Path("demo"))
    p.add_argument("--patients", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
