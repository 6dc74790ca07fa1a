"""medssl: self-supervised pretraining of segmentation encoders for 2D medical images.

Importing the package has no side effects; the run entry points apply MKL's
reproducibility settings (:mod:`medssl.training.reproducible`).
"""

__version__ = "0.1.0"
