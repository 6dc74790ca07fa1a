"""The wait for BYOL's batches at epoch starts: the per-epoch DataLoader (a new iterator
each epoch, persistent workers) against :class:`medssl.training.sampling.EpochStream`
(one iterator across epochs), with the GPU's step simulated by a sleep.

With the batched device augmentation a worker only draws each batch's view parameters;
the step that starts an epoch waits for the first of them. This times ``next(batch)``
after each simulated step of ``--step-ms`` (the H200's eager BYOL step: 190 ms) over
``--epochs`` epochs of the real training split, both loaders alternating, and prints the
median wait at epoch starts and inside epochs, and the share of the step it would be.

    python benchmarks/epoch_start_wait.py --data ../shared/acdc --batch 256 --workers 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from medssl.data.datasets import TwoViews
from medssl.data.resolve import resolve_cache
from medssl.data.splits import default_split, unlabelled_pool
from medssl.data.transforms import byol_view_config
from medssl.training.bench import device_name
from medssl.training.sampling import epoch_stream, resumable_loader


def waits(loader, epochs: int, step_s: float) -> tuple[list[float], list[float]]:
    """Milliseconds waited for each batch after the first epoch: (epoch starts, others)."""
    at_start, inside = [], []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        it = iter(loader)
        k = 0
        while True:
            t0 = time.perf_counter()
            try:
                next(it)
            except StopIteration:
                break
            wait = 1e3 * (time.perf_counter() - t0)
            if epoch > 0:  # the first epoch holds the workers' start-up
                (at_start if k == 0 else inside).append(wait)
            k += 1
            time.sleep(step_s)
    return at_start, inside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--step-ms", type=float, default=190.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cache = resolve_cache(args.data)
    pool = unlabelled_pool(cache, default_split(cache).train)  # what pretraining uses
    ds = TwoViews(cache, pool, byol_view_config(224), seed=0, params_only=True)
    loaders = {
        "per-epoch DataLoader": lambda: resumable_loader(ds, args.batch, 0, 0, 1, args.workers),
        "EpochStream": lambda: epoch_stream(ds, args.batch, 0, 0, 1, args.workers),
    }
    found: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in loaders}
    for _ in range(args.repeats):
        for name, make in loaders.items():
            start, inside = waits(make(), args.epochs, args.step_ms / 1e3)
            found[name][0].extend(start)
            found[name][1].extend(inside)
    per_epoch = len(pool) // args.batch
    for name, (start, inside) in found.items():
        mean = (statistics.median(start) + (per_epoch - 1) * statistics.median(inside)) / per_epoch
        print(
            json.dumps(
                {
                    "loader": name,
                    "slices": len(pool),
                    "steps_per_epoch": per_epoch,
                    "batch": args.batch,
                    "workers": args.workers,
                    "step_ms": args.step_ms,
                    "epoch_start_wait_ms": round(statistics.median(start), 2),
                    "inside_wait_ms": round(statistics.median(inside), 2),
                    "n_epoch_starts": len(start),
                    "wait_share_of_step": round(mean / (args.step_ms + mean), 4),
                    "device": device_name("cpu"),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
