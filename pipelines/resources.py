"""Resources injected into the assets."""


import os

import dagster as dg

from adt.config import Profile, get_profile


class AdtSettings(dg.ConfigurableResource):
    """Run-wide settings: the profile (see ``adt.config``), the dataset mirror and check thresholds."""

    profile: str = os.environ.get("ADT_PROFILE", "demo")
    mirror: str = os.environ.get("ADT_DATA_MIRROR", "")
    #: quantization_stats check: the largest share of onsets lost to conflict or far
    #: (per dataset, ground-truth beats) that still passes.
    max_unquantizable_ratio: float = 0.25

    def get_profile(self) -> Profile:
        return get_profile(self.profile)

    def get_mirror(self) -> str | None:
        return self.mirror or None
