"""Disclosure settings of one study: set by the study, never by a client.

The defaults are dsBase 6.3.0's (``default.nfilter.*`` options of its DATASHIELD configuration).
The R server functions receive them from the bridge as a list, never through a global R option
that a client call could change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DisclosureSettings:
    nfilter_tab: float = 3
    nfilter_subset: float = 3
    nfilter_glm: float = 0.33
    nfilter_string: float = 80
    nfilter_stringShort: float = 20  # noqa: N815 (dsBase's name)
    nfilter_kNN: float = 3  # noqa: N815 (dsBase's name)
    nfilter_levels_density: float = 0.33
    nfilter_levels_max: float = 40
    nfilter_noise: float = 0.25
    privacy_level: float = 5
    privacy_control_level: str = "banana"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "privacy_control_level":
                if value not in ("permissive", "banana", "non-permissive", "avocado"):
                    raise ValueError(f"unknown privacy control level {value!r}")
            elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    def as_r_list(self) -> dict[str, Any]:
        """The names and values ``dsBase::listDisclosureSettingsDS()`` returns."""
        return {
            "datashield.privacyControlLevel": self.privacy_control_level,
            "nfilter.tab": float(self.nfilter_tab),
            "nfilter.subset": float(self.nfilter_subset),
            "nfilter.glm": float(self.nfilter_glm),
            "nfilter.string": float(self.nfilter_string),
            "nfilter.stringShort": float(self.nfilter_stringShort),
            "nfilter.kNN": float(self.nfilter_kNN),
            "nfilter.levels.density": float(self.nfilter_levels_density),
            "nfilter.levels.max": float(self.nfilter_levels_max),
            "nfilter.noise": float(self.nfilter_noise),
            "nfilter.privacy.old": float(self.privacy_level),
        }
