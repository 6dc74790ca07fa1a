"""medssl: self-supervised pretraining of segmentation encoders for 2D medical images."""

import os

__version__ = "0.1.0"

# Intel MKL (PyTorch's CPU BLAS, and its exp/log through MKL's vector maths) may return
# different last bits from run to run for the same inputs: its conditional numerical
# reproducibility mode is off by default, and with dynamic threading it picks how many
# threads (hence how it splits the work) at each call. A CPU fine-tune then ended
# differently in about one process in seven, so a resumed run could not match an
# uninterrupted one. MKL reads both settings once, at its first call, so they are set
# here, before any computation; values the user exported win. See docs/reliability.md.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
