"""The patient split: which patients train, validate and test.

Written once, by ``medssl data prepare``, into the cache manifest (and beside it as
``split.json`` for people and other tools); every run reads it from there and keeps a
copy in its own directory (nnU-Net's ``splits_final.json`` habit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from medssl.artifacts.atomic import read_json, write_json

#: Name of the split holding the official ACDC ``testing/`` patients (key in split.json).
OFFICIAL_TEST = "official-test"

#: Names accepted by :meth:`Split.of`.
SPLIT_NAMES = ("train", "val", "test", OFFICIAL_TEST)


@dataclass(frozen=True)
class Split:
    """Patient ids per split and how they were chosen.

    ``official_test`` holds the patients of an official held-out folder (ACDC
    ``testing/``); they are kept out of ``train``/``val``/``test``. In ``split.json``
    its key is ``"official-test"`` (absent from files written before it existed).
    """

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    scheme: str
    seed: int | None = None
    official_test: tuple[str, ...] = ()

    def of(self, name: str) -> tuple[str, ...]:
        table = {
            "train": self.train,
            "val": self.val,
            "test": self.test,
            OFFICIAL_TEST: self.official_test,
            "official_test": self.official_test,
        }
        if name not in table:
            raise KeyError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_NAMES)}")
        return table[name]

    def to_dict(self) -> dict:
        d = asdict(self)
        d[OFFICIAL_TEST] = list(d.pop("official_test"))
        for key in ("train", "val", "test"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        return cls(
            tuple(d["train"]),
            tuple(d["val"]),
            tuple(d["test"]),
            d["scheme"],
            d.get("seed"),
            tuple(d.get(OFFICIAL_TEST, ())),
        )

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Split:
        return cls.from_dict(read_json(path))
