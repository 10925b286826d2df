"""TFRecord files and the protobuf payloads TensorFlow writes into them, without TensorFlow.

A TFRecord file is a sequence of records, each framed as (little-endian)::

    uint64 length | uint32 masked CRC32C(length bytes) | data | uint32 masked CRC32C(data)

where masked(c) = ((c >> 15) | (c << 17)) + 0xA282EAD8 (mod 2**32), CRC32C being the
Castagnoli CRC (TensorFlow's ``tensorflow/core/lib/io/record_writer.cc``, ``tsl/lib/hash/crc32c.h``).
Only uncompressed files are read (TFRecordWriter / ``tf.data.Dataset.save`` with the default
``compression=None``).

Two payloads are decoded by hand from the protobuf wire format:

* ``tf.train.Example`` (``tensorflow/core/example/{example,feature}.proto``): Features
  ``map<string, Feature>`` (field 1 of Example, field 1 of Features); a Feature holds one of
  BytesList (1), FloatList (2), Int64List (3), their values (field 1) packed or not.
* ``TensorProto`` (``tensorflow/core/framework/tensor.proto``): dtype (1), tensor_shape (2, dims
  field 2 with size field 1), tensor_content (4, raw little-endian), string_val (8); what
  ``tf.data.Dataset.save`` writes, one record per component of each element.
"""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from adt.atomic import atomic_path

_POLY = 0x82F63B78  # CRC32C (Castagnoli), reflected
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (_POLY if _c & 1 else 0)
    _TABLE.append(_c)
_NP_TABLE = np.array(_TABLE, dtype=np.uint32)
_LANE = 256  # bytes per lane of the vectorized CRC


def _crc_bytes(state: int, data: bytes) -> int:
    for b in data:
        state = _TABLE[(state ^ b) & 0xFF] ^ (state >> 8)
    return state


@functools.lru_cache(maxsize=None)
def _zero_shift(n: int) -> tuple[list[int], ...]:
    """Byte tables of the (GF(2)-linear) map: CRC register -> register after ``n`` zero bytes."""
    basis = np.array([1 << i for i in range(32)], dtype=np.uint32)
    for _ in range(n):
        basis = _NP_TABLE[basis & 0xFF] ^ (basis >> 8)
    values = np.arange(256)
    tables = []
    for k in range(4):
        t = np.zeros(256, dtype=np.uint32)
        for j in range(8):
            t[(values >> j) & 1 == 1] ^= basis[8 * k + j]
        tables.append(t.tolist())
    return tuple(tables)


def _crc_update(state: int, data: bytes) -> int:
    """Raw CRC32C register after ``data``; long inputs run as parallel lanes joined by linearity:
    reg(s, A + B) = shift_len(B)(reg(s, A)) ^ reg(0, B)."""
    lanes = len(data) // _LANE
    if lanes < 64:
        return _crc_bytes(state, data)
    head = len(data) - lanes * _LANE
    state = _crc_bytes(state, data[:head])
    cols = np.frombuffer(data, dtype=np.uint8, offset=head).reshape(lanes, _LANE).T.copy()
    reg = np.zeros(lanes, dtype=np.uint32)
    reg[0] = state
    for col in cols:
        reg = _NP_TABLE[(reg ^ col) & 0xFF] ^ (reg >> 8)
    t0, t1, t2, t3 = _zero_shift(_LANE)
    s = int(reg[0])
    for r in reg[1:].tolist():
        s = t0[s & 0xFF] ^ t1[(s >> 8) & 0xFF] ^ t2[(s >> 16) & 0xFF] ^ t3[s >> 24] ^ r
    return s


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli, as in iSCSI / RFC 3720) of ``data``."""
    return _crc_update(0xFFFFFFFF, bytes(data)) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _frames(path: Path, f, read_data: bool) -> Iterator[tuple[int, int, bytes | None, bytes | None]]:
    """(offset, length, data, footer) per record; data/footer None when skipped."""
    offset, size = 0, os.fstat(f.fileno()).st_size
    while header := f.read(12):
        if len(header) < 12:
            raise ValueError(f"{path}: truncated record header at byte offset {offset}")
        length, length_crc = struct.unpack("<QI", header)
        if masked_crc32c(header[:8]) != length_crc:
            hint = " (the file looks GZIP-compressed: decompress it)" if header[:2] == b"\x1f\x8b" else ""
            raise ValueError(f"{path}: corrupt record length (CRC mismatch) at byte offset {offset}{hint}")
        if offset + 16 + length > size:
            raise ValueError(f"{path}: truncated record at byte offset {offset}: needs {16 + length} "
                             f"bytes, the file ends after {size - offset}")
        if read_data:
            yield offset, length, f.read(length), f.read(4)
        else:
            f.seek(length + 4, os.SEEK_CUR)
            yield offset, length, None, None
        offset += 16 + length


def read_records(path: str | os.PathLike, verify: bool = True) -> Iterator[bytes]:
    """The records of a TFRecord file, in order.

    Args:
        verify: check each record's data CRC (the length CRCs are always checked).

    Raises:
        ValueError: a truncated file or a CRC mismatch (names the file and the record's byte offset).
    """
    path = Path(path)
    with open(path, "rb") as f:
        for offset, _, data, footer in _frames(path, f, read_data=True):
            if verify and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{path}: corrupt record data (CRC mismatch) in the record at byte offset {offset}")
            yield data


def count_records(path: str | os.PathLike) -> int:
    """Number of records in a TFRecord file, from the framing alone (data not read or checked).

    Raises:
        ValueError: a truncated file or a length CRC mismatch.
    """
    path = Path(path)
    with open(path, "rb") as f:
        return sum(1 for _ in _frames(path, f, read_data=False))


def write_records(path: str | os.PathLike, records: Iterable[bytes]) -> Path:
    """Write ``records`` (bytes, e.g. from :func:`make_example`) as a TFRecord file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for data in records:
            data = bytes(data)
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data)))
    return Path(path)


# --------------------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("malformed protobuf message (truncated or overlong varint)")
        b = buf[pos]
        result |= (b & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if b < 0x80:
            return result, pos


def _enc_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: two's complement
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def proto_fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """One protobuf message at wire level: (field number, wire type, value) in order. The value is
    an unsigned int for varint (0), fixed64 (1) and fixed32 (5) fields, bytes for length-delimited (2).

    Raises:
        ValueError: a malformed message or a group (wire types 3, 4).
    """
    out, pos, end = [], 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos:pos + size]), pos + size
        else:
            raise ValueError(f"malformed protobuf message: wire type {wire} in field {field}")
        if pos > end:
            raise ValueError(f"malformed protobuf message: field {field} runs past the end")
        out.append((field, wire, value))
    return out


def proto_field(number: int, value: int | bytes) -> bytes:
    """One encoded protobuf field: an int as a varint, bytes as a length-delimited field."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _enc_varint(number << 3 | 2) + _enc_varint(len(value)) + bytes(value)
    return _enc_varint(number << 3) + _enc_varint(int(value))


def packed_varints(buf: bytes) -> list[int]:
    """The values of a packed repeated varint field (ints, enums), unsigned."""
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value)
    return out


def _parse_feature(data: bytes) -> np.ndarray | list[bytes]:
    kind, values = 0, []
    for kind, _, lst in proto_fields(data):  # a oneof: the last one set wins
        values = [(wire, v) for f, wire, v in proto_fields(lst) if f == 1]
    if kind == 2:  # FloatList: packed little-endian float32 or one fixed32 per value
        parts = [np.frombuffer(v, "<f4") if w == 2 else np.array([v], "<u4").view("<f4") for w, v in values]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if kind == 3:  # Int64List: packed or one varint per value, two's complement
        ints = [i for w, v in values for i in (packed_varints(v) if w == 2 else [v])]
        return np.array(ints, dtype=np.uint64).view(np.int64)
    return [v for _, v in values]  # BytesList (or an empty Feature)


def parse_example(data: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """A serialized ``tf.train.Example`` as {feature name: value}: float32 array (FloatList),
    int64 array (Int64List) or list of bytes (BytesList; also an empty Feature).

    Raises:
        ValueError: malformed protobuf data.
    """
    out: dict[str, np.ndarray | list[bytes]] = {}
    for _, _, features in (f for f in proto_fields(data) if f[0] == 1):
        for _, _, entry in (f for f in proto_fields(features) if f[0] == 1):
            fields = {f: v for f, _, v in proto_fields(entry)}
            out[fields.get(1, b"").decode("utf-8")] = _parse_feature(fields.get(2, b""))
    return out


def _make_feature(value, packed: bool) -> bytes:
    if isinstance(value, (bytes, str)):
        value = [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (bytes, str)) for v in value):
        return proto_field(1, b"".join(proto_field(1, v.encode() if isinstance(v, str) else v) for v in value))
    arr = np.asarray(value).ravel()
    if arr.dtype.kind == "f" or arr.size == 0:
        vals = arr.astype("<f4")
        body = proto_field(1, vals.tobytes()) if packed else b"".join(b"\x0d" + v.tobytes() for v in vals)
        return proto_field(2, body)
    if arr.dtype.kind in "iub":
        ints = [int(v) for v in arr]
        body = (proto_field(1, b"".join(_enc_varint(v) for v in ints)) if packed
                else b"".join(proto_field(1, v) for v in ints))
        return proto_field(3, body)
    raise TypeError(f"feature values of dtype {arr.dtype} are neither bytes, floats nor integers")


def make_example(features: dict, packed: bool = True) -> bytes:
    """A serialized ``tf.train.Example``: bytes/str (or lists of them) -> BytesList, floats ->
    FloatList (float32), ints/bools -> Int64List. ``packed=False`` writes one field per value.

    Raises:
        TypeError: a value of another type.
    """
    entries = b"".join(proto_field(1, proto_field(1, k.encode()) + proto_field(2, _make_feature(v, packed)))
                       for k, v in sorted(features.items()))
    return proto_field(1, entries)


#: TensorFlow DataType enum (``tensorflow/core/framework/types.proto``) -> NumPy dtype; 7 is DT_STRING.
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2",
          22: "<u4", 23: "<u8"}
DT_STRING = 7


def parse_tensor(data: bytes) -> np.ndarray:
    """A serialized ``TensorProto`` as an array (strings: an object array of bytes).

    Raises:
        ValueError: an unsupported dtype, or values held in typed fields rather than tensor_content.
    """
    dtype, shape, content, strings = 0, [], None, []
    for field, _, value in proto_fields(data):
        if field == 1:
            dtype = value
        elif field == 2:
            shape = [dict((f, v) for f, _, v in proto_fields(dim)).get(1, 0)
                     for f, _, dim in proto_fields(value) if f == 2]
        elif field == 4:
            content = value
        elif field == 8:
            strings.append(value)
    if dtype == DT_STRING:
        return np.array(strings, dtype=object).reshape(shape)
    if dtype not in DTYPES:
        raise ValueError(f"TensorProto dtype {dtype} is not supported")
    if content is None and int(np.prod(shape)) > 0:
        raise ValueError("TensorProto holds its values in typed fields, not tensor_content (not supported)")
    native = np.dtype(DTYPES[dtype]).newbyteorder("=")
    return np.frombuffer(content or b"", dtype=DTYPES[dtype]).reshape(shape).astype(native, copy=False)


def make_tensor(array) -> bytes:
    """A serialized ``TensorProto`` (as ``Tensor::AsProtoTensorContent`` writes it) of ``array``.

    Raises:
        TypeError: a dtype without a TensorFlow counterpart.
    """
    arr = np.asarray(array)
    shape = proto_field(2, b"".join(proto_field(2, proto_field(1, d) if d else b"") for d in arr.shape))
    if arr.dtype.kind in "SUO":
        values = (v.encode() if isinstance(v, str) else bytes(v) for v in arr.ravel())
        return proto_field(1, DT_STRING) + shape + b"".join(proto_field(8, v) for v in values)
    codes = {np.dtype(t).str[1:]: code for code, t in DTYPES.items()}
    code = codes.get(arr.dtype.str[1:])
    if code is None:
        raise TypeError(f"no TensorFlow dtype for {arr.dtype}")
    content = arr.astype(np.dtype(DTYPES[code])).tobytes()
    return proto_field(1, code) + shape + (proto_field(4, content) if content else b"")
