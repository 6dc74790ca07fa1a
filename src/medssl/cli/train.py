"""``medssl pretrain`` and ``medssl finetune``: a run config from the preset, the
explicit options and ``--set`` overrides, then the run."""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="paper",
        help="paper (the study's protocol, docs/paper-protocol.md) | medssl | cpu-small",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seed of every random choice of the run (initialisation, sampling, "
        "augmentation and, for fine-tuning, the label budget unless --budget-seed is given)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="config override, e.g. --set batch_size=64 --set runtime.precision=32-true",
    )
    p.add_argument(
        "--split",
        type=Path,
        help="split file in place of the cache's split: a medssl split file "
        "({train, val, test} patient ids) or nnU-Net splits_final.json (with --split-fold)",
    )
    p.add_argument("--split-fold", type=int, help="fold of an nnU-Net split file (default 0)")
    p.add_argument("--devices", type=int, help="devices per node (DDP when > 1)")
    p.add_argument("--num-nodes", type=int, help="nodes for multi-node DDP")
    p.add_argument("--resume", action="store_true", help="continue a killed run")


def _overrides(args: argparse.Namespace, options: dict[str, str], *, budget: bool) -> list[str]:
    """The explicit options (``config key: argparse attribute``) as overrides, then --set;
    with ``budget``, --seed also seeds the label budget (unless --budget-seed is given)."""
    explicit = {"data": str(args.data), "out": str(args.out), "init": args.init}
    common = {
        "init_layout": "init_layout",
        "runtime.devices": "devices",
        "runtime.num_nodes": "num_nodes",
        "split": "split",
        "split_fold": "split_fold",
    }
    if args.seed is not None:
        explicit["runtime.seed"] = str(args.seed)
        if budget:
            explicit["budget_seed"] = str(args.seed)
    for key, attr in {**options, **common}.items():
        if getattr(args, attr) is not None:
            explicit[key] = str(getattr(args, attr))
    if args.trust_pickle:
        explicit["trust_pickle"] = "true"
    return [f"{k}={v}" for k, v in explicit.items()] + list(args.set or [])


def pretrain_config(args: argparse.Namespace):
    """The method's preset, then the explicit options, then --set."""
    from medssl.configs import pretrain_preset

    options = {"epochs": "epochs", "arch": "arch"}
    return pretrain_preset(args.preset, args.method, _overrides(args, options, budget=False))


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from medssl.artifacts.rundir import RunDir
    from medssl.training.pretrain import pretrain

    result = pretrain(pretrain_config(args), resume=args.resume)
    print(f"pretraining finished: {result.steps} steps, final loss {result.final_loss}")
    last = RunDir(result.run_dir).encoder_last
    named = f" ({last.name})" if last.exists() else ""
    print(f"encoders: {len(result.encoders)} files in {result.run_dir}{named}")
    return 0


def finetune_config(args: argparse.Namespace):
    """The preset, then the explicit options, then --set."""
    from medssl.configs import FINETUNE_PRESETS, FinetuneConfig, preset

    options = {
        "steps": "steps",
        "arch": "arch",
        "budget_seed": "budget_seed",
        "labelled_slices": "labelled_slices",
        "labelled_patients": "labelled_patients",
        "init_decoder": "init_decoder",
        "labelled": "labelled",
    }
    overrides = _overrides(args, options, budget=True)
    return preset(FinetuneConfig, FINETUNE_PRESETS, args.preset, overrides)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from medssl.analysis.curves import curve_auc, steps_to_fraction
    from medssl.artifacts.rundir import RunDir
    from medssl.training.finetune import finetune

    r = finetune(finetune_config(args), resume=args.resume)
    run = RunDir(r.run_dir)
    curve = run.read_curve()  # the summaries are derived from the curve, as a study does
    steps, iou = curve.get("step"), curve.get("slice_iou/mean")
    to_95 = steps_to_fraction(steps, iou, 0.95) if steps is not None else float("nan")
    auc = curve_auc(steps, iou) if steps is not None else float("nan")
    print(
        f"fine-tuning finished: {r.steps} steps on {r.labelled_slices} labelled slices; "
        f"val mean IoU best {r.best_val_iou:.4f}, final {r.final_val_iou:.4f}, "
        f"steps to 95% {to_95:g}, curve AUC {auc:.4f}"
    )
    files = (run.curve_file, run.best_weights, run.result_file)
    written = [f.name for f in files if f.exists()]
    print(f"run directory: {r.run_dir} ({', '.join(written) or 'no results written'})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``pretrain`` and ``finetune``."""
    from medssl.configs import METHODS

    listing = "; ".join(f"{name} ({info.kind})" for name, info in METHODS.items())
    p = sub.add_parser(
        "pretrain",
        help="self-supervised pretraining of an encoder (BYOL, SimCLR, MoCo v2, ...)",
        description=f"Self-supervised pretraining. Methods: {listing}. See docs/methods.md.",
    )
    p.add_argument("--data", type=Path, required=True, help="cache or source folder")
    p.add_argument(
        "--method",
        default="byol",
        choices=list(METHODS),
        help=f"self-supervised method with its published recipe: {listing} (default byol)",
    )
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--init", default="random", help="random | imagenet | weights file")
    p.add_argument("--init-layout", help="force the weight file layout")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow unpickling a trusted legacy weights file (runs its code!)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--arch", help="timm encoder, e.g. resnet50")
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a U-Net with a label budget")
    p.add_argument("--data", type=Path, required=True, help="cache or source folder")
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--init", default="random", help="random | imagenet | weights/encoder file")
    p.add_argument(
        "--init-decoder",
        help="a pretraining run's decoder_*.safetensors (e.g. from --method mim) for the "
        "U-Net decoder (default: random decoder)",
    )
    p.add_argument("--init-layout")
    p.add_argument("--trust-pickle", action="store_true")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--labelled-slices", type=int, help="slice budget (default: all)")
    budget.add_argument("--labelled-patients", type=int, help="patient budget (ED+ES)")
    budget.add_argument(
        "--labelled",
        type=Path,
        help="explicit labelled set: JSON of patient ids or [patient, frame, slice] triples, "
        "all in the train split (in place of a drawn budget)",
    )
    p.add_argument(
        "--budget-seed",
        type=int,
        help="seed of the label budget and its sampling/augmentation (default: --seed)",
    )
    p.add_argument("--steps", type=int, help="optimisation steps (same for every budget)")
    p.add_argument("--arch")
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_finetune)
