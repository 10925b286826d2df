"""Resources injected into the assets."""


import os

import dagster as dg

from adt.config import Profile, get_profile


class AdtSettings(dg.ConfigurableResource):
    """Run-wide settings: the profile (see ``adt.config``), the dataset mirror and check thresholds."""

    profile: str = os.environ.get("ADT_PROFILE", "demo")
    mirror: str = os.environ.get("ADT_DATA_MIRROR", "")
    #: quantization_stats check: the largest share of onsets lost to conflict or far
    #: (ground-truth beats) that still passes, per dataset; others use max_unquantizable_ratio.
    quantization_thresholds: dict[str, float] = {"demo": 0.05, "groove": 0.25, "egmd": 0.25, "slakh": 0.25,
                                                  "mdb": 0.10}
    max_unquantizable_ratio: float = 0.25
    #: audio the beat tracker listens to for mixtures: "mix" or "separated" (the drum stem)
    beat_input: str = "mix"
    #: tatums per beat: 4 (16th notes in 4/4), or 3 / 6 for triplet feels
    tatum_subdivisions: int = 4
    #: Optuna study storage for the GRU LM sweep: "" = SQLite file under data/, or any RDB URL
    optuna_storage: str = ""
    #: transcriber input (adt.features): "log_mel" (tatum paper, 80 bins) or "log_filtered" (thesis, 84 bins)
    feature_type: str = "log_mel"
    #: thesis target widening: frames next to an onset get 0.5
    target_widening: bool = False
    #: transcriber loss weighting (adt.frame.recipe): "beta" (tatum paper Eq. 10) or "infrequency" (thesis Sec. 5.2)
    loss_weighting: str = "beta"

    def get_profile(self) -> Profile:
        return get_profile(self.profile)

    def get_mirror(self) -> str | None:
        return self.mirror or None
