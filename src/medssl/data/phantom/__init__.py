"""Synthetic short-axis cardiac cine-MRI in the official ACDC layout.

Modules: priors and draws in :mod:`~medssl.data.phantom.sampling`, rendering in
:mod:`~medssl.data.phantom.render` (heart in :mod:`~medssl.data.phantom.heart` and
:mod:`~medssl.data.phantom.rv`, background in :mod:`~medssl.data.phantom.body`, image
formation in :mod:`~medssl.data.phantom.imaging`, slice geometry in
:mod:`~medssl.data.phantom.geometry`); :mod:`~medssl.data.phantom.generate` writes the
files and the truth.
"""

from medssl.data.phantom.generate import (
    GROUP_PRIORS,
    GROUPS,
    LV_LABEL,
    MYO_LABEL,
    MYOCARDIUM_DENSITY_G_PER_ML,
    RV_LABEL,
    TRUTH_FILE,
    Acquisition,
    GroupPrior,
    PhantomTruth,
    generate_phantom,
    read_phantom_truth,
    render_cine,
    sample_acquisition,
    sample_appearance,
    sample_body,
    sample_heart,
)

__all__ = [
    "GROUPS",
    "GROUP_PRIORS",
    "LV_LABEL",
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "MYO_LABEL",
    "RV_LABEL",
    "TRUTH_FILE",
    "Acquisition",
    "GroupPrior",
    "PhantomTruth",
    "generate_phantom",
    "read_phantom_truth",
    "render_cine",
    "sample_acquisition",
    "sample_appearance",
    "sample_body",
    "sample_heart",
]
