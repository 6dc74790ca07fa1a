"""medssl: self-supervised pretraining of segmentation encoders for 2D medical images."""

__version__ = "0.1.0"
