"""``medssl data``: write a phantom, check, convert and prepare a data source."""

from __future__ import annotations

import argparse
from pathlib import Path

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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``data phantom|check|convert|prepare``."""
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
