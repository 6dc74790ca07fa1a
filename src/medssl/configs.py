"""Typed configs of the run kinds, with their presets.

``paper`` reproduces the study's settings as its public code ran them
(``kaland313/SSL-MedSeg`` on solo-learn and segmentation_models_pytorch); every value,
its source (file and line) and each deliberate difference are in
``docs/paper-protocol.md`` and pinned by ``tests/test_paper_protocol.py``.
``cpu-small`` is a reduced recipe that runs in minutes on a laptop-class CPU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from medssl.data.transforms import AugmentConfig
from medssl.models.byol import HeadConfig
from medssl.overrides import ConfigError, apply_overrides


@dataclass(frozen=True)
class RuntimeConfig:
    """Hardware and engine settings shared by every run kind.

    Attributes:
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: devices per node (DDP when more than one device in total).
        num_nodes: nodes (multi-node DDP, e.g. under SLURM).
        precision: ``auto`` (bf16 autocast on GPUs that support it and on CPUs with
            AMX, otherwise fp32), or any Lightning precision string.
        channels_last: use the channels-last memory format.
        num_workers: data-loading worker processes per device.
        augment: ``device``: the training slices are held in memory (on the GPU when
            they fit) and each batch is cropped, resized, flipped and jittered there
            in one batched call, the workers only draw the random parameters;
            ``workers``: every sample is augmented on the CPU in the DataLoader
            workers. Both use the same draws and give the same views (to float
            rounding).
        compile: compile the networks' forward passes with ``torch.compile``
            (``nn.Module.compile``: parameter names and checkpoints are unchanged);
            pays on GPUs for long runs, costs minutes of compilation first.
        cudnn_benchmark: let cuDNN time its convolution algorithms for each new input
            shape and keep the fastest (GPU only; training crops have one shape, but
            whole-slice validation meets many, each timed once).
        seed: global seed (model initialisation, sampling, augmentation).
    """

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "auto"
    channels_last: bool = True
    num_workers: int = 4
    augment: Literal["device", "workers"] = "device"
    compile: bool = False
    cudnn_benchmark: bool = False
    seed: int = 0


@dataclass(frozen=True)
class PretrainConfig:
    """BYOL pretraining run (defaults: the study's ``paper`` preset).

    Attributes:
        data: prepared cache or source folder.
        out: run directory.
        init: weight source (``random``, ``imagenet`` or a file; see ``medssl weights``).
        init_layout: force the weight file's layout (``None`` detects it).
        trust_pickle: allow unpickling a trusted legacy weight file.
        arch: timm encoder name.
        epochs: passes over the unlabelled pool; the schedules span them.
        stop_epoch: stop after this many epochs while keeping the schedules of
            ``epochs`` (the study's hierarchical encoders are epoch 25 of a 401-epoch
            run; ``None``: run all epochs).
        max_steps: stop after this many steps, the schedules shortened to them
            (``None``: epochs decide).
        batch_size: per-device batch; the learning rate scales with the total batch.
        crop: view size in pixels.
        base_lr: LARS learning rate per 256 samples (solo-learn scaling:
            ``lr = base_lr · total batch / 256``).
        weight_decay, lars_eta, lars_clip, momentum: LARS settings.
        warmup_epochs: linear warmup length (solo-learn ``warmup_cosine``, stepped per
            optimisation step) before the cosine decay to 0.
        warmup_start_lr: learning rate of the first warmup step (absolute).
        loss_reduction: ``sum`` (solo-learn: the two directions' losses added, range
            0–8) or ``mean`` (their average, range 0–4; halves the step).
        views: augmentation of the two views (``size`` is taken from ``crop``).
        tau_base, tau_end: target EMA momentum schedule end points.
        heads: projector/predictor sizes.
        ckpt_every_steps: also write the resume checkpoint every N steps (0: epoch ends).
        log_every_steps: metric logging interval.
        max_bad_steps: abort after this many consecutive non-finite losses (each is
            skipped).
        collapse_fraction, collapse_patience: flag representation collapse when the
            online projections' spread stays below ``fraction/√D`` for ``patience`` steps.
        split_seed: ``None``: the cache's split, written once by ``medssl data prepare``;
            an int: the default split drawn with that seed (non-ACDC ids).
        runtime: hardware settings.
    """

    data: str = ""
    out: str = ""
    init: str = "random"
    init_layout: str | None = None
    trust_pickle: bool = False
    arch: str = "resnet50"
    epochs: int = 401
    stop_epoch: int | None = None
    max_steps: int | None = None
    batch_size: int = 128
    crop: int = 224
    base_lr: float = 1.0
    weight_decay: float = 1e-5
    lars_eta: float = 0.02
    lars_clip: bool = True
    momentum: float = 0.9
    warmup_epochs: float = 10.0
    warmup_start_lr: float = 3e-5
    loss_reduction: Literal["sum", "mean"] = "sum"
    views: AugmentConfig = field(default_factory=AugmentConfig)
    tau_base: float = 0.99
    tau_end: float = 1.0
    heads: HeadConfig = field(default_factory=HeadConfig)
    ckpt_every_steps: int = 200
    log_every_steps: int = 10
    max_bad_steps: int = 10
    collapse_fraction: float = 0.1
    collapse_patience: int = 20
    split_seed: int | None = None
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def run_epochs(self) -> int:
        """Epochs the run trains (``stop_epoch`` when it ends early, else ``epochs``)."""
        return min(self.stop_epoch, self.epochs) if self.stop_epoch else self.epochs


#: medssl's earlier BYOL recipe, a named option (``--preset medssl``): jitter p 0.8 with
#: std-relative brightness/contrast 0.4, lr 0.5 per 256, 2 warmup epochs, the two
#: directions averaged, 25 epochs.
MEDSSL_PRETRAIN = {
    "epochs": 25,
    "base_lr": 0.5,
    "warmup_epochs": 2.0,
    "warmup_start_lr": 0.0,
    "loss_reduction": "mean",
    "views": {"jitter_p": 0.8, "brightness": 0.4, "contrast": 0.4, "jitter_style": "std"},
}

PRETRAIN_PRESETS: dict[str, dict] = {
    "paper": {"runtime": {"seed": 5}},
    "medssl": MEDSSL_PRETRAIN,
    "cpu-small": {
        "arch": "resnet18",
        "epochs": 2,
        "batch_size": 32,
        "crop": 96,
        "base_lr": 0.5,
        "loss_reduction": "mean",
        "views": MEDSSL_PRETRAIN["views"],
        "heads": {"proj_hidden": 1024, "proj_out": 128, "pred_hidden": 1024},
        "warmup_epochs": 0.2,
        "warmup_start_lr": 0.0,
        "ckpt_every_steps": 50,
        "runtime": {"num_workers": 2},
    },
}

PresetName = Literal["paper", "medssl", "cpu-small"]


def preset(cls: type, presets: dict[str, dict], name: str, overrides: list[str] | None = None):
    """A config of ``cls`` from a named preset, then ``key=value`` overrides."""
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r} (known: {sorted(presets)})")
    return apply_overrides(apply_overrides(cls(), presets[name]), overrides or [])


@dataclass(frozen=True)
class FinetuneConfig:
    """U-Net fine-tuning run (defaults: the study's ``paper`` preset).

    The number of optimisation steps is fixed whatever the label budget (the study:
    150 epochs of 7 batches of 192, its oversampled training set of ≈1498 slices with
    ``drop_last``), so small budgets are oversampled.

    Attributes:
        data: prepared cache or source folder.
        out: run directory.
        init: encoder weight source (``random``, ``imagenet``, a file or a pretraining
            run's ``encoder_*.safetensors``).
        init_layout, trust_pickle: see :class:`PretrainConfig`.
        arch: timm encoder name.
        labelled_slices: slice budget (``None`` with ``labelled_patients=None``: all).
        labelled_patients: patient budget (ED and ES of N training patients).
        budget_seed: seed of the label budget (and of the run).
        steps: optimisation steps (same for every budget).
        batch_size: per-device batch.
        crop: training crop side.
        loss: ``jaccard`` (the study: smp ``JaccardLoss`` over all classes, background
            included), ``jaccard_fg`` (foreground classes only), ``dice`` or ``dice_ce``.
        lr: Adam learning rate.
        warmup_steps: linear warmup (pl_bolts ``LinearWarmupCosineAnnealingLR``) before
            the cosine decay to 0.
        warmup_start_lr: learning rate of the first warmup interval (absolute).
        lr_interval: the schedule changes the learning rate every this many steps (7:
            once per epoch of the study's training set, as the original's per-epoch
            scheduler; 1: every step).
        augment: training augmentation (``size`` is taken from ``crop``).
        grad_clip: gradient-norm clipping.
        freeze_encoder: train the decoder only (linear-probe style).
        freeze_encoder_steps: keep the encoder frozen for the first K steps.
        val_every_steps: validation (learning-curve point) interval; a run also
            validates at its last step.
        best_every_steps: ``best.safetensors`` is chosen among the validations at
            multiples of this many steps and the last one (the original's
            ``ModelCheckpoint(every_n_epochs=10)``: 70 steps); 0: among all.
        ckpt_every_steps: resume checkpoint interval.
        decoder_channels: U-Net decoder widths (smp's default, ≈9M parameters with ResNet-50).
        max_bad_steps: abort after this many consecutive non-finite losses (each is
            skipped).
        split_seed: ``None``: the cache's split, written once by ``medssl data prepare``;
            an int: the default split drawn with that seed (non-ACDC ids).
        runtime: hardware settings.
    """

    data: str = ""
    out: str = ""
    init: str = "random"
    init_layout: str | None = None
    trust_pickle: bool = False
    arch: str = "resnet50"
    labelled_slices: int | None = None
    labelled_patients: int | None = None
    budget_seed: int = 0
    steps: int = 150 * (1498 // 192)
    batch_size: int = 192
    crop: int = 224
    loss: Literal["jaccard", "jaccard_fg", "dice", "dice_ce"] = "jaccard"
    lr: float = 1e-4
    warmup_steps: int = 10 * (1498 // 192)
    warmup_start_lr: float = 1e-6
    lr_interval: int = 1498 // 192
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    grad_clip: float = 5.0
    freeze_encoder: bool = False
    freeze_encoder_steps: int = 0
    val_every_steps: int = 1498 // 192
    best_every_steps: int = 10 * (1498 // 192)
    ckpt_every_steps: int = 100
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    max_bad_steps: int = 10
    split_seed: int | None = None
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


#: medssl's earlier fine-tuning recipe, a named option (``--preset medssl``): zoom crops
#: at native resolution with std-relative jitter p 0.5, foreground-only Jaccard loss,
#: per-step warmup from 0 over 100 steps, best model among all validations every 50.
MEDSSL_FINETUNE = {
    "steps": 150 * 1498 // 192,
    "loss": "jaccard_fg",
    "warmup_steps": 100,
    "warmup_start_lr": 0.0,
    "lr_interval": 1,
    "augment": {
        "mode": "zoom",
        "jitter_p": 0.5,
        "brightness": 0.2,
        "contrast": 0.2,
        "jitter_style": "std",
    },
    "val_every_steps": 50,
    "best_every_steps": 0,
}

FINETUNE_PRESETS: dict[str, dict] = {
    "paper": {"budget_seed": 42, "runtime": {"seed": 42}},
    "medssl": MEDSSL_FINETUNE,
    "cpu-small": {
        "arch": "resnet18",
        "steps": 1500,
        "batch_size": 16,
        "crop": 128,
        "loss": "jaccard_fg",
        "augment": MEDSSL_FINETUNE["augment"],
        "warmup_steps": 50,
        "warmup_start_lr": 0.0,
        "lr_interval": 1,
        "lr": 1e-3,
        "val_every_steps": 100,
        "best_every_steps": 0,
        "ckpt_every_steps": 100,
        "runtime": {"num_workers": 2},
    },
}


# --- hardware-dependent choices ------------------------------------------------------
@functools.cache
def cpu_has_amx() -> bool:
    """True when the CPU advertises AMX-BF16 (bf16 matmuls run several times fp32 speed)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_precision(runtime: RuntimeConfig) -> str:
    """``auto`` → bf16 autocast on bf16-capable GPUs or AMX CPUs, fp16 on older GPUs,
    fp32 otherwise; other values are passed to Lightning unchanged."""
    if runtime.precision != "auto":
        return runtime.precision
    wants_gpu = runtime.accelerator in ("auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_amx() else "32-true"


def world_size(runtime: RuntimeConfig) -> int:
    """Total processes of a run (devices per node × nodes)."""
    return runtime.devices * runtime.num_nodes
