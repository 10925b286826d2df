"""Shared-encoder separation (interleaved multitask paper): model, Algorithms 1 and 2, BSSEval v4, stems.

Real audio: a real MDB Drums drum recording (the drums) under a band rendered on its annotated beats
(:func:`adt.data.accompaniment.band_parts`), the band split at 250 Hz into ``bass`` and ``other``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import butter, sosfiltfilt

from adt.audio import read_audio, write_audio
from adt.separation import bsseval, procedures, stem_data
from adt.separation.unet import SharedEncoderSeparator, UNetConfig, count_parameters, decoder_widths, encoder_widths

torch.set_num_threads(2)
SR = 44100
TINY = UNetConfig(width=4, freq_pool=2, patch_frames=33)


def _beats(annotation, seconds: float) -> list[float]:
    onsets = sorted(float(line.split()[0]) for line in annotation.read_text().splitlines() if line.strip())
    start, beat = onsets[0], 60.0 / 120.0
    return list(np.arange(start, seconds, beat))


@pytest.fixture(scope="module")
def stem_tracks(mdb_track, tmp_path_factory) -> list[dict]:
    """Three 6-s tracks of the real MDB drum recording (different excerpts) with a rendered band:
    ``mix``, ``drums``, ``bass``, ``other`` wav paths (drums + bass + other = mix)."""
    from adt.data.accompaniment import band_parts

    root = tmp_path_factory.mktemp("stems")
    audio, sr = read_audio(mdb_track["wav"])
    out = []
    for k in range(3):
        excerpt = audio[..., k * 6 * sr: (k + 1) * 6 * sr]
        drums, band = band_parts(excerpt, sr, _beats(mdb_track["annotation"], 6.0), [], seed=k)
        sos = butter(4, 250, "low", fs=sr, output="sos")
        bass = sosfiltfilt(sos, band, axis=-1).astype(np.float32)
        parts = {"drums": drums, "bass": bass, "other": band - bass}
        parts["mix"] = parts["drums"] + parts["bass"] + parts["other"]
        out.append({s: str(write_audio(root / f"{k}" / f"{s}.wav", a, sr)) for s, a in parts.items()})
    return out


# --------------------------------------------------------------------------------------------- model


def _conv(cin: int, cout: int, kh: int, kw: int) -> int:
    return cin * cout * kh * kw + cout + 2 * cout  # weights, bias, batch norm (scale, shift)


def test_architecture_follows_table_1():
    """Paper Sec. 2.2: the first three layers 16 maps, five downsamplings doubling 16 -> 256; encoder+ widens the
    first three layers to 32 (Sec. 4.4); decoders compute the same maps. Parameter counts by formula."""
    assert encoder_widths(UNetConfig()) == [16, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256]
    assert encoder_widths(UNetConfig(encoder_plus=True)) == [32, 32, 32, 32, 32, 64, 64, 128, 128, 256, 256]

    def encoder_params(w):
        n = _conv(2, w[0], 5, 6)
        for i in range(1, 11, 2):
            n += _conv(w[i - 1], w[i], 4, 4) + _conv(w[i], w[i + 1], 3, 3)
        return n

    def decoder_params(w):
        skips, n, inp = w[::2][::-1], 0, w[-1]
        for width, skip in zip([128, 64, 32, 16, 16], skips[1:]):
            n += _conv(inp, width, 3, 3)
            inp = width + skip
        return n + inp * 8 * 3 * 2 + 8  # last 3 x 2 convolution to 2 channels x 4 maps (no batch norm)

    for plus in (False, True):
        model = SharedEncoderSeparator(UNetConfig(encoder_plus=plus))
        w = encoder_widths(model.config)
        assert count_parameters(model.encoder) == encoder_params(w)
        assert count_parameters(model.decoders["drums"]) == decoder_params(w)
        assert [st[0].out_channels for st in model.decoders["drums"].stages] == decoder_widths(UNetConfig())
    base, plus = SharedEncoderSeparator(UNetConfig()), SharedEncoderSeparator(UNetConfig(encoder_plus=True))
    assert count_parameters(base) == 2_976_168 and count_parameters(plus) == 3_013_880  # encoder+: +1.3 %
    one = SharedEncoderSeparator(UNetConfig(sources=("drums",)))
    assert count_parameters(base) < 3 * count_parameters(one)  # shared encoder: fewer than 3 networks
    with pytest.raises(ValueError, match="patch_frames"):
        UNetConfig(patch_frames=64)


def test_paper_output_is_a_relu_magnitude_without_post_processing(stem_tracks):
    """Sec. 2.2: ReLU magnitudes, no soft mask, no post-processing: an independent network's estimate does not
    depend on the other sources' networks; the ratio-mask variant sums to the mixture."""
    torch.manual_seed(0)
    mix, _ = read_audio(stem_tracks[0]["mix"])
    x = torch.from_numpy(mix)
    nets = {s: SharedEncoderSeparator(dataclasses.replace(TINY, sources=(s,))) for s in ("drums", "bass", "other")}
    spec = nets["drums"].stft(x[None])
    magnitudes = nets["drums"].estimates(spec)
    assert magnitudes["drums"].shape == spec.shape and float(magnitudes["drums"].min()) >= 0.0
    alone = procedures.separate_with({"drums": nets["drums"]}, mix)["drums"]
    together = procedures.separate_with(nets, mix)["drums"]
    np.testing.assert_allclose(alone, together, atol=1e-6)
    other = dict(nets, bass=SharedEncoderSeparator(dataclasses.replace(TINY, sources=("bass",))))
    np.testing.assert_allclose(procedures.separate_with(other, mix)["drums"], alone, atol=1e-6)
    ratio = procedures.separate_with(nets, mix, ratio_masks=True)
    assert np.abs(sum(ratio.values()) - mix).max() < 1e-4 * np.abs(mix).max()
    assert np.abs(ratio["drums"] - alone).max() > 1e-3  # the variant differs
    masked = SharedEncoderSeparator(dataclasses.replace(TINY, output="mask"))
    est = masked.estimates(spec)
    assert bool((est["drums"] <= spec.abs() + 1e-6).all())  # a soft mask never exceeds the mixture


def test_payload_round_trip_gives_the_same_separation(stem_tracks, tmp_path):
    from adt.separation import separator

    model = SharedEncoderSeparator(TINY)
    path = tmp_path / "m.pt"
    torch.save(model.payload(), path)
    loaded = separator.from_argument(str(path))
    mix, sr = read_audio(stem_tracks[0]["mix"])
    a = loaded.separate(mix, sr)["drums"]  # adt separate: ratio masks, so the stems sum to the mixture
    b = model.eval().separate(torch.from_numpy(mix), ratio_masks=True)["drums"].numpy()
    np.testing.assert_allclose(a, b, atol=1e-6)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.pt"):
        separator.from_argument(str(tmp_path / "bad.pt"))


def test_long_input_is_separated_in_crossfaded_chunks(stem_tracks, tmp_path, monkeypatch):
    """Memory bounded by one chunk (issue 14): a long input runs in chunks cross-faded linearly; the estimates
    still sum to the mixture, keep its shape and stay close to the whole-track pass (they differ where a chunk's
    first patch lacks left context, as at a track's start)."""
    from adt.audio import crossfaded_chunks
    from adt.separation import separator

    x = np.random.default_rng(0).standard_normal((2, 10_001)).astype(np.float32)
    np.testing.assert_allclose(crossfaded_chunks(lambda c: {"x": c}, x, 3000, 500, 100)["x"], x, atol=1e-6)
    model = SharedEncoderSeparator(TINY)
    torch.save(model.payload(), tmp_path / "m.pt")
    mix = np.concatenate([read_audio(t["mix"])[0] for t in stem_tracks], axis=-1)  # 18 s
    whole = separator.from_argument(str(tmp_path / "m.pt")).separate(mix, SR)
    monkeypatch.setattr(separator, "CHUNK_S", 5.0)  # 5 chunks
    chunked = separator.from_argument(str(tmp_path / "m.pt")).separate(mix, SR)
    assert np.abs(sum(chunked.values()) - mix).max() < 1e-4
    for source, estimate in chunked.items():
        assert estimate.shape == mix.shape
        error = estimate - whole[source]
        assert 10 * np.log10((whole[source] ** 2).sum() / (error ** 2).sum()) > 12.0  # measured 18 dB


# ----------------------------------------------------------------------------------------- schedules


def test_algorithm_1_order_every_task_once_per_round_equal_subsets():
    rng = np.random.default_rng(0)
    sizes = {"drums": 10, "bass": 7, "other": 23}
    epoch = procedures.interleaved_schedule(sizes, batch_size=3, rng=rng)
    assert len(epoch) == 7 // 3  # batches of the smallest database
    orders = set()
    for rnd in epoch:
        assert sorted(t for t, _ in rnd) == sorted(sizes)  # each task once per round
        assert all(len(idx) == 3 for _, idx in rnd)
        orders.add(tuple(t for t, _ in rnd))
    for task, n in sizes.items():  # a subset without repeats, in range, as long as the others'
        used = np.concatenate([idx for rnd in epoch for t, idx in rnd if t == task])
        assert len(used) == len(set(used)) == 6 and used.max() < n
    other = procedures.interleaved_schedule(sizes, batch_size=3, rng=rng)
    first = lambda ep: sorted(np.concatenate([i for r in ep for t, i in r if t == "other"]))  # noqa: E731
    assert first(epoch) != first(other)  # random subsets vary across epochs
    many = [tuple(t for t, _ in r) for _ in range(20) for r in procedures.interleaved_schedule(sizes, 3, rng)]
    assert len(set(many) | orders) > 1  # the task order is drawn per round
    with pytest.raises(ValueError, match="batch size"):
        procedures.interleaved_schedule({"a": 2, "b": 9}, batch_size=3, rng=rng)


def _count_steps(model):
    """Count optimizer steps touching the encoder and each decoder; snapshot the encoder per decoder step."""
    enc_params = {id(p) for p in model.encoder.parameters()}
    record = {"encoder": 0, "decoders": [], "encoder_at_decoder_step": []}

    def hook(optimizer, args, kwargs):
        ids = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if ids & enc_params:
            record["encoder"] += 1
        else:
            record["decoders"].append(next(s for s, d in model.decoders.items()
                                           if ids == {id(p) for p in d.parameters()}))
            record["encoder_at_decoder_step"].append(model.encoder.layers[0][0].weight.detach().clone())

    from torch.optim.optimizer import register_optimizer_step_post_hook

    return record, register_optimizer_step_post_hook(hook)


@pytest.mark.parametrize("procedure", ["interleaved", "interleaved_acc"])
def test_algorithm_2_accumulates_encoder_gradients_over_a_round(stem_tracks, procedure):
    independent = stem_data.stem_databases(stem_tracks).train
    model = SharedEncoderSeparator(TINY)
    settings = procedures.ProcedureConfig(rounds=2, batch_size=1, val_every=2, val_excerpts=1)
    record, handle = _count_steps(model)
    try:
        procedures.train_shared(model, independent, independent, procedure, settings, log=lambda m: None)
    finally:
        handle.remove()
    assert sorted(record["decoders"]) == sorted(["drums", "bass", "other"] * 2)
    snaps = record["encoder_at_decoder_step"]
    if procedure == "interleaved_acc":
        assert record["encoder"] == 2  # one encoder step per round
        for r in range(2):  # the encoder does not move between the decoder steps of a round
            assert torch.equal(snaps[3 * r], snaps[3 * r + 1]) and torch.equal(snaps[3 * r], snaps[3 * r + 2])
        assert not torch.equal(snaps[0], snaps[3])
    else:
        assert record["encoder"] == 6  # Algorithm 1: after every mini-batch
        assert not torch.equal(snaps[0], snaps[1])


def test_a_source_added_later_keeps_encoder_and_other_decoders(stem_tracks):
    independent = stem_data.stem_databases(stem_tracks).train
    base = SharedEncoderSeparator(dataclasses.replace(TINY, sources=("drums", "bass")))
    settings = procedures.ProcedureConfig(rounds=2, batch_size=1, val_every=1, val_excerpts=1)
    extended = procedures.add_source(base, "other", independent["other"], independent["other"], settings,
                                     log=lambda m: None)
    assert extended.config.sources == ("drums", "bass", "other")
    before, after = base.state_dict(), extended.state_dict()
    for k, v in before.items():  # encoder (weights and batch-norm statistics) and old decoders unchanged
        assert torch.equal(v, after[k]), k
    assert any(k.startswith("decoders.other") for k in after)


def test_every_procedure_trains_and_separates(stem_tracks):
    dbs = stem_data.stem_databases(stem_tracks)
    dbs = dataclasses.replace(dbs, val=dbs.train, simultaneous_val=dbs.simultaneous)
    settings = procedures.ProcedureConfig(rounds=2, batch_size=1, val_every=1, val_excerpts=1)
    mix, _ = read_audio(stem_tracks[1]["mix"])
    for procedure in procedures.PROCEDURES:
        trained = procedures.train_procedure(procedure, TINY, dbs, settings, log=lambda m: None)
        assert len(trained.models) == (3 if procedure == "independent" else 1)
        assert [h["round"] for h in trained.history][-1] == 2
        est = procedures.separate_with(trained.models, mix, ratio_masks=True)
        assert set(est) == {"drums", "bass", "other"}
        np.testing.assert_allclose(sum(est.values()), mix, atol=1e-4)
        assert float(trained.models[next(iter(trained.models))].input_scale.min()) > 0


def test_each_source_database_has_its_own_split(stem_tracks):
    """Paper Sec. 4.2: a different random training/validation split per source database; extra songs always
    train / validate."""
    pool = [dict(t, drums=f"{k}/drums.wav", bass=f"{k}/bass.wav", other=f"{k}/other.wav") for k, t in
            enumerate(stem_tracks * 10)]
    dbs = stem_data.stem_databases(pool, seed=0, val_fraction=0.3, train_extra=pool[:1], val_extra=pool[1:2])
    val = {s: sorted(Path(it.stems[s]).parent.name for it in db.items) for s, db in dbs.val.items()}
    assert all(len(v) == 9 + 1 for v in val.values())
    assert len({tuple(v) for v in val.values()}) == 3  # three different splits
    for s, db in dbs.train.items():
        assert len(db) == 21 + 1 and {it.targets for it in db.items} == {(s,)}
        assert not {Path(it.stems[s]).parent.name for it in db.items} & set(val[s]) - {"0", "1"}
    assert dbs.simultaneous.items[0].targets == ("drums", "bass", "other")


def test_each_source_is_augmented_alone_and_stays_its_own_target(stem_tracks):
    """Paper Sec. 4.2: random scaling, panning and filtering of each source before the mixture is summed:
    each target is exactly its own augmented source, and the mixture their sum."""
    dbs = stem_data.stem_databases(stem_tracks)
    model = SharedEncoderSeparator(TINY)
    settings = procedures.ProcedureConfig(filter_p=1.0)
    rng = np.random.default_rng(3)
    mixes, targets = stem_data.Excerpts(dbs.simultaneous, model, settings).audio([0, 1, 2, 0], rng)
    np.testing.assert_allclose(mixes, sum(targets.values()), atol=1e-6)
    plain_mix, plain = stem_data.Excerpts(dbs.simultaneous, model, settings, augment=False).audio(
        [0], np.random.default_rng(3))
    np.testing.assert_allclose(plain_mix, sum(plain.values()), atol=1e-6)
    # the sources were scaled differently: their power ratios moved
    gains = {s: np.sqrt((targets[s][0] ** 2).mean() / (plain[s][0] ** 2).mean()) for s in targets}
    assert max(gains.values()) / min(gains.values()) > 1.05
    stereo = np.stack([np.ones(4096, np.float32)] * 2)
    panned = stem_data.augment_source(stereo, np.random.default_rng(1), procedures.ProcedureConfig(filter_p=0.0, gain=(1, 1)))
    assert abs(panned[0].mean() - panned[1].mean()) > 1e-3  # panned
    assert np.isclose((panned ** 2).sum(), (stereo ** 2).sum(), rtol=1e-4)  # constant power


def test_training_stops_early_and_keeps_the_best_state(stem_tracks):
    """Early stopping (paper Sec. 4.2): ``patience`` validations without improvement end training."""
    dbs = stem_data.stem_databases(stem_tracks)
    model = SharedEncoderSeparator(TINY)
    settings = procedures.ProcedureConfig(rounds=50, batch_size=1, val_every=1, val_excerpts=1, patience=2, lr=0.5)
    history, best = procedures.train_shared(model, dbs.train, dbs.train, "interleaved", settings, log=lambda m: None)
    assert history[-1].get("stopped") and history[-1]["round"] < 50
    assert history[-1]["round"] - best == 2
    assert min(h["val_loss"] for h in history) == next(h["val_loss"] for h in history if h["round"] == best)


# ------------------------------------------------------------------------------------------ metrics


def test_bss_eval_identity_and_the_mixture_as_estimate(stem_tracks):
    refs = {"drums": read_audio(stem_tracks[0]["drums"])[0]}
    band = read_audio(stem_tracks[0]["bass"])[0] + read_audio(stem_tracks[0]["other"])[0]
    refs["band"] = band * np.sqrt(np.mean(refs["drums"] ** 2) / np.mean(band ** 2))  # 0 dB
    perfect = bsseval.evaluate(refs, refs)
    assert perfect["drums"]["sdr"] > 60 and perfect["drums"]["windows"] == 6
    mix = refs["drums"] + refs["band"]
    floor = bsseval.evaluate(refs, {"drums": mix, "band": mix})
    assert -3.0 < floor["drums"]["sdr"] < 3.0 and -3.0 < floor["drums"]["sir"] < 3.0  # equal power: about 0 dB
    half = bsseval.evaluate(refs, {"drums": refs["drums"] + 0.1 * refs["band"], "band": refs["band"]})
    assert 15.0 < half["drums"]["sir"] < 25.0  # 20 dB less interference
    assert bsseval.summarize([perfect, floor])["drums"]["tracks"] == 2
    dead = bsseval.evaluate(refs, {"drums": refs["drums"] * 1e-4, "band": refs["band"]})  # -80 dB: a dead decoder
    assert dead["drums"]["silent"] and not dead["band"]["silent"] and not perfect["drums"]["silent"]
    assert bsseval.summarize([perfect, dead])["drums"]["silent"] == 0.5
    from adt.separation.study_choice import choose, degenerate

    results = {"a+ratio": {"ratio_masks": True, "sdr.drums.val": 9.0, "silent.bass.val": 0.5},
               "b+ratio": {"ratio_masks": True, "sdr.drums.val": 2.0, "silent.bass.val": 0.0}}
    assert degenerate(results["a+ratio"], "val") == ["bass"] and choose(results) == "b+ratio"
    with pytest.raises(ValueError, match="silent"):
        bsseval.evaluate({"drums": np.zeros_like(mix), "band": mix}, {"drums": mix, "band": mix})


def test_truncated_or_silent_stem_is_a_clear_error(stem_tracks, tmp_path):
    good = stem_tracks[0]
    silent = write_audio(tmp_path / "silent.wav", np.zeros((2, 4 * SR), dtype=np.float32), SR)
    short = write_audio(tmp_path / "short.wav", np.ones((2, 100), dtype=np.float32) * 0.1, SR)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(open(good["drums"], "rb").read()[:30])
    need = TINY.patch_samples
    for path, what in ((silent, "silent"), (short, "shorter than a training patch"), (broken, "cannot read")):
        item = stem_data.Item({"drums": str(path), "bass": good["bass"]}, ("drums",))
        with pytest.raises(stem_data.StemError, match=what) as err:
            stem_data.check_item(item, SR, need)
        assert str(path) in str(err.value)
    assert stem_data.check_item(stem_data.Item({"drums": good["drums"], "bass": good["bass"]}, ("drums",)), SR,
                                need) == sf.info(good["mix"]).frames


# ------------------------------------------------------------------------------------------ real songs


def test_real_song_stems_and_folds(shared_datasets, tmp_path_factory):
    """The 9 MDB songs' real stems (drums, bass, other summing to the real mix), song-disjoint folds: each fold
    trains 4, validates 2 and tests 3 songs, and the three test folds cover every song once."""
    from adt.data.datasets import mdb
    from adt.data.download import fetch_all
    from adt.separation import real_songs

    root = tmp_path_factory.mktemp("real_stems")
    raw, _ = fetch_all(mdb.REMOTES, root / "downloads", root / "raw", mirror=str(shared_datasets), progress=False)
    songs = real_songs.real_stem_songs(raw, root / "stems")
    assert len(songs) == 9 and all({"drums", "bass", "other"} <= set(s) for s in songs)
    tested = []
    for k in range(3):
        fold = real_songs.fold_songs(songs, k)
        names = {part: {s["name"] for s in v} for part, v in fold.items()}
        assert [len(names[p]) for p in ("train", "val", "test")] == [4, 2, 3]
        assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
        tested += names["test"]
    assert sorted(tested) == sorted(s["name"] for s in songs)
    assert len(real_songs.fold_songs(songs, None)["train"]) == 9
    track = real_songs.evaluation_set(songs[:1], seconds=5.0)[0]
    mix = mdb.render_multitrack(mdb.load_tracks(raw)[songs[0]["track_id"]].multitrack_dir).mix[: 5 * 44100]
    np.testing.assert_allclose(track["mix"][0], mix, atol=4 / 32768)  # 16-bit stems sum to the real mix
    assert track["mix"].shape == (2, 5 * 44100) and all(r.shape == (1, 5 * 44100) for r in track["refs"].values())


# ------------------------------------------------------------------------- demo-sized study (issue 28)


def test_bss_eval_with_prepared_references_equals_museval(stem_tracks):
    """The references' Gram system factorized once per track (bsseval.prepare) gives museval's own figures, per
    window, for every estimate scored against it."""
    sr, n = SR, 3 * SR
    stems = {s: read_audio(stem_tracks[0][s])[0][:, :n] for s in ("drums", "bass", "other")}
    museval = bsseval.bss_eval_module()
    stereo = {"drums": stems["drums"], "band": stems["bass"] + stems["other"]}  # the mdb set's shape
    mono = {s: v.mean(0, keepdims=True) for s, v in stems.items()}  # the real songs' shape
    for refs in (stereo, mono):
        mix = sum(refs.values())
        prepared = bsseval.prepare(refs)
        reference = np.stack([refs[s].T.astype(np.float64) for s in refs])
        for estimates in ({s: 0.7 * r + 0.1 * mix for s, r in refs.items()}, {s: mix / len(refs) for s in refs}):
            stacked = np.stack([estimates[s].T.astype(np.float64) for s in refs])
            sdr, _isr, sir, _sar, _perm = museval.bss_eval(reference, stacked, window=sr, hop=sr)
            ours_sdr, ours_sir = bsseval.bss_eval_v4(prepared, stacked, sr, sr)
            np.testing.assert_allclose(ours_sdr, sdr, atol=1e-6)
            np.testing.assert_allclose(ours_sir, sir, atol=1e-6)
            once = bsseval.evaluate(refs, estimates, sr, prepared=prepared)
            assert once == bsseval.evaluate(refs, estimates, sr)  # prepared here or given: the same figures


def test_fine_tuning_starts_from_the_given_weights(stem_tracks):
    """A procedure started from the shipped separator validates it first (round 0: the shipped network's own
    validation loss) and keeps it when training only makes it worse; independent networks start from its encoder
    and their source's decoder; an architecture it does not have cannot start from it."""
    from adt.separation import separator

    shipped = separator.shipped_network()
    config = dataclasses.replace(shipped.config, patch_frames=33)
    dbs = stem_data.stem_databases(stem_tracks)
    dbs = dataclasses.replace(dbs, val=dbs.train)
    settings = procedures.ProcedureConfig(rounds=1, batch_size=1, val_every=1, val_excerpts=2, lr=5.0)  # ruinous
    start = procedures.initial_model(config, shipped)
    expected = procedures._val_loss(start, procedures._validation_set(dbs.val, start, settings))
    trained = procedures.train_procedure("interleaved", config, dbs, settings, log=lambda m: None, start=shipped)
    assert trained.history[0]["round"] == 0 and trained.history[0]["val_loss"] == pytest.approx(expected, rel=1e-6)
    assert trained.best_round == 0 and trained.history[1]["val_loss"] > expected
    for k, v in shipped.state_dict().items():  # the start kept: no round improved on it
        assert torch.equal(v, trained.models["shared"].state_dict()[k]), k
    bass = procedures.initial_model(dataclasses.replace(config, sources=("bass",)), shipped).state_dict()
    assert set(bass) == {k for k in shipped.state_dict() if not k.startswith(("decoders.drums", "decoders.other"))}
    assert all(torch.equal(v, shipped.state_dict()[k]) for k, v in bass.items())
    with pytest.raises(ValueError, match="cannot start"):
        procedures.initial_model(dataclasses.replace(config, output="magnitude"), shipped)


def _rows(ratio_val: dict) -> dict:
    return {n: {"ratio_masks": True, **({"procedure": "shipped"} if n == "shipped" else {}), **figures}
            for n, figures in ratio_val.items()}


def test_choice_is_never_worse_than_the_shipped_separator():
    """Models that heard the real songs (the shipped separator, models fine-tuned from it) compete on the
    rendered validation songs only: their real_val figures are development figures."""
    from adt.separation.study_choice import choice, choose

    heard = {"heard_real_songs": True}
    results = _rows({"a+ratio": {"sdr.drums.real_val": 5.0, "sdr.drums.val": 1.0},
                     "b+ratio": {"sdr.drums.real_val": 2.0, "sdr.drums.val": 4.0},
                     "shipped": {**heard, "sdr.drums.real_val": 9.0, "sdr.drums.val": 2.0},
                     "tuned+ratio": {**heard, "sdr.drums.real_val": 10.0, "sdr.drums.val": 1.5}})
    # a wins real_val among the held-out models, then loses val to the shipped separator; b never gets there
    assert choose(results) == "shipped" and "real_val" in choice(results) and "shipped" in choice(results)
    results["tuned+ratio"]["sdr.drums.val"] = 3.0
    assert choose(results) == "tuned+ratio"
    results["tuned+ratio"]["silent.bass.val"] = 0.5  # degenerate on the set it competes on: never chosen
    assert choose(results) == "shipped"
    clean = {n: r for n, r in results.items() if not r.get("heard_real_songs")}
    assert choose(clean) == "a+ratio"  # without such models: the real validation songs decide, as before
    rng = np.random.default_rng(0)
    for _ in range(200):
        names = ["a+ratio", "b+ratio", "tuned+ratio", "shipped"]
        rows = _rows({n: {"sdr.drums.val": float(rng.normal()), "sdr.drums.real_val": float(rng.normal()),
                          **(heard if n in ("tuned+ratio", "shipped") else {})} for n in names})
        assert rows[choose(rows)]["sdr.drums.val"] >= rows["shipped"]["sdr.drums.val"]


def test_demo_study_runs_only_its_models_and_fine_tunes_from_shipped(stem_tracks, tmp_path, monkeypatch):
    """``separation_models``: only those models and the mixture (no transfer experiment); the shipped
    architecture fine-tuned from the shipped weights, marked as having heard the real songs; the shipped separator
    a row; the profiles' settings."""
    import pandas as pd

    from adt.config import PROFILES
    from adt.separation import study

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ADT_JOBS", "1")
    demo = study.StudySettings.from_section(PROFILES["demo"].separation)
    standard = study.StudySettings.from_section(PROFILES["standard"].separation)
    assert demo.start_from_shipped and not demo.transfer and "shipped" in demo.model_names()
    assert standard.transfer and standard.model_names() == study.MODELS and not standard.start_from_shipped
    splits = ["train", "train", "validation", "test"]
    tracks = pd.DataFrame([{"track_id": f"demo/{k:03d}", "dataset": "demo", "split": split,
                            "mix_path": t["mix"], "drum_path": t["drums"]}
                           for k, (t, split) in enumerate(zip(stem_tracks + stem_tracks[2:], splits))])
    settings = study.StudySettings(rounds=1, batch_size=1, patch_frames=33, eval_tracks=1, val_tracks=1,
                                   mdb_tracks=0, eval_s=2.0, patience=None, real_test_fold=None,
                                   models=("interleaved_mask", "shipped"), transfer=False, start_from_shipped=True)
    out = study.run_study(tracks, pd.DataFrame(), settings, tmp_path / "study", log=lambda m: None)
    results = out["results"]
    assert set(results) == {"interleaved_mask", "interleaved_mask+ratio", "shipped", "mixture"}
    tuned = results["interleaved_mask+ratio"]
    assert tuned["start"] == "shipped" and tuned["heard_real_songs"] and tuned["history"][0]["round"] == 0
    assert out["started_from_shipped"] == ["interleaved_mask", "interleaved_mask+ratio", "shipped"]
    assert "mixture" not in out["heard_real_songs"] and not results["mixture"].get("heard_real_songs")
    assert results[out["best"]]["sdr.drums.val"] >= results["shipped"]["sdr.drums.val"]
    assert "(fine-tuned from shipped)" in out["tables"]["table2"] and "Shipped separator" in out["tables"]["table2"]
    assert "† heard every real song" in out["tables"]["models"]
    with pytest.raises(ValueError, match="unknown separation models"):
        dataclasses.replace(settings, models=("nope",)).model_names()
