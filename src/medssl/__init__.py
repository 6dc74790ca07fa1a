"""medssl: self-supervised pretraining of segmentation encoders for 2D medical images."""

import os

__version__ = "0.1.0"

# Intel MKL (PyTorch's CPU BLAS) may return different last bits from run to run for the
# same inputs unless its conditional numerical reproducibility mode is on; without it, a
# fine-tune (whose batched crop-resize is a batched matmul) ended differently in about
# one process in five, so a resumed run could not match an uninterrupted one. MKL reads
# the mode once, at its first call, so it is set here, before any computation; a value
# the user exported wins. See docs/reliability.md.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
