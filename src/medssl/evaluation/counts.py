"""Validation accumulator of per-class segmentation counts (2D IoU/Dice during training).

It has the shape of MONAI's cumulative metrics (``monai/metrics/metric.py``):
accumulate (:meth:`SegmentationCounts.update` per batch) → sync
(:meth:`~SegmentationCounts.sync`: every count summed across the processes of a DDP
run, so each rank may score its own share of the volumes) → aggregate
(:meth:`~SegmentationCounts.compute`) → :meth:`~SegmentationCounts.reset`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist

from medssl.evaluation.metrics import FOREGROUND, _check_classes, _nanmean, class_name


class SegmentationCounts:
    """Validation accumulator of per-class counts, kept on the tensors' device.

    Each image of a batch is one slice. Over all updates it sums, per foreground class,
    ``|P∩G|``, ``|P|`` and ``|G|`` over all pixels (dataset-level IoU/Dice), and the
    per-slice IoU/Dice with the number of slices where the class is scored (per-slice
    means with the ``NaN`` convention of :func:`iou_2d`, so ``slice_iou/mean`` equals
    :func:`mean_iou` on the same slices). Counts stay per process until :meth:`sync`.

    Args:
        classes: foreground labels to score.
        names: ``{value: name}`` for the score keys (the dataset's label set); values
            without a name are reported as ``class<k>``.
    """

    def __init__(
        self, classes: Sequence[int] = FOREGROUND, names: Mapping[int, str] | None = None
    ) -> None:
        self.classes = _check_classes(classes)
        self.names = {int(c): (names or {}).get(int(c), class_name(c)) for c in self.classes}
        self._state: dict[str, torch.Tensor] = {}
        self.updates = 0

    #: state entries holding integer counts (the others are sums of per-slice scores)
    COUNT_KEYS = ("inter", "pred", "target", "slices")
    KEYS = (*COUNT_KEYS, "slice_iou", "slice_dice")

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._state = {}
        self.updates = 0

    def sync(
        self,
        device: torch.device | str | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """Replace this process's counts by the sums over all processes.

        Every process must call it (a process that scored nothing takes part with
        zeros). Without ``reduce`` the sum is ``torch.distributed.all_reduce`` when a
        process group of more than one process is initialised, else nothing happens.
        The counts travel as one float64 tensor (exact for counts below 2**53).

        Args:
            device: where the packed tensor lives (the backend's device: the CUDA
                device under NCCL); default the counts' device, else the CPU.
            reduce: ``tensor -> sum of that tensor over the processes``, e.g. a
                Lightning strategy's ``reduce(t, reduce_op="sum")``.
        """
        if reduce is None:
            if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
                return

            def reduce(t: torch.Tensor) -> torch.Tensor:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
                return t

        k = len(self.classes)
        if device is None:
            device = next(iter(self._state.values())).device if self._state else "cpu"
        packed = torch.zeros(len(self.KEYS) * k + 1, dtype=torch.float64, device=device)
        for i, key in enumerate(self.KEYS):
            if key in self._state:
                packed[i * k : (i + 1) * k] = self._state[key].to(device, torch.float64)
        packed[-1] = self.updates
        packed = reduce(packed)
        self._state = {}
        for i, key in enumerate(self.KEYS):
            part = packed[i * k : (i + 1) * k]
            self._state[key] = part.round().long() if key in self.COUNT_KEYS else part
        self.updates = round(float(packed[-1]))

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(B, H, W)`` (or ``(B, *spatial)``) integer label maps."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} != target {tuple(target.shape)}")
        if pred.is_floating_point() or target.is_floating_point():
            raise ValueError("pred and target must be integer label maps (take argmax first)")
        cls = torch.as_tensor(self.classes, device=pred.device).view(1, -1, 1)
        p = pred.reshape(pred.shape[0], 1, -1) == cls
        g = target.reshape(target.shape[0], 1, -1) == cls
        inter, ps, gs = (p & g).sum(-1), p.sum(-1), g.sum(-1)  # (B, K) int64
        union, denom = ps + gs - inter, ps + gs
        scored = union > 0
        batch = {
            "inter": inter.sum(0),
            "pred": ps.sum(0),
            "target": gs.sum(0),
            "slice_iou": (inter / union.clamp_min(1)).sum(0),
            "slice_dice": (2 * inter / denom.clamp_min(1)).sum(0),
            "slices": scored.sum(0),
        }
        for key, value in batch.items():
            self._state[key] = self._state[key] + value if key in self._state else value
        self.updates += 1

    def compute(self) -> dict[str, float]:
        """Scores so far, keyed ``"<metric>/<class name>"`` and ``"<metric>/mean"``.

        Metrics: ``iou`` and ``dice`` over all pixels; ``slice_iou`` and ``slice_dice``,
        means over slices where the class is in prediction or target. A class never
        seen is ``NaN`` and left out of ``/mean``.
        """
        if not self.updates:
            raise RuntimeError("SegmentationCounts.compute() called before any update()")
        s = {k: v.double().cpu().numpy() for k, v in self._state.items()}
        union, denom, n = s["pred"] + s["target"] - s["inter"], s["pred"] + s["target"], s["slices"]
        with np.errstate(invalid="ignore", divide="ignore"):
            tables = {
                "iou": np.where(union > 0, s["inter"] / union, np.nan),
                "dice": np.where(denom > 0, 2 * s["inter"] / denom, np.nan),
                "slice_iou": np.where(n > 0, s["slice_iou"] / n, np.nan),
                "slice_dice": np.where(n > 0, s["slice_dice"] / n, np.nan),
            }
        out: dict[str, float] = {}
        for metric, values in tables.items():
            for c, v in zip(self.classes, values, strict=True):
                out[f"{metric}/{self.names[c]}"] = float(v)
            out[f"{metric}/mean"] = float(_nanmean(values))
        return out
