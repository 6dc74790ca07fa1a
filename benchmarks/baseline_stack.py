"""The original study's training stack, timed like ``medssl bench``: the baseline to beat.

What the original research code did, with the same public libraries:

- per-sample CPU augmentation with albumentations (random resized crop, horizontal
  flip, brightness/contrast) in DataLoader worker processes;
- fp32 on CPUs (fp16 autocast + GradScaler on GPUs), NCHW memory format;
- BYOL: timm encoder + lightly heads, lightly's LARS, symmetric negative-cosine loss,
  and the target EMA as a per-parameter Python loop;
- fine-tuning: segmentation-models-pytorch U-Net (its own ResNet encoder) with its
  Jaccard loss and Adam;
- a plain PyTorch training loop.

Slices come from the same prepared medssl cache as the medssl benchmark, and the
same split, pool and budget, so both sides see the same images. Prints one JSON line
with the fields of ``medssl bench``.

    python benchmarks/baseline_stack.py finetune --data ../shared/acdc --arch resnet50 \\
        --size 128 --batch 16 --steps 10
"""

from __future__ import annotations

import argparse
import copy
import json
import resource

import albumentations as A
import segmentation_models_pytorch as smp
import timm
import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.utils.lars import LARS
from torch.utils.data import DataLoader, Dataset

from medssl.data.resolve import resolve_cache
from medssl.data.splits import budget_slices, split_for_cache, unlabelled_pool
from medssl.training.bench import StepClock, cache_bytes, device_name, step_figures


class AlbumentationsSlices(Dataset):
    """Slices read from the cache and augmented one by one on the CPU."""

    def __init__(self, cache_path, indices, transform, views: int, labels: bool) -> None:
        self.cache_path, self.indices = cache_path, list(indices)
        self.transform, self.views, self.labels = transform, views, labels
        self.cache = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        if self.cache is None:  # opened in the worker
            from medssl.data.cache_read import SliceCache

            self.cache = SliceCache.open(self.cache_path)
        idx = self.indices[i]
        image = self.cache.image(idx)
        if self.labels:
            out = self.transform(image=image, mask=self.cache.label(idx))
            return torch.from_numpy(out["image"])[None], torch.from_numpy(out["mask"]).long()
        return tuple(
            torch.from_numpy(self.transform(image=image)["image"])[None] for _ in range(self.views)
        )


def byol_transform(size: int) -> A.Compose:
    return A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.4, contrast_limit=0.4, p=0.8),
        ]
    )


def segmentation_transform(size: int) -> A.Compose:
    return A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=(0.5, 1.0)),
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        ]
    )


class BaselineBYOL(torch.nn.Module):
    def __init__(self, arch: str) -> None:
        super().__init__()
        self.backbone = timm.create_model(arch, pretrained=False, num_classes=0, in_chans=1)
        dim = self.backbone.num_features
        self.projector = BYOLProjectionHead(dim, 4096, 256)
        self.predictor = BYOLPredictionHead(256, 8192, 256)
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in [*self.target_backbone.parameters(), *self.target_projector.parameters()]:
            p.requires_grad = False

    def online(self, x):
        return self.predictor(self.projector(self.backbone(x)))

    @torch.no_grad()
    def target(self, x):
        return self.target_projector(self.target_backbone(x))

    @torch.no_grad()
    def ema(self, tau: float) -> None:
        """The per-parameter Python loop of the original code."""
        pairs = [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]
        for online, target in pairs:
            for po, pt in zip(online.parameters(), target.parameters(), strict=True):
                pt.data = pt.data * tau + po.data * (1.0 - tau)


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    cache = resolve_cache(args.data)
    split = split_for_cache(cache, 0)
    if args.kind == "pretrain":
        indices = unlabelled_pool(cache, split.train)
        dataset = AlbumentationsSlices(cache.path, indices, byol_transform(args.size), 2, False)
        model = BaselineBYOL(args.arch).to(device)
        params = [*model.backbone.parameters(), *model.projector.parameters()]
        params += list(model.predictor.parameters())
        opt = LARS(params, lr=0.5 * args.batch / 256, momentum=0.9, weight_decay=1e-5)
        criterion = NegativeCosineSimilarity()
    else:
        indices = budget_slices(cache, split, None, 0)
        transform = segmentation_transform(args.size)
        dataset = AlbumentationsSlices(cache.path, indices, transform, 1, True)
        model = smp.Unet(
            encoder_name=args.arch, encoder_weights=None, in_channels=1, classes=cache.num_classes
        ).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        criterion = smp.losses.JaccardLoss(mode="multiclass", from_logits=True)
    loader = DataLoader(
        dataset,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.num_workers,
        persistent_workers=args.num_workers > 0,
        pin_memory=cuda,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    total = args.warmup + args.steps
    clock = StepClock(device)  # CUDA events on a GPU: no synchronisation added per step
    it = iter(loader)
    model.train()
    for _ in range(total):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        batch = [b.to(device, non_blocking=True) for b in batch]
        clock.mark("start")
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            if args.kind == "pretrain":
                v1, v2 = batch
                p1, p2 = model.online(v1), model.online(v2)
                t1, t2 = model.target(v1), model.target(v2)
                loss = 0.5 * (criterion(p1, t2) + criterion(p2, t1))
            else:
                image, label = batch
                loss = criterion(model(image), label)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if args.kind == "pretrain":
            model.ema(0.99)
        clock.mark("end")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "bench": args.kind,
        "stack": "baseline",
        **step_figures(*clock.times(), args.warmup, args.batch),
        "device": device_name(),
        "precision": "16-mixed" if cuda else "32-true",
        "channels_last": False,
        "augment": f"albumentations, {args.num_workers} workers",
        "arch": args.arch,
        "size": args.size,
        "batch": args.batch,
        "num_workers": args.num_workers,
        "peak_rss_mb": round(peak / 1024, 1),
        "cache_mb": round(cache_bytes(cache) / 2**20, 1),
        "torch": torch.__version__,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("kind", choices=["pretrain", "finetune"])
    p.add_argument("--data", required=True)
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (≥ 1)")
    p.add_argument("--num-workers", type=int, default=2)
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be ≥ 1")
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
