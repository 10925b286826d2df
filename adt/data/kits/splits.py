"""Kit-disjoint splits of the rendered corpora (``Profile.corpus_kits``): data only, no imports,
so that :mod:`adt.config` can name them in its profiles.

No kit group (recordings shared between kits, :data:`adt.data.kits.catalogue.KITS` and
:data:`adt.data.kits.soundfont.SOUNDFONT_KITS`) sits in two splits, and every kit has every class
(kick, snare, toms, hi-hat, cymbals), so no labelled onset is silent. Validation and test use
kits never heard in training, so that validation F measures what transfers to unseen drums.
The one-shot pools (a kit drawn per track) are for training only.
Test holds the Glen MacArthur recordings (GMRockKit = The Black Pearl; AVL's kits share their
hi-hats, splash and a ride).
"""

KIT_DISJOINT_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("h2:ForzeeStereo", "h2:BJA_Pacific", "h2:ColomboAcousticDrumkit", "h2:TR808EmulationKit",
              "h2:Audiophob", "h2:rumpf_kit_z01_h2", "sf:FluidR3_Standard", "sf:FluidR3_Power", "sf:FluidR3_Jazz",
              "sf:FluidR3_Electronic", "pool:sonic-pi-samples", "pool:lmms-common"),
    "validation": ("h2:Millo_MultiLayered2", "h2:Millo-Drums_v.1"),
    "test": ("h2:GMRockKit", "h2:The Black Pearl 1.0", "sf:AVL_BlackPearl4", "sf:AVL_RedZeppelin4"),
}
