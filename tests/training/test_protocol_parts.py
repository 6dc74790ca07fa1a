"""The study's schedule, losses, jitter and seeding, each against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medssl.cli import build_parser
from medssl.cli.train import finetune_config, pretrain_config
from medssl.configs import FinetuneConfig
from medssl.data.batch_augment import _jitter_batch
from medssl.data.transforms import JITTER_CODES, apply_jitter
from medssl.training.losses import byol_loss, symmetric_byol_loss
from medssl.training.schedules import linear_warmup_cosine
from medssl.training.segment_module import finetune_lr_factor, segmentation_loss


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 0.01),  # warmup_start_lr 1e-6 / lr 1e-4
        (5, 0.01 + 5 * 0.99 / 9),
        (9, 1.0),  # pl_bolts reaches the base rate at warmup_epochs - 1
        (10, 1.0),
        (80, 0.5),  # half-way through the cosine (70 of 140)
        (150, 0.0),
        (400, 0.0),  # held at the end
    ],
)
def test_linear_warmup_cosine_matches_pl_bolts_closed_form(epoch: int, expected: float) -> None:
    assert linear_warmup_cosine(epoch, 10, 150, start_ratio=0.01) == pytest.approx(expected)


def test_finetune_schedule_steps_once_per_epoch_of_seven_steps() -> None:
    cfg = FinetuneConfig()  # the study's: lr 1e-4, 1050 steps, per-epoch (7-step) schedule
    assert [finetune_lr_factor(cfg, s) for s in range(7)] == [pytest.approx(0.01)] * 7
    assert finetune_lr_factor(cfg, 7) == pytest.approx(0.01 + 0.99 / 9)
    assert finetune_lr_factor(cfg, 70) == pytest.approx(1.0)
    last = 0.5 * (1 + math.cos(math.pi * 139 / 140))
    assert finetune_lr_factor(cfg, 1049) == pytest.approx(last)


def test_byol_loss_adds_both_directions_by_default() -> None:
    g = torch.Generator().manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(6, 8, generator=g) for _ in range(4))
    both = byol_loss(p1, z2) + byol_loss(p2, z1)
    assert symmetric_byol_loss(p1, p2, z1, z2) == pytest.approx(float(both))
    assert symmetric_byol_loss(p1, p2, z1, z2, "mean") == pytest.approx(float(both) / 2)
    # orthogonal prediction and target: 2 per direction, 4 summed
    e = torch.eye(2)
    assert float(symmetric_byol_loss(e[:1], e[:1], e[1:], e[1:])) == pytest.approx(4.0)


def _hand_jaccard(logits: np.ndarray, target: np.ndarray, classes) -> float:
    """smp's multiclass soft Jaccard: per class over the batch, absent classes count 0."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    losses = []
    for c in classes:
        y = (target == c).astype(float)
        inter = (prob[:, c] * y).sum()
        union = prob[:, c].sum() + y.sum() - inter
        losses.append((1 - inter / max(union, 1e-7)) * (y.sum() > 0))
    return float(np.mean(losses))


def test_study_jaccard_loss_includes_background_and_zeroes_absent_classes() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 3, 3, generator=g)
    target = torch.tensor([[[0, 1, 1], [0, 0, 2], [0, 0, 0]]] * 2)  # LV (3) absent
    study = float(segmentation_loss("jaccard", (1, 2, 3))(logits, target))
    assert study == pytest.approx(_hand_jaccard(logits.numpy(), target.numpy(), range(4)), abs=1e-6)
    # the foreground-only option differs (no background term)
    fg = float(segmentation_loss("jaccard_fg", (1, 2, 3))(logits, target))
    assert not math.isclose(fg, study, abs_tol=1e-4)


def test_albumentations_jitter_scales_from_the_minimum_and_clips_to_the_range() -> None:
    image = torch.tensor([[[0.0, 0.5], [1.0, 0.25]]])
    out = apply_jitter(image, JITTER_CODES["albumentations"], shift=0.1, factor=1.2)
    assert torch.allclose(out, torch.tensor([[[0.1, 0.7], [1.0, 0.4]]]))
    std_style = apply_jitter(image, JITTER_CODES["std"], shift=0.1, factor=1.2)
    mean, std = image.mean(), image.std()
    assert torch.allclose(std_style, (image - mean) * 1.2 + mean + 0.1 * std)
    assert torch.equal(apply_jitter(image, 0.0, 0.1, 1.2), image)


def test_batched_jitter_equals_the_per_view_jitter_for_both_styles() -> None:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(6, 5, 7, generator=g) * 3 - 1
    code = torch.tensor([0.0, 1.0, 2.0, 2.0, 1.0, 0.0])
    shift = torch.rand(6, generator=g) * 0.4 - 0.2
    factor = 0.8 + torch.rand(6, generator=g) * 0.4
    batched = _jitter_batch(images, code, shift, factor)
    for i in range(6):
        one = apply_jitter(images[i : i + 1], float(code[i]), float(shift[i]), float(factor[i]))
        assert torch.allclose(batched[i], one[0], atol=1e-6)


def _args(*argv: str):
    return build_parser().parse_args(list(argv))


def test_seed_sets_initialisation_sampling_and_budget_unless_budget_seed_given() -> None:
    base = ("finetune", "--data", "d", "--out", "o")
    cfg = finetune_config(_args(*base, "--seed", "7"))
    assert (cfg.runtime.seed, cfg.budget_seed) == (7, 7)
    cfg = finetune_config(_args(*base, "--seed", "7", "--budget-seed", "3"))
    assert (cfg.runtime.seed, cfg.budget_seed) == (7, 3)
    cfg = finetune_config(_args(*base))
    assert (cfg.runtime.seed, cfg.budget_seed) == (42, 42)  # the paper preset's seed
    pre = pretrain_config(_args("pretrain", "--data", "d", "--out", "o", "--seed", "9"))
    assert pre.runtime.seed == 9


def test_a_run_shorter_than_its_validation_interval_still_validates_at_its_last_step(
    tiny_cache, tmp_path
) -> None:
    import csv
    import json

    from medssl.training.finetune import finetune
    from tests.conftest import tiny_finetune_config

    out = tmp_path / "short"
    cfg = tiny_finetune_config(tiny_cache, out, "steps=3", "val_every_steps=50")
    result = finetune(cfg, progress=False)
    with (out / "curve.csv").open() as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == [3]
    assert (out / "best.safetensors").exists()
    assert json.loads((out / "best.json").read_text())["step"] == 3
    assert not math.isnan(result.final_val_iou) and result.final_val_iou == result.best_val_iou


def test_best_model_is_chosen_only_at_its_interval_and_the_last_step(tiny_cache, tmp_path) -> None:
    import csv
    import json

    from medssl.training.finetune import finetune
    from tests.conftest import tiny_finetune_config

    out = tmp_path / "every"
    cfg = tiny_finetune_config(
        tiny_cache, out, "steps=6", "val_every_steps=2", "best_every_steps=4"
    )
    finetune(cfg, progress=False)
    with (out / "curve.csv").open() as fh:
        rows = [(int(r["step"]), float(r["slice_iou/mean"])) for r in csv.DictReader(fh)]
    assert [s for s, _ in rows] == [2, 4, 6]
    candidates = [(iou, s) for s, iou in rows if s in (4, 6)]
    best_step = max(candidates)[1]
    assert json.loads((out / "best.json").read_text())["step"] == best_step


def test_stop_epoch_ends_training_early_but_keeps_the_full_schedule(tiny_cache, tmp_path) -> None:
    import csv
    import json

    from medssl.training.pretrain import pretrain
    from tests.conftest import tiny_pretrain_config

    out = tmp_path / "stopped"
    cfg = tiny_pretrain_config(tiny_cache, out, "epochs=6", "stop_epoch=2", "warmup_epochs=1")
    result = pretrain(cfg, progress=False)
    spe = json.loads((out / "pool.json").read_text())["steps_per_epoch"]
    assert result.steps == 2 * spe
    names = sorted(p.name for p in out.glob("encoder_epoch_*.safetensors"))
    assert names == [f"encoder_epoch_{e:03d}.safetensors" for e in range(3)]
    with (out / "logs" / "metrics.csv").open() as fh:
        lrs = [(int(r["step"]), float(r["lr"])) for r in csv.DictReader(fh) if r.get("lr")]
    base = cfg.base_lr * cfg.batch_size / 256
    step, lr = lrs[-1]
    # the 6-epoch schedule, not one squeezed into the 2 epochs that ran
    expected = base * linear_warmup_cosine(
        step, spe, 6 * spe, start_ratio=cfg.warmup_start_lr / base
    )
    assert lr == pytest.approx(expected, rel=1e-5)
    squeezed = base * linear_warmup_cosine(
        step, spe, 2 * spe, start_ratio=cfg.warmup_start_lr / base
    )
    assert not math.isclose(lr, squeezed, rel_tol=1e-3)
