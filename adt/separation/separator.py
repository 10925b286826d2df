"""A separator of any kind behind one interface: the study's shared-encoder models
(:mod:`adt.separation.unet`, one network or one per source) or an Open-Unmix drums model
(:mod:`adt.separation.umx`), and the graph's chosen one (:func:`find_chosen`).

A model spec (the ``chosen`` entry of a separation-study manifest, :mod:`adt.separation.stems`) is
``{"name", "procedure", "model_paths": {name: .pt path}, "ratio_masks"}``; ``procedure`` ``open_unmix``
with no path means openunmix's pretrained model ``name`` (``umxl``, ``umxhq``). Shared-encoder
separators run with ratio masks over their decoders unless the spec says ``"ratio_masks": false``,
so the stems they write sum to the mixture.

The package ships one separator (:data:`SHIPPED_SEPARATOR`, ``adt/pretrained/``, its model card
beside it): :func:`find_chosen` falls back to it when the data folder has no separation study, so
``adt separate`` works offline right after installation.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from adt.audio import crossfaded_chunks, resample
from adt import PRETRAINED_DIR
from adt.pretrained import ShippedWeightsError, verify
from adt.separation import procedures, umx, unet

SAMPLE_RATE = 44100
#: The shared-encoder separators run on chunks of 60 s cross-faded over 1 s (:func:`adt.audio.crossfaded_chunks`),
#: so their STFTs and masks are bounded by one chunk (Open-Unmix: 30 s, :func:`adt.separation.umx.separate_audio`).
CHUNK_S, OVERLAP_S = 60.0, 1.0
#: the separator shipped with the package (``adt/pretrained/<name>.pt``, float16 weights, model card ``.md``)
SHIPPED_SEPARATOR = "separator_standard"


def shipped_path(name: str = SHIPPED_SEPARATOR) -> Path:
    """The shipped separator's weights file."""
    return PRETRAINED_DIR / f"{name}.pt"


def shipped(device: str = "cpu", name: str = SHIPPED_SEPARATOR) -> Separator:
    """The separator shipped with the package (module docstring).

    Raises:
        FileNotFoundError: the file is missing (an install without package data).
        ValueError: the file is not a readable separator (corrupt or truncated: names it; reinstall);
            :class:`adt.pretrained.ShippedWeightsError` when its SHA-256 is not the shipped one.
    """
    path = shipped_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped separator is missing (reinstall the package)")
    try:
        sep = load({"name": name, "procedure": "shipped", "model_paths": {"shared": str(path)}}, device=device)
    except ShippedWeightsError:
        raise
    except ValueError as exc:
        raise ValueError(f"{path}: the shipped separator cannot be read ({exc}); reinstall the package") from exc
    sep.description = f"shipped separator ({path.name}; model card {path.with_suffix('.md').name})"
    return sep


def shipped_network(name: str = SHIPPED_SEPARATOR):
    """The shipped separator's network (:class:`adt.separation.unet.SharedEncoderSeparator`, float32, eval mode):
    the start of the study's fine-tuning (``adt.separation.study``, ``Profile.start_from_shipped``).

    Raises:
        FileNotFoundError: the file is missing (an install without package data).
        ValueError: the file is not a readable separator (names it; reinstall);
            :class:`adt.pretrained.ShippedWeightsError` when its SHA-256 is not the shipped one.
    """
    path = shipped_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped separator is missing (reinstall the package)")
    try:
        return procedures.load({"shared": str(path)})["shared"]
    except ShippedWeightsError:
        raise
    except ValueError as exc:
        raise ValueError(f"{path}: the shipped separator cannot be read ({exc}); reinstall the package") from exc


@dataclasses.dataclass
class Separator:
    """``separate(audio, sample_rate)`` -> ``{source: float32 (2, n)}`` at :data:`SAMPLE_RATE` (n: the
    input's length at that rate). ``sources``: what it gives (Open-Unmix: drums only). ``_run(audio, sources)``:
    the estimates of ``sources`` (at least) from stereo audio at :data:`SAMPLE_RATE`."""

    name: str
    procedure: str
    sources: tuple
    _run: object
    description: str = ""

    def separate(self, audio: np.ndarray, sample_rate: int, sources=None) -> dict[str, np.ndarray]:
        """Estimates of ``sources`` (default all) from a mixture ``(channels, samples)`` or ``(samples,)``
        at ``sample_rate`` Hz (mono is doubled, channels past two dropped, resampled to 44100 Hz).

        Raises:
            ValueError: a source this separator does not give, or audio with NaN/inf samples.
        """
        sources = self.sources if sources is None else tuple(sources)
        unknown = [s for s in sources if s not in self.sources]
        if unknown:
            raise ValueError(f"separator {self.name} gives {', '.join(self.sources)}; not {', '.join(unknown)}")
        audio = np.asarray(audio, dtype=np.float32)
        if not np.isfinite(audio).all():
            raise ValueError("audio has NaN or infinite samples")
        audio = audio.reshape(-1, audio.shape[-1])
        audio = np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio[:2]
        if sample_rate != SAMPLE_RATE:
            audio = resample(audio, sample_rate, SAMPLE_RATE)
        estimates = self._run(np.ascontiguousarray(audio), sources)
        return {s: np.ascontiguousarray(estimates[s], dtype=np.float32) for s in sources}

    def drums(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The drum estimate ``(2, n)`` at 44100 Hz."""
        return self.separate(audio, sample_rate, ("drums",))["drums"]


def pretrained(name: str = "umxl", device: str = "cpu", timeout_s: float = 10.0) -> Separator | None:
    """openunmix's pretrained drums model ``name`` (``umxl``, ``umxhq``) as a :class:`Separator`, or None
    when its weights cannot be had (:func:`adt.separation.umx.load_pretrained`, at most ``timeout_s`` s)."""
    model = umx.load_pretrained(name, device=device, timeout_s=timeout_s)
    if model is None:
        return None
    return Separator(name, "open_unmix", ("drums",), lambda a, _: {"drums": umx.separate_audio(model, a, SAMPLE_RATE)},
                     f"Open-Unmix {name} (pretrained)")


def load(spec: dict, device: str = "cpu") -> Separator:
    """The separator a model spec names (module docstring).

    Raises:
        FileNotFoundError: a model file is missing (named), or the pretrained ``umxl`` cannot be had.
        ValueError: a file is not a separation model (named).
    """
    name, procedure, paths = spec["name"], spec["procedure"], dict(spec.get("model_paths") or {})
    if procedure == "open_unmix" and not paths:
        sep = pretrained(name, device=device)
        if sep is None:
            raise FileNotFoundError(f"pretrained Open-Unmix {name} unavailable (offline?)")
        return sep
    if procedure == "open_unmix":
        model = umx.load_separator(Path(paths["drums"]), device=device)
        return Separator(name, procedure, ("drums",), lambda a, _: {"drums": umx.separate_audio(model, a, SAMPLE_RATE)},
                         f"Open-Unmix drums ({name})")
    for path in paths.values():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such separation model file")
    models = procedures.load(paths)
    ratio = bool(spec.get("ratio_masks", True))
    sources = tuple(s for m in models.values() for s in m.config.sources)
    n_fft = max(m.config.n_fft for m in models.values())

    def run(audio: np.ndarray, wanted: tuple) -> dict[str, np.ndarray]:
        def chunk_estimates(chunk: np.ndarray) -> dict[str, np.ndarray]:  # every decoder runs, wanted are rebuilt
            return procedures.separate_with(models, chunk, ratio_masks=ratio, sources=wanted)

        return crossfaded_chunks(chunk_estimates, audio, int(CHUNK_S * SAMPLE_RATE), int(OVERLAP_S * SAMPLE_RATE),
                                 n_fft)

    return Separator(name, procedure, sources, run, f"shared-encoder separator ({name}, {procedure})")


def study_manifests(data_root: Path) -> list[Path]:
    """Complete separation-study manifests under ``data_root``, newest first."""
    found = (data_root / "separation_study").glob("*/manifest.json")
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def find_chosen(data_root: Path, device: str = "cpu") -> tuple[Separator | None, str]:
    """The graph's chosen separator: the newest separation study's ``chosen`` model that loads, else the
    shipped one (:func:`shipped`).

    Returns:
        ``(separator, description)`` or ``(None, reason)`` (no study loads and the shipped file is missing
        or corrupt).
    """
    manifests = study_manifests(data_root)
    reasons = [] if manifests else [f"no separation study under {data_root / 'separation_study'}"]
    for manifest in manifests:
        spec = json.loads(manifest.read_text()).get("chosen")
        if not spec:
            continue
        try:
            sep = load(spec, device=device)
        except (OSError, ValueError) as exc:
            reasons.append(f"{manifest.parent.name}: {exc}")
            continue
        sdr = spec.get("sdr.drums.val")
        sep.description += f", validation drums SDR {sdr:.1f} dB" if sdr is not None else ""
        return sep, sep.description
    try:
        sep = shipped(device=device)
        return sep, sep.description
    except (OSError, ValueError) as exc:
        reasons.append(str(exc))
    return None, "; ".join(reasons)


def from_argument(value: str, device: str = "cpu") -> Separator:
    """The separator ``adt separate --model`` names: a separation study's folder or ``manifest.json`` (its
    chosen model), a model file of the study (a shared-encoder ``.pt`` or an Open-Unmix drums ``.pt``),
    or ``umxl`` / ``umxhq`` (openunmix's pretrained drums).

    Raises:
        FileNotFoundError: no such file, or the pretrained weights cannot be had.
        ValueError: the file is not a separation model or study manifest (named).
    """
    if value in ("umxl", "umxhq"):
        return load({"name": value, "procedure": "open_unmix"}, device=device)
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{value}: no such separation model, study folder or manifest")
    if path.suffix == ".json":
        try:
            spec = json.loads(path.read_text())["chosen"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a separation study manifest ({exc})") from exc
        return load(spec, device=device)

    verify(path)
    try:
        fmt = torch.load(path, map_location="cpu", weights_only=True).get("format")
    except Exception as exc:
        raise ValueError(f"{path}: not a separation model ({exc})") from exc
    if fmt == umx.MODEL_FORMAT:
        return load({"name": path.stem, "procedure": "open_unmix", "model_paths": {"drums": str(path)}}, device)
    if fmt == unet.MODEL_FORMAT:
        return load({"name": path.stem, "procedure": "shared", "model_paths": {"shared": str(path)}}, device)
    raise ValueError(f"{path}: not a separation model (format {fmt!r})")
