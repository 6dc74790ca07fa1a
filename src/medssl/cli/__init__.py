"""The ``medssl`` command: a thin layer of parsing, progress and messages over the library.

Each submodule adds a group of commands (``add_commands``) and runs them over the typed
Python functions: :mod:`~medssl.cli.data`, :mod:`~medssl.cli.train`,
:mod:`~medssl.cli.evaluate`, :mod:`~medssl.cli.study`, :mod:`~medssl.cli.bench`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence

from medssl import __version__
from medssl.cli import bench, data, evaluate, study, train
from medssl.errors import DataErrors, MedsslError, Preempted
from medssl.training.reproducible import apply_blas_settings

# exit code of a run stopped by SIGTERM/SIGUSR1 after saving its checkpoint
PREEMPTED_EXIT = 3

DESCRIPTION = (
    "Self-supervised pretraining and label-efficient fine-tuning for medical image segmentation."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medssl", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"medssl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for commands in (data, train, evaluate, study, bench):
        commands.add_commands(sub)
    study.add_demo_command(sub)
    return parser


def _quiet_lightning() -> None:
    """Keep Lightning's start-up chatter out of the output (``-v`` shows it).

    Lightning sets its loggers' levels when imported, so it is imported first.
    """
    import lightning.pytorch  # noqa: F401

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medssl`` console script; returns the exit code."""
    apply_blas_settings()  # before any computation: MKL reads them once
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose and args.cmd in ("pretrain", "finetune", "study", "demo", "bench"):
        _quiet_lightning()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except Preempted as stop:
        print(f"pre-empted: {stop}", file=sys.stderr)
        return PREEMPTED_EXIT
    except DataErrors as errs:
        for err in errs.errors:
            print(f"error: {err}", file=sys.stderr)
        return 2
    except MedsslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
