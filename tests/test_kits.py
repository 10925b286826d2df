"""Recorded drum kits: Debian's real ``hydrogen-data`` package (GMRockKit, TR808EmulationKit),
fetched from deb.debian.org (SHA-256 pinned) or the mirror folder, unpacked without dpkg."""

from __future__ import annotations

import shutil

import numpy as np
import pretty_midi
import pytest

from adt.data.download import DownloadError
from adt.data.kits.catalogue import kit_catalogue, kit_summary
from adt.data.kits.hydrogen import Layer, Piece, choose_layer, read_kit
from adt.data.kits.packages import PACKAGES, extract_deb, fetch_package
from adt.data.kits.sampler import render_kit

SR = 44100


@pytest.fixture(scope="session")
def kits_root(tmp_path_factory, shared_datasets):
    """A data folder with hydrogen-data fetched and unpacked by the project's own code."""
    root = tmp_path_factory.mktemp("kits_data")
    fetch_package("hydrogen-data", mirror=str(shared_datasets), root=root)
    return root


@pytest.fixture(scope="session")
def gmrock(kits_root):
    return read_kit(fetch_package("hydrogen-data", root=kits_root) / "GMRockKit")


def _notes(*notes: tuple[int, float, int]) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(velocity=v, pitch=p, start=t, end=t + 0.1) for p, t, v in notes]
    pm.instruments.append(drums)
    return pm


def test_gmrockkit_parses_with_its_layers(gmrock):
    assert gmrock.name == "GMRockKit" and gmrock.license == "GPL" and "Glen MacArthur" in gmrock.author
    kick = gmrock.piece("Kick")
    assert len(kick.layers) >= 4 and all(lay.path.is_file() for lay in kick.layers)
    bounds = [(lay.min_velocity, lay.max_velocity) for lay in kick.layers]
    assert bounds[0][0] == 0 and bounds[-1][1] == pytest.approx(1.0)
    assert all(a[1] == pytest.approx(b[0], abs=1e-6) for a, b in zip(bounds, bounds[1:]))  # contiguous
    assert gmrock.skipped == ()


def test_catalogue_maps_reviewed_pieces(kits_root):
    pieces, left_out = kit_catalogue(["hydrogen-data"], root=kits_root)
    summary = kit_summary(pieces).set_index("kit_id")
    assert summary.loc["GMRockKit", ["BD", "SD", "TT", "HH", "CY"]].tolist() == [1, 3, 3, 4, 5]
    assert summary.loc["GMRockKit", "kind"] == "acoustic" and summary.loc["TR808EmulationKit", "kind"] == "electronic"
    assert set(pieces.license) == {"GPL-2+"} and (pieces.sample_rate == SR).all()
    assert {"Cowbell", "Hand Clap"} <= set(left_out[left_out.kit_id == "GMRockKit"].piece)  # cowbells are not cymbals
    assert not set(pieces.piece) & {"Cowbell", "Clap", "Shaker", "Conga", "Clave"}


def test_velocity_picks_the_layer(gmrock):
    kick = gmrock.piece("Kick")
    assert choose_layer(kick, 5) == kick.layers[0] and choose_layer(kick, 127) == kick.layers[-1]
    assert choose_layer(kick, 64).min_velocity <= 64 / 127 <= choose_layer(kick, 64).max_velocity
    a, b = Layer(kick.layers[0].path, 0, 1), Layer(kick.layers[1].path, 0, 1)
    twins = Piece("round robin", (a, b))
    assert [choose_layer(twins, 100, i) for i in range(3)] == [a, b, a]


@pytest.mark.parametrize("pitch", [36, 38, 42, 45, 49, 51])
def test_rendered_onsets_line_up_with_the_midi(gmrock, pitch):
    start = 0.3217
    audio = render_kit(_notes((pitch, start, 100)), gmrock, SR)
    level = np.abs(audio).max(axis=0)
    first = np.flatnonzero(level > 0.05 * level.max())[0] / SR
    assert abs(first - start) <= 0.005 and audio.shape == (2, int(np.ceil((start + 1.0) * SR)))


def test_louder_notes_are_louder(gmrock):
    soft, hard = (np.abs(render_kit(_notes((38, 0.1, v)), gmrock, SR)).max() for v in (30, 120))
    assert hard > 2 * soft


def test_closed_hihat_chokes_the_open_one(gmrock):
    n = int(1.5 * SR)
    both = render_kit(_notes((46, 0.0, 110), (42, 0.3, 110)), gmrock, SR, n)
    closed = render_kit(_notes((42, 0.3, 110)), gmrock, SR, n)
    open_only = render_kit(_notes((46, 0.0, 110)), gmrock, SR, n)
    window = slice(int(0.32 * SR), int(0.8 * SR))
    ring = np.sqrt(np.mean(open_only[:, window] ** 2))
    assert ring > 1e-3  # the open hat rings on
    assert np.abs(both[:, window] - closed[:, window]).max() == 0.0  # ... unless a closed hat cuts it


def test_broken_packages_are_clear_errors(kits_root, tmp_path):
    deb = kits_root / "downloads" / PACKAGES["hydrogen-data"].remote.filename
    truncated = tmp_path / deb.name
    truncated.write_bytes(deb.read_bytes()[: deb.stat().st_size // 2])
    with pytest.raises(DownloadError, match="truncated"):
        extract_deb(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "junk.deb").write_bytes(b"not a package")
    with pytest.raises(DownloadError, match="not a Debian package"):
        extract_deb(tmp_path / "junk.deb", tmp_path / "out")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(truncated, mirror / deb.name)  # a corrupt copy where the mirror should have the real one
    with pytest.raises(DownloadError, match="checksum") as err:
        fetch_package("hydrogen-data", mirror=str(mirror), root=tmp_path / "data")
    assert deb.name in str(err.value) and "place it by hand" in str(err.value)
    assert not (tmp_path / "data" / "kits").exists() and not (tmp_path / "data" / "downloads" / deb.name).exists()
    with pytest.raises(KeyError, match="known"):
        fetch_package("no-such-kit", root=tmp_path)


def test_adt_kits_lists_the_catalogue(kits_root, monkeypatch, capsys):
    from adt.cli import main

    monkeypatch.setenv("ADT_DATA_DIR", str(kits_root))
    assert main(["kits", "--packages", "hydrogen-data", "--left-out"]) == 0
    out = capsys.readouterr().out
    assert "GMRockKit" in out and "TR808EmulationKit" in out and "GPL-2+" in out and "Cowbell" in out
    assert main(["kits", "--packages", "no-such-kit"]) == 2
    assert "no-such-kit" in capsys.readouterr().err


def test_kit_disjoint_splits_hold():
    from adt.data.kits.catalogue import kit_group
    from adt.data.kits.mapping import ARTICULATIONS
    from adt.data.kits.oneshots import POOLS
    from adt.config import KIT_DISJOINT_SPLITS
    from adt.vocab import CLASSES_5
    from adt.data.kits.mapping import PIECES
    from adt.data.kits.soundfont import SOUNDFONT_KITS

    groups = {split: {kit_group(k) for k in kits} for split, kits in KIT_DISJOINT_SPLITS.items()}
    assert not groups["train"] & groups["validation"] and not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    for kits in KIT_DISJOINT_SPLITS.values():
        for kit in kits:
            if kit.startswith("sf:"):  # a SoundFont kit names a key for every articulation
                assert SOUNDFONT_KITS[kit.removeprefix("sf:")].key_of("ride") > 0
                continue
            if kit.startswith("pool:"):  # a one-shot pool has a sample for every class
                assert {ARTICULATIONS[a][0] for a in POOLS[kit.removeprefix("pool:")]} == set(CLASSES_5)
                assert kit in KIT_DISJOINT_SPLITS["train"]
                continue
            classes = {a.split("_")[0] for a in PIECES[kit.removeprefix("h2:")].values()}
            assert {"kick", "snare", "tom", "hh"} <= classes and classes & {"crash", "ride"}, kit


def test_avl_soundfont_kits(kits_root, shared_datasets, monkeypatch):
    """AVL Drumkits (Debian avldrums.lv2-soundfont): 5 velocity layers per key read from the
    SoundFont, every articulation on its reviewed (non-GM) key, onsets within 5 ms of the MIDI."""
    from adt.data.kits.soundfont import SOUNDFONT_KITS, preset_keys, render_soundfont_kit, soundfont_file

    monkeypatch.setenv("ADT_DATA_DIR", str(kits_root))
    monkeypatch.setenv("ADT_DATA_MIRROR", str(shared_datasets))
    pieces, left_out = kit_catalogue(["avldrums.lv2-soundfont"], root=kits_root, mirror=str(shared_datasets))
    summary = kit_summary(pieces).set_index("kit_id")
    assert set(summary.index) == {"AVL_BlackPearl4", "AVL_RedZeppelin4"} and left_out.empty
    assert (pieces.layers == 5).all() and set(pieces.license) == {"CC-BY-SA-3.0"}
    path = soundfont_file("AVL_RedZeppelin4")
    keys = preset_keys(path, 0, 0)
    assert keys[36] == (5, 44100) and 48 in keys  # 48 is a hi-hat swish here, not a GM tom
    for pitch in (36, 38, 42, 45, 48, 49, 51):  # 48 (GM hi-mid tom) plays the rack tom, key 45
        audio = render_soundfont_kit(_notes((pitch, 0.5, 100)), "AVL_RedZeppelin4", SR)
        level = np.abs(audio).max(axis=0)
        first = int(np.argmax(level > 1e-3))
        assert level.max() > 0.01 and abs(first / SR - 0.5) <= 0.005, pitch
    tom = render_soundfont_kit(_notes((48, 0.5, 100)), "AVL_RedZeppelin4", SR)
    assert np.array_equal(tom, render_soundfont_kit(_notes((45, 0.5, 100)), "AVL_RedZeppelin4", SR))
    assert SOUNDFONT_KITS["AVL_RedZeppelin4"].key_of("tom_high") == 45


def test_variation_swaps_pans_detunes_and_equalizes(gmrock, kits_root):
    """A Variation: the donor kit's kick replaces the kit's own; pan moves the level between
    channels; a pitch shift up shortens the sample; a high shelf brightens or dulls the hi-hat;
    no variation renders the kit as it is."""
    from adt.data.kits.sampler import Variation

    tr808 = read_kit(fetch_package("hydrogen-data", root=kits_root) / "TR808EmulationKit")
    pm = _notes((36, 0.1, 100))
    plain = render_kit(pm, gmrock, SR)
    assert np.array_equal(plain, render_kit(pm, gmrock, SR, variation=Variation()))
    swapped = render_kit(pm, gmrock, SR, variation=Variation(donors={"kick": tr808}))
    assert np.allclose(swapped[:, : plain.shape[1]], render_kit(pm, tr808, SR)[:, : plain.shape[1]], atol=1e-6)
    left = render_kit(pm, gmrock, SR, variation=Variation(pan={"kick": -0.5}))
    assert np.abs(left[0]).max() > 2 * np.abs(left[1]).max()
    up = render_kit(pm, gmrock, SR, n_samples=5 * SR, variation=Variation(semitones={"kick": 1.0}))
    down = render_kit(pm, gmrock, SR, n_samples=5 * SR, variation=Variation(semitones={"kick": -1.0}))
    last = lambda a: int(np.nonzero(np.abs(a).max(axis=0) > 0)[0][-1])  # noqa: E731
    assert last(up) < last(down)
    hats = _notes((42, 0.1, 100))
    bright, dull = (render_kit(hats, gmrock, SR, variation=Variation(tilt_db={"hihat": (0.0, g)})) for g in (4.0, -4.0))
    high = lambda a: float(np.sum(np.abs(np.fft.rfft(a[0]))[int(8000 * a.shape[1] / SR):] ** 2))  # noqa: E731
    assert high(bright) > 2 * high(dull)
    drawn = Variation.draw(np.random.default_rng(0), [tr808], swap=1.0)
    assert set(drawn.donors) == {"kick", "snare", "toms", "hihat", "cymbals"} and set(drawn.gain_db) == set(drawn.pan)


def test_groove_drums_rendered_with_a_recorded_kit(kits_root, monkeypatch):
    """render_track with "h2:GMRockKit": the drum stem from the recorded kit
    (onsets where the MIDI has them), the accompaniment from the SoundFont."""
    from adt.data.corpus import render_track

    monkeypatch.setenv("ADT_DATA_DIR", str(kits_root))
    pm = _notes((36, 0.5, 100), (38, 1.0, 100))
    pm.instruments.append(pretty_midi.Instrument(program=0))
    drums, acc = render_track(pm, kit="h2:GMRockKit", seed=3, sample_rate=SR)[:2]
    assert drums.shape == acc.shape and drums.shape[0] == 2
    level = np.abs(drums).max(axis=0)
    assert level[: int(0.49 * SR)].max() == 0 and level[int(0.5 * SR): int(0.6 * SR)].max() > 0.05
    with pytest.raises(ValueError, match="h2:"):
        render_track(pm, kit="no-such-kit", seed=3)


def test_kit_catalogue_of_a_profile(kits_root, monkeypatch):
    """build_kit_catalogue (the kit_catalogue asset): only the packages of the profile's kits,
    cached as Parquet; Merlin's SoundFont kits need no package."""
    import pandas as pd

    from adt.data.kits.catalogue import build_kit_catalogue

    monkeypatch.setenv("ADT_DATA_DIR", str(kits_root))
    info = build_kit_catalogue(["h2:GMRockKit", "h2:TR808EmulationKit", "standard"], mirror="")
    assert info.packages == ["hydrogen-data"] and info.kits == 2 and info.acoustic == 1
    assert set(pd.read_parquet(info.path).kit_id) == {"GMRockKit", "TR808EmulationKit"}
    assert "GPL-2+" in info.summary
    assert build_kit_catalogue(["h2:GMRockKit"], mirror="").key == info.key  # same packages: cached
    empty = build_kit_catalogue(["standard", "jazz"], mirror="")
    assert empty.kits == 0 and empty.packages == [] and pd.read_parquet(empty.path).empty


def test_one_shot_pool_draws_a_kit_per_track(kits_root, shared_datasets, monkeypatch):
    """pool:lmms-common (Debian lmms-common's drum one-shots): a seeded kit of one sample per
    articulation; two seeds draw different kits; onsets within 5 ms; its catalogue rows."""
    from adt.data.corpus import render_drums
    from adt.data.kits.oneshots import POOLS, pool_kit

    monkeypatch.setenv("ADT_DATA_DIR", str(kits_root))
    folder = fetch_package("lmms-common", mirror=str(shared_datasets), root=kits_root)
    a = pool_kit("lmms-common", np.random.default_rng(1), folder)
    assert [p.name for p in a.pieces] == list(POOLS["lmms-common"]) and all(len(p.layers) == 1 for p in a.pieces)
    assert a == pool_kit("lmms-common", np.random.default_rng(1), folder)
    assert any(pool_kit("lmms-common", np.random.default_rng(s), folder) != a for s in range(2, 6))
    for pitch in (36, 38, 42, 47, 49):
        audio = render_drums(_notes((pitch, 0.5, 100)), "pool:lmms-common", SR, SR, np.random.default_rng(3))
        level = np.abs(audio).max(axis=0)
        assert level.max() > 0.01 and abs(int(np.argmax(level > 1e-3)) / SR - 0.5) <= 0.005, pitch
    pieces, _ = kit_catalogue(["lmms-common"], root=kits_root, mirror=str(shared_datasets))
    assert set(pieces.kind) == {"one-shots"} and set(pieces.license) == {"GPL-2+"}
    assert len(pieces) == sum(len(files) for files in POOLS["lmms-common"].values())


def _tree(folder) -> dict[str, object]:
    """Relative path -> size in bytes (files) or link target (symlinks) of everything under ``folder``."""
    import os
    from pathlib import Path

    folder = Path(folder)
    return {str(p.relative_to(folder)): os.readlink(p) if p.is_symlink() else p.stat().st_size if p.is_file() else "/"
            for p in folder.rglob("*")}


def test_packages_unpack_side_by_side_as_before(kits_root, shared_datasets, tmp_path, monkeypatch):
    """fetch_packages: two packages unpacked in 2 worker processes; extract_deb decompresses the xz member
    once, into the same tree as extracting the .tar.xz itself (tarfile reading it twice)."""
    from adt.data.archives import extract
    from adt.data.kits.packages import deb_members, fetch_packages

    names = ["hydrogen-data", "lmms-common"]
    (tmp_path / "data" / "downloads").mkdir(parents=True)
    for name in names:  # the .debs from the session's data folder when there (the mirror has none)
        deb = kits_root / "downloads" / PACKAGES[name].remote.filename
        if deb.is_file():
            shutil.copy(deb, tmp_path / "data" / "downloads" / deb.name)
    monkeypatch.setenv("ADT_JOBS", "2")
    logs: list[str] = []
    folders = fetch_packages(names, mirror=str(shared_datasets), root=tmp_path / "data", log=logs.append)
    assert any("2 jobs in 2 processes" in line for line in logs), logs
    assert list(folders) == names and all(f.is_dir() for f in folders.values())

    deb = tmp_path / "data" / "downloads" / PACKAGES["hydrogen-data"].remote.filename
    offset, length = deb_members(deb)["data.tar.xz"]
    (tmp_path / "data.tar.xz").write_bytes(deb.read_bytes()[offset:offset + length])
    reference = extract(tmp_path / "data.tar.xz", tmp_path / "reference")
    unpacked = folders["hydrogen-data"].parents[len(PACKAGES["hydrogen-data"].root.split("/")) - 1]
    assert _tree(unpacked) == _tree(reference) and len(_tree(reference)) > 100
    kit = "usr/share/hydrogen/data/drumkits/GMRockKit/drumkit.xml"
    assert (unpacked / kit).read_bytes() == (reference / kit).read_bytes()
    corrupt = bytearray(deb.read_bytes())
    corrupt[offset + length // 2] ^= 0xFF  # one byte inside the xz stream
    (tmp_path / "corrupt.deb").write_bytes(bytes(corrupt))
    with pytest.raises(DownloadError, match="corrupt"):
        extract_deb(tmp_path / "corrupt.deb", tmp_path / "out")
    assert not (tmp_path / "out").exists()
