"""The ``medssl`` command: a thin layer of parsing, progress and messages over the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medssl import __version__
from medssl.errors import DataErrors, MedsslError, Preempted
from medssl.training.reproducible import apply_blas_settings

if TYPE_CHECKING:
    from medssl.training.bench import BenchConfig

# exit code of a run stopped by SIGTERM/SIGUSR1 after saving its checkpoint
PREEMPTED_EXIT = 3

log = logging.getLogger("medssl")

FORMATS = ["acdc", "h5", "nnunet", "image2d", "nifti-folder", "dicom"]


def _cmd_phantom(args: argparse.Namespace) -> int:
    from medssl.data.phantom import generate_phantom

    truths = generate_phantom(args.out, args.patients, args.seed, progress=True)
    print(f"wrote {len(truths)} synthetic patients to {args.out} (ACDC layout)")
    return 0


def _print_report(report) -> None:
    width = max(len(k) for k, _ in report.summary_rows())
    for key, value in report.summary_rows():
        print(f"{key:<{width}}  {value}")
    for err in report.problems:
        print(f"PROBLEM {err}")


def _cmd_check(args: argparse.Namespace) -> int:
    from medssl.data.validate import check_source

    report = check_source(args.source, args.format, progress=True)
    _print_report(report)
    return 0 if report.ok else 1


def _cmd_prepare(args: argparse.Namespace) -> int:
    from medssl.artifacts.manifest import CachePaths
    from medssl.data.cache_read import SliceCache
    from medssl.data.cache_write import prepare_cache
    from medssl.data.preprocess import PrepareConfig
    from medssl.data.splits import split_for_cache

    cfg = PrepareConfig(
        norm=args.norm,
        dtype=args.dtype,
        target_spacing=args.target_spacing,
        include_series=not args.no_series,
    )
    result = prepare_cache(
        args.source, args.out, cfg, args.format, args.force, progress=True, split_seed=args.seed
    )
    cache = SliceCache.open(result.path)
    split = split_for_cache(cache)
    state = f"built ({result.reason})" if result.built else "already current"
    stats = cache.manifest["stats"]
    print(
        f"cache {result.path}: {state}; {len(cache)} slices, {stats['labelled_slices']} labelled,"
        f" {stats['series_frames']} cine frames"
    )
    held_out = f" / {len(split.official_test)} official-test" if split.official_test else ""
    print(
        f"split ({split.scheme}): {len(split.train)} train / {len(split.val)} val /"
        f" {len(split.test)} test{held_out} patients -> {CachePaths(result.path).split}"
    )
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from medssl.data.convert import convert_source

    result = convert_source(
        args.source,
        args.out,
        args.to,
        args.format,
        include_series=not args.no_series,
        channel=args.channel,
        force=args.force,
        progress=True,
    )
    print(
        f"wrote {result.labelled} labelled and {result.unlabelled} unlabelled volumes of"
        f" {result.patients} patients to {result.path} ({args.to} raw dataset)"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from medssl.experiments.demo import run_demo

    summary = run_demo(args.out, patients=args.patients, seed=args.seed)
    for line in summary:
        print(line)
    return 0


def _run_config(args: argparse.Namespace, cls: type, presets: dict, options: dict[str, str]):
    """Preset, then the explicit options (``config key: argparse attribute``), then --set."""
    from medssl.configs import preset

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
        if cls.__name__ == "FinetuneConfig":
            explicit["budget_seed"] = str(args.seed)
    for key, attr in {**options, **common}.items():
        if getattr(args, attr) is not None:
            explicit[key] = str(getattr(args, attr))
    if args.trust_pickle:
        explicit["trust_pickle"] = "true"
    overrides = [f"{k}={v}" for k, v in explicit.items()] + list(args.set or [])
    if cls.__name__ == "PretrainConfig":
        from medssl.configs import pretrain_preset

        return pretrain_preset(args.preset, args.method, overrides)
    return preset(cls, presets, args.preset, overrides)


def _pretrain_config(args: argparse.Namespace):
    from medssl.configs import PRETRAIN_PRESETS, PretrainConfig

    return _run_config(args, PretrainConfig, PRETRAIN_PRESETS, {"epochs": "epochs", "arch": "arch"})


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from medssl.artifacts.rundir import RunDir
    from medssl.training.pretrain import pretrain

    result = pretrain(_pretrain_config(args), resume=args.resume)
    print(f"pretraining finished: {result.steps} steps, final loss {result.final_loss}")
    last = RunDir(result.run_dir).encoder_last
    named = f" ({last.name})" if last.exists() else ""
    print(f"encoders: {len(result.encoders)} files in {result.run_dir}{named}")
    return 0


def _finetune_config(args: argparse.Namespace):
    from medssl.configs import FINETUNE_PRESETS, FinetuneConfig

    return _run_config(
        args,
        FinetuneConfig,
        FINETUNE_PRESETS,
        {
            "steps": "steps",
            "arch": "arch",
            "budget_seed": "budget_seed",
            "labelled_slices": "labelled_slices",
            "labelled_patients": "labelled_patients",
            "init_decoder": "init_decoder",
            "labelled": "labelled",
        },
    )


def _cmd_finetune(args: argparse.Namespace) -> int:
    from medssl.analysis.curves import curve_auc, steps_to_fraction
    from medssl.artifacts.rundir import RunDir
    from medssl.training.finetune import finetune

    r = finetune(_finetune_config(args), resume=args.resume)
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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from medssl.artifacts.rundir import RunDir
    from medssl.evaluation.evaluate import evaluate

    m = evaluate(args.run_dir, args.split, postprocess=not args.no_postprocess)
    iou = m["slice_iou"]
    print(f"{m['split']}: {m['volumes']} volumes, {m['slices']} slices")
    print(
        f"the study's 2D (4 classes incl. background, padded to 224): IoU {m['paper_iou']:.4f}"
        f"  Jaccard loss {m['paper_jaccard_loss']:.4f}"
    )
    print(
        "2D IoU  foreground mean IoU (medssl) "
        + "  ".join(f"{k} {v:.4f}" for k, v in iou.items())
        + f"  Jaccard loss {m['jaccard_loss']:.4f}"
    )
    print(
        "3D Dice "
        + "  ".join(f"{k} {v:.4f}" for k, v in m["dice_3d"].items())
        + f"  (distances in {m['distance_units']})"
    )
    for key, value in m.get("clinical_mean_abs_error", {}).items():
        print(f"  |error| {key}: {value:.2f}")
    if "postprocessed" in m:
        pp = m["postprocessed"]
        applied = ", ".join(pp["applied_to"]) or "none (it raised no validation Dice)"
        print(f"post-processed (largest component of: {applied}; decided on {pp['decided_on']})")
        print("  3D Dice " + "  ".join(f"{k} {v:.4f}" for k, v in pp["dice_3d"].items()))
        for phase, table in pp["by_phase"].items():
            hd = "  ".join(f"{s} {v['hd95']:.2f}" for s, v in table.items() if s != "mean_dice")
            raw = "  ".join(
                f"{s} {v['hd95']:.2f}" for s, v in m["by_phase"][phase].items() if s != "mean_dice"
            )
            print(f"  {phase} HD95 without: {raw}   with: {hd}")
    run = RunDir(args.run_dir)
    print(f"written: {run.metrics_file}, {run.per_case_file.name}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from medssl.evaluation.predict import predict

    files = predict(
        args.model,
        args.input,
        args.out,
        overlays=not args.no_overlays,
        progress=True,
        postprocess=not args.no_postprocess,
    )
    print(f"wrote {len(files)} segmentations to {args.out}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from medssl.models.weights import convert_weights, inspect_weights

    if args.weights_cmd == "inspect":
        info = inspect_weights(args.file, args.layout, trust_pickle=args.trust_pickle)
        for key in (
            "fmt",
            "layout",
            "num_tensors",
            "num_parameters",
            "prefixes",
            "arch_guess",
            "first_conv_channels",
            "metadata",
        ):
            print(f"{key:<20} {getattr(info, key)}")
        return 0
    report = convert_weights(
        args.file, args.out, args.arch, args.layout, trust_pickle=args.trust_pickle
    )
    print(report.summary())
    print(f"wrote {args.out}")
    return 0


def _add_eval_commands(sub: argparse._SubParsersAction) -> None:
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

    p = sub.add_parser("evaluate", help="test metrics of a fine-tuning run")
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "--split",
        default="test",
        choices=["test", "val", "train", "official-test"],
        help="patients to score; official-test: the official ACDC testing/ patients",
    )
    p.add_argument(
        "--no-postprocess",
        action="store_true",
        help="skip the largest-component post-processing metrics (decided on val)",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="segment new volumes (NIfTI, h5, or DICOM into DICOM-SEG)")
    p.add_argument("--model", type=Path, required=True, help="fine-tuning run directory")
    p.add_argument(
        "--input", type=Path, required=True, help="file or folder (DICOM: folder of a series)"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-overlays", action="store_true")
    p.add_argument(
        "--no-postprocess",
        action="store_true",
        help="do not apply the run's saved post-processing (largest component per structure)",
    )
    p.set_defaults(func=_cmd_predict)

    w = sub.add_parser("weights", help="inspect or convert weight files")
    wsub = w.add_subparsers(dest="weights_cmd", required=True)
    for name in ("inspect", "convert"):
        p = wsub.add_parser(name)
        p.add_argument("file", type=Path)
        p.add_argument("--layout", help="force the layout instead of detecting it")
        p.add_argument("--trust-pickle", action="store_true")
        if name == "convert":
            p.add_argument("--out", type=Path, required=True, help="encoder .safetensors")
            p.add_argument("--arch", default="resnet50")
        p.set_defaults(func=_cmd_weights)


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


def _add_study_commands(sub: argparse._SubParsersAction) -> None:
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


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
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


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """The :class:`~medssl.training.bench.BenchConfig` of parsed ``medssl bench`` options
    (shared with ``benchmarks/profile_step.py``)."""
    from medssl.configs import RuntimeConfig
    from medssl.training.bench import BenchConfig

    runtime = RuntimeConfig(
        precision=args.precision,
        channels_last=not args.no_channels_last,
        augment=args.augment,
        num_workers=args.num_workers,
        accelerator=args.accelerator,
        devices=args.devices,
        compile=args.compile,
        cudnn_benchmark=args.cudnn_benchmark,
    )
    return BenchConfig(
        kind=args.kind,
        method=args.method,
        data=str(args.data or ""),
        arch=args.arch,
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        synthetic=args.synthetic,
        runtime=runtime,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from medssl.training.bench import bench

    print(json.dumps(bench(bench_config(args))), flush=True)
    return 0


def _add_bench_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time full training steps; print one JSON line")
    p.add_argument("kind", choices=["pretrain", "finetune"])
    p.add_argument(
        "--method", default="byol", help="pretraining method (pretrain only; see pretrain --help)"
    )
    p.add_argument("--data", type=Path, help="cache or source folder")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=128, help="crop side (pixels)")
    p.add_argument("--batch", type=int, default=16, help="per-device batch")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument(
        "--synthetic", action="store_true", help="feed a pre-made batch (no input pipeline)"
    )
    p.add_argument("--precision", default="auto", help="auto | 32-true | bf16-mixed | 16-mixed")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--augment", choices=["device", "workers"], default="device")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument(
        "--cudnn-benchmark", action="store_true", help="let cuDNN pick convolution algorithms"
    )
    p.set_defaults(func=_cmd_bench)


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="data sources: phantom, check, convert, prepare")
    dsub = data.add_subparsers(dest="data_cmd", required=True)

    p = dsub.add_parser("phantom", help="write a synthetic cardiac cine-MRI phantom (ACDC layout)")
    p.add_argument("out", type=Path)
    p.add_argument("--patients", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_phantom)

    p = dsub.add_parser("check", help="read every voxel of a source; list every problem")
    p.add_argument("source", type=Path)
    p.add_argument("--format", choices=FORMATS)
    p.set_defaults(func=_cmd_check)

    p = dsub.add_parser("convert", help="write a source as an nnU-Net raw dataset (NIfTI)")
    p.add_argument("source", type=Path)
    p.add_argument("--to", choices=["nnunet"], required=True, help="output layout")
    p.add_argument("out", type=Path, help="dataset folder to write")
    p.add_argument("--format", choices=FORMATS)
    p.add_argument("--no-series", action="store_true", help="skip 4D cine frames")
    p.add_argument("--channel", default="MRI", help="channel name in dataset.json (CT, MRI, ...)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.set_defaults(func=_cmd_convert)

    p = dsub.add_parser("prepare", help="build the preprocessing cache and the default split")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True, help="cache folder")
    p.add_argument("--format", choices=FORMATS)
    p.add_argument("--norm", choices=["zscore", "minmax"], default="zscore")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument(
        "--target-spacing", type=float, default=None, help="resample in-plane to this spacing (mm)"
    )
    p.add_argument("--no-series", action="store_true", help="skip 4D cine frames")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of a random split (non-ACDC ids); default: keep the cache's (0 when new)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if current")
    p.set_defaults(func=_cmd_prepare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medssl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"medssl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_data_commands(sub)
    _add_train_commands(sub)
    _add_eval_commands(sub)
    _add_study_commands(sub)
    _add_bench_command(sub)
    p = sub.add_parser("demo", help="the built-in synthetic demo")
    p.add_argument("--out", type=Path, default=Path("demo"))
    p.add_argument("--patients", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
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
