"""The artifacts layer: every file medssl writes or reads between steps, typed.

The lowest layer above :mod:`medssl.overrides` and :mod:`medssl.errors`: the cache's
manifest (:class:`CacheManifest`), a run's directory (:class:`RunDir`), a study's
folder (:class:`StudyDir`), the study table's rows (:mod:`~medssl.artifacts.table`),
the patient split (:class:`Split`) and the dataset's labels (:class:`LabelSet`). Every
file is written through one atomic writer (:func:`atomic_write`). No other module
names one of these files by string.
"""

from medssl.artifacts.atomic import atomic_write, write_json, write_text
from medssl.artifacts.labels import ACDC_LABELS, LabelSet
from medssl.artifacts.manifest import CacheManifest, CachePaths
from medssl.artifacts.rundir import RunDir
from medssl.artifacts.split import OFFICIAL_TEST, SPLIT_NAMES, Split
from medssl.artifacts.study import StudyDir

__all__ = [
    "ACDC_LABELS",
    "OFFICIAL_TEST",
    "SPLIT_NAMES",
    "CacheManifest",
    "CachePaths",
    "LabelSet",
    "RunDir",
    "Split",
    "StudyDir",
    "atomic_write",
    "write_json",
    "write_text",
]
