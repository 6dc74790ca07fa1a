"""The built-in synthetic demo: everything a new user needs to see medssl work offline.

For now it covers the data layer (phantom → validation → cache → split → label
budgets); the study engine extends it with pretraining, fine-tuning and the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medssl.data.cache import prepare_cache
from medssl.data.cache_index import SliceCache
from medssl.data.phantom import generate_phantom
from medssl.data.splits import budget_slices, save_budget, split_for_cache, unlabelled_pool
from medssl.data.validate import check_source
from medssl.errors import DataErrors

log = logging.getLogger(__name__)

DEMO_BUDGETS = (1, 3, 7, 15, 30)


def run_demo(out: str | Path = "demo", patients: int = 20, seed: int = 0) -> list[str]:
    """Generate the phantom, check it, cache it, split it and draw nested label budgets.

    Args:
        out: demo folder (``phantom/``, ``cache/``, ``budgets/`` are written inside).
        patients: number of synthetic patients.
        seed: seed of the phantom and of the label budgets.

    Returns:
        Human-readable summary lines.
    """
    out = Path(out)
    phantom = out / "phantom"
    log.info("generating %d synthetic patients in %s", patients, phantom)
    generate_phantom(phantom, patients, seed, progress=True)
    report = check_source(phantom, progress=True)
    if not report.ok:
        raise DataErrors(report.problems)
    cache = SliceCache.open(prepare_cache(phantom, out / "cache", progress=True).path)
    split = split_for_cache(cache, seed)
    split.save(out / "cache" / "split.json")
    (out / "budgets").mkdir(exist_ok=True)
    lines = [f"SYNTHETIC DATA: {patients} phantom patients in {phantom}"]
    lines += [f"  {k}: {v}" for k, v in report.summary_rows()]
    lines.append(f"cache: {out / 'cache'} ({len(cache)} slices)")
    lines.append(f"split: {len(split.train)} train / {len(split.val)} val / {len(split.test)} test")
    lines.append(f"pretraining pool: {len(unlabelled_pool(cache, split.train))} unlabelled slices")
    for n in DEMO_BUDGETS:
        idx = budget_slices(cache, split, n, seed)
        save_budget(out / "budgets" / f"slices_{n}_seed{seed}.json", cache, idx,
                    kind="slices", seed=seed)
    lines.append(f"label budgets {list(DEMO_BUDGETS)} (nested, seed {seed}) in {out / 'budgets'}")
    return lines
