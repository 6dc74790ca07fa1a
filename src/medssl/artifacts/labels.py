"""The dataset's labels: values, names, which are foreground, and structure roles.

One :class:`LabelSet` is read from the source (a reader declares it), stored in the
cache manifest and passed to everything that names or interprets a label: metrics
(column names), clinical indices (which structures they need), the study table and
figures, the phantom. ACDC's set is defined once, here (:data:`ACDC_LABELS`).

Roles tie a label to an anatomical meaning that a computation needs, independent of
its name or value: ``lv_cavity``, ``lv_myocardium``, ``rv_cavity``. Cardiac clinical
indices are computed only for a label set with all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Roles that cardiac clinical indices need (LV/RV volumes and EF, myocardial mass).
CARDIAC_ROLES = ("lv_cavity", "lv_myocardium", "rv_cavity")

#: Reporting names that imply a role when a dataset declares no roles itself
#: (ACDC's names, as nnU-Net conversions of ACDC keep them).
_ROLE_OF_NAME = MappingProxyType({"LV": "lv_cavity", "MYO": "lv_myocardium", "RV": "rv_cavity"})


@dataclass(frozen=True)
class LabelSet:
    """Label values and their names; value 0 is background.

    Attributes:
        names: ``{value: name}`` for every value including background (0).
        roles: ``{role: value}`` for the anatomical roles a computation may need
            (see :data:`CARDIAC_ROLES`); empty when the dataset declares none.
    """

    names: Mapping[int, str]
    roles: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {int(k): str(v) for k, v in dict(self.names).items()}
        names.setdefault(0, "background")
        if any(k < 0 or k > 255 for k in names):
            raise ValueError(f"label values must be in 0..255, got {sorted(names)}")
        roles = {str(k): int(v) for k, v in dict(self.roles).items()}
        unknown = {r: v for r, v in roles.items() if v not in names or v == 0}
        if unknown:
            raise ValueError(f"roles {unknown} name labels outside {sorted(names)}")
        object.__setattr__(self, "names", MappingProxyType(dict(sorted(names.items()))))
        object.__setattr__(self, "roles", MappingProxyType(roles))

    @classmethod
    def from_names(cls, names: Mapping[int | str, str]) -> LabelSet:
        """A label set from ``{value: name}``, with roles inferred from ACDC's names
        (``RV``, ``MYO``, ``LV``) when every one of them is present."""
        parsed = {int(k): str(v) for k, v in names.items()}
        by_name = {v: k for k, v in parsed.items()}
        roles = {}
        if all(n in by_name for n in _ROLE_OF_NAME):
            roles = {role: by_name[n] for n, role in _ROLE_OF_NAME.items()}
        return cls(parsed, roles)

    @property
    def values(self) -> tuple[int, ...]:
        """Every declared value, background included, ascending."""
        return tuple(self.names)

    @property
    def foreground(self) -> tuple[int, ...]:
        """The non-background values, ascending."""
        return tuple(v for v in self.names if v != 0)

    @property
    def foreground_names(self) -> tuple[str, ...]:
        return tuple(self.names[v] for v in self.foreground)

    @property
    def num_classes(self) -> int:
        """Network output channels: the largest value + 1."""
        return max(self.names) + 1

    def name(self, value: int) -> str:
        """Reporting name of ``value`` (``class<k>`` for an undeclared value)."""
        return self.names.get(int(value), f"class{int(value)}")

    def has_roles(self, *roles: str) -> bool:
        return all(r in self.roles for r in roles)

    @property
    def cardiac(self) -> bool:
        """True when the set names the structures of the cardiac clinical indices."""
        return self.has_roles(*CARDIAC_ROLES)

    def to_dict(self) -> dict:
        return {
            "names": {str(k): v for k, v in self.names.items()},
            "roles": dict(self.roles),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> LabelSet:
        """Inverse of :meth:`to_dict`; a plain ``{value: name}`` mapping (manifests of
        earlier versions) goes through :meth:`from_names`."""
        if "names" in data and isinstance(data["names"], Mapping):
            return cls(data["names"], data.get("roles") or {})
        return cls.from_names(data)


#: ACDC: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity (Bernard et al. 2018).
ACDC_LABELS = LabelSet(
    {0: "background", 1: "RV", 2: "MYO", 3: "LV"},
    {"rv_cavity": 1, "lv_myocardium": 2, "lv_cavity": 3},
)

#: The label set of an unlabelled pool (background only).
UNLABELLED = LabelSet({0: "background"})
