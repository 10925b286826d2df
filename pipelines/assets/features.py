"""Features (library: adt.features): spectrograms and frame targets at 100 fps, 4-s segment shards,
training-set statistics per training combination."""

from pathlib import Path

import dagster as dg

from adt.features import index
from pipelines.metadata import mapping_table, markdown_tables
from pipelines.resources import AdtSettings


@dg.asset(group_name="features", code_version=index.VERSION,
          description="Input features of each track's drum signal (the separated stem for mixtures, else the drum "
                      "recording): log mel (tatum paper: 44.1 kHz, Hann 2048, hop 441, 80 bands 20 Hz-20 kHz) or log "
                      "filtered (thesis 5.1.1: 12 bands/octave around 440 Hz, 84 bins) per AdtSettings.feature_type; "
                      "5-class frame targets at 100 fps (optional target widening); training shards of 4-s segments "
                      "per dataset and split; per training combination: mean/std per bin and infrequency weights.")
def features(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict, onsets: dict,
             drum_stems: dict) -> dg.Output[index.FeatureIndex]:
    config = settings.settings()
    try:
        value = index.build_features(tracks, onsets, drum_stems, config.feature_type, config.target_widening,
                                     config.get_profile().train_combinations, context.log.info,
                                     config.get_profile().transcriber_input)
    except ValueError as exc:
        raise dg.Failure(f"AdtSettings.feature_type: {exc}") from None
    # shard and statistics folders by name (long paths would not fit a table); their parent folder as one path
    shards = [Path(p) for splits in value.shards.values() for p in splits.values()]
    return dg.Output(value, data_version=dg.DataVersion(value.key),
                     metadata={"tracks": len(value.tracks), "frames": value.frames(),
                               **mapping_table("shards", {d: {s: Path(p).name for s, p in splits.items()}
                                                          for d, splits in value.shards.items()}, key="dataset"),
                               "shards_folder": dg.MetadataValue.path(str(shards[0].parent)) if shards else "none",
                               "feature_type": value.feature_type, "n_bins": value.feature_params["n_bins"],
                               "target_widening": value.target_widening,
                               **markdown_tables("training_stats", value.stats_table()),
                               **mapping_table("training_stats_folders", {n: Path(m["dir"]).name
                                                                  for n, m in value.combinations.items()},
                                               key="training sets", value="folder")})
