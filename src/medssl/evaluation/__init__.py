"""Evaluation: 2D/3D segmentation metrics and cardiac clinical indices."""

from medssl.evaluation.clinical import (
    ACDC_LABELS,
    MYOCARDIUM_DENSITY_G_PER_ML,
    clinical_indices,
    ejection_fraction,
    index_errors,
    structure_volume_ml,
    voxel_volume_ml,
)
from medssl.evaluation.counts import SegmentationCounts
from medssl.evaluation.metrics import (
    CLASS_NAMES,
    FOREGROUND,
    VolumeMetrics,
    class_means,
    dice_2d,
    iou_2d,
    mean_dice,
    mean_iou,
    mean_score,
    soft_jaccard_loss,
    soft_jaccard_loss_from_logits,
    surface_distances,
    volume_metrics,
)

__all__ = [
    "ACDC_LABELS",
    "CLASS_NAMES",
    "FOREGROUND",
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "SegmentationCounts",
    "VolumeMetrics",
    "class_means",
    "clinical_indices",
    "dice_2d",
    "ejection_fraction",
    "index_errors",
    "iou_2d",
    "mean_dice",
    "mean_iou",
    "mean_score",
    "soft_jaccard_loss",
    "soft_jaccard_loss_from_logits",
    "structure_volume_ml",
    "surface_distances",
    "volume_metrics",
    "voxel_volume_ml",
]
