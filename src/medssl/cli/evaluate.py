"""``medssl evaluate``, ``predict`` and ``weights``: use a finished run or a weight file."""

from __future__ import annotations

import argparse
from pathlib import Path


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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``evaluate``, ``predict`` and ``weights``."""
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
