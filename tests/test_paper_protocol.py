"""The ``paper`` presets are the study's protocol, value by value.

Every expected value below is typed from the original sources (GitHub
``kaland313/SSL-MedSeg`` and solo-learn), never read from medssl's code; the file and
line of each is in the table of ``docs/paper-protocol.md``, which this test also pins:
each ``(key, value)`` row here must appear in that table with the same value.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medssl.configs import (
    FINETUNE_PRESETS,
    PRETRAIN_PRESETS,
    FinetuneConfig,
    PretrainConfig,
    preset,
)
from medssl.experiments.study import STUDY_SEEDS, STUDY_SLICE_BUDGETS
from medssl.overrides import to_dict

DOC = Path(__file__).resolve().parents[1] / "docs" / "paper-protocol.md"

# --- fine-tuning: supervised_segmentation/config_acdc.yaml, train.py -----------------
FINETUNE = [
    ("arch", "resnet50"),  # encoder_name: "tu-resnet50"
    ("decoder_channels", (256, 128, 64, 32, 16)),  # smp.Unet default
    ("batch_size", 192),  # batch_size: 192
    ("crop", 224),  # A.RandomResizedCrop(224, 224)
    ("steps", 1050),  # max_epochs 150 × 7 batches (1498 slices, drop_last)
    ("lr", 1e-4),  # optimizer: torch.optim.Adam, lr 0.0001
    ("warmup_steps", 70),  # warmup_epochs: 10 (× 7 steps)
    ("warmup_start_lr", 1e-6),  # warmup_start_lr: 1.0e-6
    ("lr_interval", 7),  # Lightning steps an epoch-interval scheduler once per epoch
    ("grad_clip", 5.0),  # gradient_clip_val: 5.0
    ("loss", "jaccard"),  # smp.losses.JaccardLoss(MULTICLASS_MODE): classes=None
    ("augment.mode", "area"),  # RandomResizedCrop
    ("augment.scale", (0.08, 1.0)),  # albumentations default scale
    ("augment.ratio", (0.75, 4 / 3)),  # albumentations default ratio
    ("augment.flip_p", 0.5),  # A.HorizontalFlip(p=0.5)
    ("augment.jitter_p", 0.2),  # A.RandomBrightnessContrast(p=0.2)
    ("augment.brightness", 0.2),  # brightness_limit default 0.2
    ("augment.contrast", 0.2),  # contrast_limit default 0.2
    ("augment.jitter_style", "albumentations"),
    ("val_every_steps", 7),  # validation every epoch (Lightning default)
    ("best_every_steps", 70),  # ModelCheckpoint(every_n_epochs=10, monitor mean_iou)
    ("freeze_encoder_steps", 0),  # freeze_encoder_weights_epochs: 0
    ("budget_seed", 42),  # seed: 42 (pl.seed_everything before the subset draw)
    ("runtime.seed", 42),  # seed: 42 (also the model initialisation)
]

# --- BYOL: self_supervised/byol-acdc.sh, transforms.py, solo-learn defaults ------------
PRETRAIN = [
    ("arch", "resnet50"),  # --backbone resnet50
    ("epochs", 401),  # --max_epochs 401
    ("batch_size", 128),  # --batch_size 128
    ("crop", 224),  # crop_size default 224
    ("base_lr", 1.0),  # --lr 1.0 (× batch·devices / 256 by solo-learn)
    ("weight_decay", 1e-5),  # --weight_decay 1e-5
    ("lars_eta", 0.02),  # --eta_lars 0.02
    ("lars_clip", True),  # --grad_clip_lars
    ("momentum", 0.9),  # solo-learn LARS momentum default
    ("warmup_epochs", 10.0),  # solo-learn --warmup_epochs default 10
    ("warmup_start_lr", 3e-5),  # solo-learn --warmup_start_lr default 0.00003
    ("tau_base", 0.99),  # --base_tau_momentum 0.99
    ("tau_end", 1.0),  # --final_tau_momentum 1.0
    ("heads.proj_hidden", 4096),  # --proj_hidden_dim 4096
    ("heads.proj_out", 256),  # --proj_output_dim 256
    ("heads.pred_hidden", 8192),  # --pred_hidden_dim 8192
    ("loss_reduction", "sum"),  # neg_cos_sim += byol_loss_func(...) over both directions
    ("views.mode", "area"),
    ("views.scale", (0.08, 1.0)),  # min_scale 0.08, max_scale 1.0
    ("views.flip_p", 0.5),  # --horizontal_flip_prob 0.5
    ("views.jitter_p", 0.2),  # --color_jitter_prob 0.2
    ("views.brightness", 0.2),  # --brightness 0.2
    ("views.contrast", 0.2),  # --contrast 0.2
    ("views.jitter_style", "albumentations"),  # A.RandomBrightnessContrast
    ("runtime.seed", 5),  # seed_everything(5)
]

# --- the studies: sweeps/grid_search_helper.py, pretraining_epochs_byolbyol.sh -------
STUDY_BUDGETS = (1, 3, 7, 15, 30, 75, 150, 300, 749, 1498)  # round(1498 × subset_ratios)
STUDY_SEED_LIST = (0, 13, 42, 123, 1111, 77, 62, 91, 7, 5)
FIG8_EPOCHS = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    12,
    14,
    16,
    18,
    20,
    22,
    24,
    25,
    50,
    100,
    200,
    300,
    400,
)
TEST_PATIENTS = (1, 11, 21, 31, 41, 51, 61, 71, 81, 91)
VAL_PATIENTS = (2, 12, 22, 32, 42, 52, 62, 72, 82, 92)


def _get(cfg, key: str):
    value = to_dict(cfg)
    for part in key.split("."):
        value = value[part]
    return tuple(value) if isinstance(value, list) else value


@pytest.mark.parametrize(("key", "expected"), FINETUNE, ids=[k for k, _ in FINETUNE])
def test_finetune_paper_preset(key: str, expected) -> None:
    cfg = preset(FinetuneConfig, FINETUNE_PRESETS, "paper")
    assert _get(cfg, key) == pytest.approx(expected)


@pytest.mark.parametrize(("key", "expected"), PRETRAIN, ids=[k for k, _ in PRETRAIN])
def test_pretrain_paper_preset(key: str, expected) -> None:
    cfg = preset(PretrainConfig, PRETRAIN_PRESETS, "paper")
    assert _get(cfg, key) == pytest.approx(expected)


def test_study_budgets_and_seeds() -> None:
    ratios = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    assert tuple(round(1498 * r) for r in ratios) == STUDY_BUDGETS  # the original's draw size
    assert STUDY_SLICE_BUDGETS == STUDY_BUDGETS
    assert STUDY_SEEDS == STUDY_SEED_LIST


def test_study_split_rule() -> None:
    from medssl.data.splits import make_split

    ids = [f"patient{n:03d}" for n in range(1, 101)]
    split = make_split(ids)
    assert split.test == tuple(f"patient{n:03d}" for n in TEST_PATIENTS)
    assert split.val == tuple(f"patient{n:03d}" for n in VAL_PATIENTS)
    assert len(split.train) == 80


def _doc_rows() -> dict[str, str]:
    """``medssl key`` → ``medssl paper value`` cells of the protocol table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[1].startswith("`") and "." in cells[1]:
            rows[cells[1].strip("`")] = cells[4].strip("`")
    return rows


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@pytest.mark.parametrize(
    ("key", "expected"),
    [(f"finetune.{k}", v) for k, v in FINETUNE] + [(f"pretrain.{k}", v) for k, v in PRETRAIN],
)
def test_protocol_table_has_the_same_value(key: str, expected) -> None:
    rows = _doc_rows()
    assert key in rows, f"{key} missing from {DOC.name}"
    cell = re.sub(r"\s+", " ", rows[key])
    expected_text = _fmt(expected)
    if isinstance(expected, tuple) and any(isinstance(v, float) for v in expected):
        expected_text = ", ".join(f"{v:.4g}" for v in expected)
    assert cell == expected_text, f"{key}: table says {cell!r}, preset pinned to {expected_text!r}"
