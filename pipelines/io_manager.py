"""Asset values stored as JSON, never as pickles (the project's rule: weights only, never a pickle).

Dagster's default I/O manager pickles every asset value under ``DAGSTER_HOME/storage``; unpickling runs
whatever code the file names. :class:`JsonIOManager` (the code location's ``io_manager``, so every asset,
asset check and ``Definitions.get_asset_value_loader`` uses it) stores each value as one JSON file,
``<instance storage directory>/<asset key path>[/<partition>].json`` (:func:`stored_value_path`),
written atomically, in an envelope ``{"format": FORMAT, "type": ..., "value": ...}``:

* ``"type": "<result class>"``: a stage's result (:class:`adt.results.StageResult`, the class named by
  its stage's registry entry, :data:`adt.stages.STAGES`) through its own ``to_json``/``from_json``.
* ``"type": "json"``: any other value as JSON data (and the stage values stored before the results were
  typed: a stage's is read back as its result class, :meth:`~adt.results.StageResult.from_manifest`).

Values are converted on the way: tuples to lists, :class:`~pathlib.Path` to str, numpy scalars to Python
numbers. Anything else (a non-str dict key, an array, an arbitrary object) is refused with a
``TypeError`` naming the asset and where in the value it sits: never ``str()``-ed silently.

Reading looks the type up in :data:`DECODERS`, a fixed table made from the registry: no class is ever
imported by a name read from the file. Values stored before this manager (extensionless pickle files beside the
``.json`` names) are never read: :func:`pipelines.plan.why_materialize` finds no JSON file for them
("stored value gone") and the asset is materialized again (cheap: every stage's content-keyed cache
still holds its output); writing the JSON file removes the old pickle of the same asset (partition).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field

from adt.atomic import atomic_path
from adt.results import StageResult
from adt.stages import BY_NAME, STAGES

#: The envelope's format tag (a file without it is not read).
FORMAT = "adt-asset-value/1"
EXTENSION = ".json"

#: Envelope type -> decoder of its "value" (a fixed table; nothing is imported by a name read from a file).
DECODERS: dict[str, Callable[[Any], Any]] = {"json": lambda value: value,
                                             **{s.result.__name__: s.result.from_json for s in STAGES}}


class StoredValueGone(FileNotFoundError):
    """No JSON file for an asset value (never stored, deleted, or stored as a pickle before)."""


def partition_subpath(partition: str) -> str:
    """A partition key as a relative subpath of the storage folder: no leading "/", ".." segments escaped (as
    Dagster's filesystem I/O manager does), so a key never names a file outside it."""
    return "/".join("__dotdot__" if part == ".." else part for part in partition.lstrip("/").split("/"))


def stored_value_path(base_dir: str | Path, key: dg.AssetKey, partition: str | None = None) -> Path:
    """Where :class:`JsonIOManager` keeps ``key``'s value (of ``partition``) under ``base_dir``."""
    path = Path(base_dir, *key.path)
    if partition is not None:
        path = path / partition_subpath(partition)
    return path.with_name(path.name + EXTENSION)


def to_json_data(value: Any, asset: str, where: str = "value") -> Any:
    """``value`` as JSON data (module docstring: tuples, Paths and numpy scalars converted).

    Raises:
        TypeError: a part that is not JSON data, naming ``asset`` and where (``value["a"][2]``) it sits.
    """
    if value is None or type(value) in (bool, str, int, float):
        return value
    for plain in (bool, str, int, float):  # subclasses (np.float64, np.str_, an IntEnum): the plain value
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (np.bool_, np.integer, np.floating)) or (isinstance(value, np.ndarray) and value.ndim == 0
                                                                   and value.dtype.kind in "biuf"):
        return value.item()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"asset {asset}: {where} has the key {k!r} ({type(k).__name__}); a stored value's "
                                f"dict keys must be str (JSON)")
            out[str(k)] = to_json_data(v, asset, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_data(v, asset, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"asset {asset}: {where} is a {type(value).__module__}.{type(value).__qualname__}, not JSON data "
                    f"(str, int, float, bool, None, list, dict with str keys; Path and numpy scalars are converted): "
                    f"store it in a file and return the file's path")


def encode(value: Any, asset: str) -> dict:
    """The envelope of ``value`` (module docstring)."""
    if isinstance(value, StageResult) and type(value).__name__ in DECODERS:
        return {"format": FORMAT, "type": type(value).__name__, "value": to_json_data(value.to_json(), asset)}
    return {"format": FORMAT, "type": "json", "value": to_json_data(value, asset)}


def decode(doc: Any, source: str, stage: str | None = None) -> Any:
    """The value of an envelope :func:`encode` made; ``source`` names the file in errors; ``stage``: the stage
    whose value it is (a plain JSON value of a stage is read as the stage's result class).

    Raises:
        ValueError: not such an envelope, or a type not in :data:`DECODERS`.
    """
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "value" not in doc:
        raise ValueError(f"{source}: not a stored asset value (no format {FORMAT!r})")
    decoder = DECODERS.get(doc.get("type"))
    if decoder is None:
        raise ValueError(f"{source}: unknown stored value type {doc.get('type')!r}; known: {sorted(DECODERS)}")
    if doc["type"] == "json" and stage in BY_NAME and isinstance(doc["value"], dict):
        return BY_NAME[stage].result.from_manifest(doc["value"])
    return decoder(doc["value"])


class JsonFileIOManager(dg.UPathIOManager):
    """Asset values as JSON files under ``base_dir`` (module docstring); built by :class:`JsonIOManager`."""

    extension = EXTENSION

    def __init__(self, base_dir: str):
        from upath import UPath

        self.base_dir = base_dir
        super().__init__(base_path=UPath(base_dir))

    def make_safe_partition_path(self, base_path, partition: str):
        # as Dagster's filesystem manager: a partition joins as a literal subpath (no "..", no leading "/")
        return base_path / partition_subpath(partition)

    def _asset_name(self, context) -> str:
        name = context.asset_key.to_user_string() if context.has_asset_key else "/".join(context.get_identifier())
        partition = context.asset_partition_key if context.has_asset_key and context.has_asset_partitions else None
        return f"{name}[{partition}]" if partition else name

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path) -> None:
        text = json.dumps(encode(obj, self._asset_name(context)), indent=1, sort_keys=True)
        path = Path(str(path))
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        legacy = path.with_name(path.name[:-len(EXTENSION)])  # Dagster's pickle of the same value, never read
        if legacy.is_file() and not legacy.is_symlink():
            legacy.unlink()

    def load_from_path(self, context: dg.InputContext, path) -> Any:
        path = Path(str(path))
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise StoredValueGone(f"no stored value at {path} (a value stored before as a pickle is never read): "
                                  f"materialize it again") from None
        stage = context.asset_key.path[-1] if context.has_asset_key else None
        return decode(json.loads(text), str(path), stage)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write ``obj``'s JSON file; its place is metadata ``stored_value`` (an asset's own ``path``
        metadata, its data folder, stays as the asset set it)."""
        if context.has_asset_key and context.has_asset_partitions:
            paths = self._get_paths_for_partitions(context)
            if len(paths) != 1:
                raise dg.DagsterInvariantViolationError(
                    f"{context.asset_key.to_user_string()}: one partition per run (got {len(paths)})")
            path = next(iter(paths.values()))
        else:
            path = self._get_path(context)
        self.make_directory(path.parent)
        self.dump_to_path(context, obj, path)
        context.add_output_metadata({"stored_value": dg.MetadataValue.path(str(path))})


class JsonIOManager(dg.ConfigurableIOManagerFactory):
    """Asset values as JSON files (:mod:`pipelines.io_manager`), never pickles; under ``base_dir``, by
    default the Dagster instance's storage directory (``DAGSTER_HOME/storage``)."""

    base_dir: str | None = Field(default=None, description="Folder of the stored values (default: the "
                                                            "instance's storage directory).")

    def create_io_manager(self, context: dg.InitResourceContext) -> JsonFileIOManager:
        base_dir = self.base_dir or (context.instance.storage_directory() if context.instance is not None else None)
        if base_dir is None:
            raise dg.DagsterInvariantViolationError("JsonIOManager: no base_dir and no Dagster instance")
        return JsonFileIOManager(base_dir)
