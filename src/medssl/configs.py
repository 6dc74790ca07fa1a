"""Typed configs of the run kinds, with their presets.

``paper`` reproduces the study's settings as its public code ran them
(``kaland313/SSL-MedSeg`` on solo-learn and segmentation_models_pytorch); every value,
its source (file and line) and each deliberate difference are in
``docs/paper-protocol.md`` and pinned by ``tests/test_paper_protocol.py``.
``cpu-small`` is a reduced recipe that runs in minutes on a laptop-class CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from medssl.data.transforms import AugmentConfig
from medssl.models.byol import HeadConfig
from medssl.overrides import ConfigError, apply_overrides, to_dict


@dataclass(frozen=True)
class RuntimeConfig:
    """Hardware and engine settings shared by every run kind.

    Attributes:
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: devices per node (DDP when more than one device in total).
        num_nodes: nodes (multi-node DDP, e.g. under SLURM).
        precision: ``auto`` (bf16 autocast on GPUs that support it and on CPUs with
            native bf16 matmuls, AMX or AVX-512 BF16; otherwise fp32; see
            :func:`~medssl.hardware.cpu_bf16`), or any Lightning precision string.
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
            pays on GPUs for long runs, costs minutes of compilation first. ``auto``
            (the default): compile pretraining runs of at least
            :data:`~medssl.hardware.COMPILE_MIN_STEPS` steps on a GPU, run everything
            else eager (:func:`~medssl.hardware.compile_choice`); ``true``/``false``
            force it.
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
    compile: bool | Literal["auto"] = "auto"
    cudnn_benchmark: bool = False
    seed: int = 0


@dataclass(frozen=True)
class ObjectiveConfig:
    """Settings of the self-supervised objectives other than BYOL's (each method reads
    its own; the others ignore them). Defaults: the published recipes of
    ``docs/methods.md``.

    Attributes:
        temperature: softmax temperature of the InfoNCE / NT-Xent losses (``simclr``,
            ``mocov2``, ``densecl``).
        queue_size: negatives kept in the memory queue (``mocov2``, ``densecl``).
        vicreg_sim, vicreg_var, vicreg_cov: VICReg's invariance, variance and
            covariance weights (λ, μ, ν).
        barlow_lambda: Barlow Twins' off-diagonal weight (λ).
        barlow_scale: solo-learn's overall scale of the Barlow Twins loss.
        dino_prototypes: DINO's output dimension (prototypes).
        dino_student_temp: DINO's student temperature.
        dino_teacher_temp: DINO's teacher temperature after warmup.
        dino_warmup_teacher_temp: DINO's teacher temperature at step 0.
        dino_warmup_teacher_temp_epochs: epochs of the linear teacher-temperature warmup.
        dino_center_momentum: EMA momentum of DINO's teacher centre.
        dense_weight: DenseCL's weight λ of the dense loss (``(1−λ)·global + λ·dense``).
        mask_ratio: share of patches masked (``mim``).
        mask_patch: masked patch side in pixels (``mim``; 32 = the ResNet's stride, as
            SparK).
        norm_pix: ``mim`` reconstructs each patch normalised by its own mean and std (MAE's
            ``norm_pix_loss``, SparK's default).
        decoder_channels: ``mim``'s U-Net decoder widths (fine-tuning with
            ``init_decoder`` needs the same widths: the default is fine-tuning's).
    """

    temperature: float = 0.2
    queue_size: int = 65536
    vicreg_sim: float = 25.0
    vicreg_var: float = 25.0
    vicreg_cov: float = 1.0
    barlow_lambda: float = 0.0051
    barlow_scale: float = 0.048
    dino_prototypes: int = 4096
    dino_student_temp: float = 0.1
    dino_teacher_temp: float = 0.07
    dino_warmup_teacher_temp: float = 0.04
    dino_warmup_teacher_temp_epochs: int = 50
    dino_center_momentum: float = 0.9
    dense_weight: float = 0.5
    mask_ratio: float = 0.6
    mask_patch: int = 32
    norm_pix: bool = True
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)


@dataclass(frozen=True)
class MethodInfo:
    """One self-supervised method of the registry (the implementation is in
    :mod:`medssl.training.methods`).

    Attributes:
        kind: ``global`` (one vector per view), ``dense`` (per-location features) or
            ``masked`` (masked image modelling).
        objective: the loss, in words.
        source: the paper and the recipe the preset copies.
        pretrains: what the exported weights cover.
        recipe: overrides of the ResNet-50 presets (``paper``, ``medssl``).
        small: overrides of the ``cpu-small`` preset.
        trains_decoder: the method pretrains the U-Net decoder too (study fine-tunes
            start from it: ``init_decoder``).
    """

    kind: Literal["global", "dense", "masked"]
    objective: str
    source: str
    pretrains: str
    recipe: dict
    small: dict
    trains_decoder: bool = False


_SMALL_HEAD = {"proj_hidden": 1024, "proj_out": 128}

#: The registry's methods: name → what it is and its published recipe.
METHODS: dict[str, MethodInfo] = {
    "byol": MethodInfo(
        "global",
        "BYOL: symmetric 2 − 2·cos between the online prediction and the EMA target",
        "Grill et al. 2020; the study's solo-learn recipe (docs/paper-protocol.md)",
        "encoder (EMA target)",
        {},
        {},
    ),
    "simclr": MethodInfo(
        "global",
        "SimCLR: NT-Xent over the 2B views of the batch (lightly NTXentLoss)",
        "Chen et al. 2020; solo-learn scripts/pretrain/imagenet-100/simclr.yaml",
        "encoder",
        {
            "heads": {"proj_hidden": 4096, "proj_out": 512},
            "objective": {"temperature": 0.2},
            "base_lr": 0.3,
            "weight_decay": 1e-4,
            "lars_eta": 0.02,
            "lars_clip": True,
        },
        {"heads": _SMALL_HEAD, "base_lr": 0.3, "weight_decay": 1e-4},
    ),
    "mocov2": MethodInfo(
        "global",
        "MoCo v2 (solo-learn mocov2plus, symmetric): InfoNCE against an EMA key "
        "encoder and a queue of negatives (lightly NTXentLoss with memory bank)",
        "Chen et al. 2020 (MoCo v2); solo-learn scripts/pretrain/imagenet/mocov2plus.yaml",
        "encoder (query network)",
        {
            "heads": {"proj_hidden": 2048, "proj_out": 256},
            "objective": {"temperature": 0.2, "queue_size": 65536},
            "optimizer": "sgd",
            "base_lr": 0.3,
            "weight_decay": 3e-5,
            "tau_base": 0.99,
            "tau_end": 0.999,
        },
        {
            "heads": _SMALL_HEAD,
            "objective": {"queue_size": 4096},
            "optimizer": "sgd",
            "base_lr": 0.3,
            "weight_decay": 3e-5,
            "tau_base": 0.99,
            "tau_end": 0.999,
        },
    ),
    "vicreg": MethodInfo(
        "global",
        "VICReg: invariance + variance + covariance terms (lightly VICRegLoss)",
        "Bardes et al. 2022; solo-learn scripts/pretrain/imagenet-100/vicreg.yaml",
        "encoder",
        {
            "heads": {"proj_hidden": 2048, "proj_out": 2048},
            "objective": {"vicreg_sim": 25.0, "vicreg_var": 25.0, "vicreg_cov": 1.0},
            "base_lr": 0.3,
            "weight_decay": 1e-4,
            "lars_eta": 0.02,
            "lars_clip": True,
        },
        {"heads": {"proj_hidden": 1024, "proj_out": 1024}, "base_lr": 0.3, "weight_decay": 1e-4},
    ),
    "barlowtwins": MethodInfo(
        "global",
        "Barlow Twins: cross-correlation to identity, scaled (lightly BarlowTwinsLoss)",
        "Zbontar et al. 2021; solo-learn scripts/pretrain/imagenet/barlow.yaml",
        "encoder",
        {
            "heads": {"proj_hidden": 4096, "proj_out": 4096},
            "objective": {"barlow_lambda": 0.0051, "barlow_scale": 0.048},
            "base_lr": 0.8,
            "weight_decay": 1.5e-6,
            "lars_eta": 0.001,
            "lars_clip": False,
        },
        {
            "heads": {"proj_hidden": 1024, "proj_out": 1024},
            "base_lr": 0.8,
            "weight_decay": 1.5e-6,
            "lars_eta": 0.001,
            "lars_clip": False,
        },
    ),
    "dino": MethodInfo(
        "global",
        "DINO: cross-entropy between the centred, sharpened EMA teacher and the student "
        "over prototypes (lightly DINOLoss, DINOProjectionHead)",
        "Caron et al. 2021; solo-learn scripts/pretrain/imagenet-100/dino.yaml",
        "encoder (EMA teacher)",
        {
            "heads": {"proj_hidden": 2048, "proj_out": 256},
            "objective": {"dino_prototypes": 4096},
            "base_lr": 0.3,
            "weight_decay": 1e-6,
            "lars_eta": 0.02,
            "lars_clip": True,
            "tau_base": 0.9995,
            "tau_end": 1.0,
        },
        {
            "heads": {"proj_hidden": 1024, "proj_out": 128},
            "objective": {"dino_prototypes": 1024, "dino_warmup_teacher_temp_epochs": 1},
            "base_lr": 0.3,
            "weight_decay": 1e-6,
            "tau_base": 0.996,
            "tau_end": 1.0,
        },
    ),
    "densecl": MethodInfo(
        "dense",
        "DenseCL: (1−λ)·global InfoNCE + λ·dense InfoNCE between each location and its "
        "most similar key location, both with queues (lightly DenseCLProjectionHead, "
        "NTXentLoss, select_most_similar)",
        "Wang et al. 2021 (DenseCL, CVPR): SGD lr 0.03/256, wd 1e-4, τ 0.999, queue 65536, "
        "temperature 0.2, λ 0.5",
        "encoder (query network)",
        {
            "heads": {"proj_hidden": 2048, "proj_out": 128},
            "objective": {"temperature": 0.2, "queue_size": 65536, "dense_weight": 0.5},
            "optimizer": "sgd",
            "base_lr": 0.03,
            "weight_decay": 1e-4,
            "tau_base": 0.999,
            "tau_end": 0.999,
        },
        {
            "heads": _SMALL_HEAD,
            "objective": {"queue_size": 4096},
            "optimizer": "sgd",
            "base_lr": 0.03,
            "weight_decay": 1e-4,
            "tau_base": 0.99,
            "tau_end": 0.999,
        },
    ),
    "mim": MethodInfo(
        "masked",
        "masked image modelling: 60 % of 32-px patches zeroed, the U-Net reconstructs "
        "them (MSE on masked pixels, per-patch normalised targets); a masked-input "
        "U-Net, simpler than SparK's sparse convolutions",
        "Tian et al. 2023 (SparK) mask ratio and patch; He et al. 2022 (MAE) AdamW "
        "lr 1.5e-4/256, β (0.9, 0.95), wd 0.05, norm_pix_loss",
        "encoder and U-Net decoder",
        {"optimizer": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.05},
        {"optimizer": "adamw", "base_lr": 1.5e-3, "weight_decay": 0.05},
        trains_decoder=True,
    ),
}


@dataclass(frozen=True)
class PretrainConfig:
    """Self-supervised pretraining run (defaults: the study's ``paper`` preset, BYOL).

    Attributes:
        data: prepared cache or source folder.
        out: run directory.
        init: weight source (``random``, ``imagenet`` or a file; see ``medssl weights``).
        init_layout: force the weight file's layout (``None`` detects it).
        trust_pickle: allow unpickling a trusted legacy weight file.
        arch: timm encoder name.
        method: the self-supervised method (:data:`METHODS`; ``byol``: the study's).
        optimizer: ``lars`` (solo-learn's LARS, bias and norm parameters excluded from
            weight decay and adaptation), ``sgd`` (momentum SGD, weight decay on every
            parameter, as solo-learn) or ``adamw`` (β = (0.9, 0.95), MAE's).
        objective: the objectives' own settings (temperatures, queue, weights, masks).
        epochs: passes over the unlabelled pool; the schedules span them.
        stop_epoch: stop after this many epochs while keeping the schedules of
            ``epochs`` (the study's hierarchical encoders are epoch 25 of a 401-epoch
            run; ``None``: run all epochs).
        max_steps: stop after this many steps, the schedules shortened to them
            (``None``: epochs decide).
        batch_size: per-device batch; the learning rate scales with the total batch.
        crop: view size in pixels.
        base_lr: learning rate per 256 samples (solo-learn scaling:
            ``lr = base_lr · total batch / 256``).
        weight_decay, lars_eta, lars_clip, momentum: optimiser settings (eta and clip:
            LARS only; momentum: LARS and SGD).
        warmup_epochs: linear warmup length (solo-learn ``warmup_cosine``, stepped per
            optimisation step) before the cosine decay to 0.
        warmup_start_lr: learning rate of the first warmup step (absolute).
        loss_reduction: ``sum`` (solo-learn: the two directions' losses added, range
            0–8) or ``mean`` (their average, range 0–4; halves the step).
        views: augmentation of the two views (``size`` is taken from ``crop``).
        tau_base, tau_end: target EMA momentum schedule end points (methods with an EMA
            network: byol, mocov2, dino, densecl).
        heads: projector/predictor sizes (``proj_out``: DINO's bottleneck).
        ckpt_every_steps: also write the resume checkpoint every N steps (0: epoch ends).
        log_every_steps: metric logging interval.
        max_bad_steps: abort after this many consecutive non-finite losses (each is
            skipped).
        collapse_fraction, collapse_patience: flag representation collapse when the
            online projections' spread stays below ``fraction/√D`` for ``patience`` steps.
        split_seed: ``None``: the cache's split, written once by ``medssl data prepare``;
            an int: the default split drawn with that seed (non-ACDC ids).
        split: a split file (medssl ``split.json``, or nnU-Net ``splits_final.json`` with
            ``split_fold``) in place of the cache's split; see
            :mod:`medssl.data.split_files`.
        split_fold: fold of an nnU-Net split file (``None``: 0).
        target_spacing: in-plane spacing (mm) a source folder's cache is resampled to
            (``medssl data prepare --target-spacing``); ``None``: the native grid. A
            prepared cache given as ``data`` must have been prepared at this spacing.
        runtime: hardware settings.
    """

    data: str = ""
    out: str = ""
    init: str = "random"
    init_layout: str | None = None
    trust_pickle: bool = False
    arch: str = "resnet50"
    method: str = "byol"
    optimizer: Literal["lars", "sgd", "adamw"] = "lars"
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
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
    split: str | None = None
    split_fold: int | None = None
    target_spacing: float | None = None
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r} (known: {', '.join(METHODS)})")

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


def method_overrides(method: str, preset_name: str) -> dict:
    """The overrides that turn pretraining preset ``preset_name`` into ``method``'s
    recipe (for BYOL only ``method``: the presets are BYOL's)."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    info = METHODS[method]
    return {"method": method, **(info.small if preset_name == "cpu-small" else info.recipe)}


def pretrain_preset(
    name: str, method: str = "byol", overrides: list[str] | dict | None = None
) -> PretrainConfig:
    """A pretraining config: preset ``name``, then ``method``'s recipe
    (:func:`method_overrides`), then ``overrides`` (``key=value`` strings or a mapping)."""
    cfg = preset(PretrainConfig, PRETRAIN_PRESETS, name)
    cfg = apply_overrides(cfg, method_overrides(method, name))
    return apply_overrides(cfg, overrides or [])


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
        init_decoder: a pretraining run's ``decoder_*.safetensors`` (methods that train
            the decoder: ``mim``) loaded into the U-Net decoder, every key matched
            (``None``: random decoder).
        arch: timm encoder name.
        labelled_slices: slice budget (``None`` with ``labelled_patients=None``: all).
        labelled_patients: patient budget (ED and ES of N training patients).
        labelled: an explicit labelled set in place of a drawn budget: a JSON file of
            patient ids or ``[patient, frame, slice]`` triples, all in ``train``
            (:mod:`medssl.data.split_files`).
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
        split: a split file (medssl ``split.json``, or nnU-Net ``splits_final.json`` with
            ``split_fold``) in place of the cache's split; see
            :mod:`medssl.data.split_files`.
        split_fold: fold of an nnU-Net split file (``None``: 0).
        target_spacing: in-plane spacing (mm) a source folder's cache is resampled to
            (``medssl data prepare --target-spacing``); ``None``: the native grid. A
            prepared cache given as ``data`` must have been prepared at this spacing.
        runtime: hardware settings.
    """

    data: str = ""
    out: str = ""
    init: str = "random"
    init_layout: str | None = None
    trust_pickle: bool = False
    init_decoder: str | None = None
    arch: str = "resnet50"
    labelled_slices: int | None = None
    labelled_patients: int | None = None
    labelled: str | None = None
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
    split: str | None = None
    split_fold: int | None = None
    target_spacing: float | None = None
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


#: config keys added after studies were first committed, with their defaults: left out
#: of a run's identity at the default, so the ids (and the committed runs) stay valid
LATER_DEFAULTS: dict[str, Any] = {
    "method": "byol",
    "optimizer": "lars",
    "objective": to_dict(ObjectiveConfig()),
    "init_decoder": None,
    "split": None,
    "split_fold": None,
    "labelled": None,
    "target_spacing": None,
}

#: runtime settings whose default changed after studies were first committed: the new
#: default counts as the old one in a run's identity. ``compile: auto`` is eager
#: wherever those runs ran (CPUs) and only a speed setting elsewhere (parameter names,
#: checkpoints and the computation are the same compiled or not).
CHANGED_RUNTIME_DEFAULTS: dict[str, tuple[Any, Any]] = {"compile": ("auto", False)}


def config_identity(cfg: Any) -> dict:
    """The dict that says which run a run config (or a study job) describes: the config
    without the :data:`LATER_DEFAULTS` keys at their defaults, with the
    :data:`CHANGED_RUNTIME_DEFAULTS` read as the old defaults. Two configs with the same
    identity are the same run (a study's job id hashes it; a resumed run must match)."""
    d = to_dict(cfg)
    for key, default in LATER_DEFAULTS.items():
        if key in d and d[key] == default:
            d.pop(key)
    runtime = d.get("runtime")
    if isinstance(runtime, dict):
        for key, (new, old) in CHANGED_RUNTIME_DEFAULTS.items():
            if runtime.get(key) == new:
                runtime[key] = old
    return d


def world_size(runtime: RuntimeConfig) -> int:
    """Total processes of a run (devices per node × nodes)."""
    return runtime.devices * runtime.num_nodes
