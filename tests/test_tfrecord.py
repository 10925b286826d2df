"""adt.data.tfrecord: TFRecord framing with CRC32C, tf.train.Example and TensorProto codecs."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from adt.data.tfrecord import (count_records, crc32c, make_example, make_tensor, masked_crc32c, parse_example, parse_tensor, read_records, write_records)


def _crc32c_bitwise(data: bytes) -> int:
    """Reference CRC32C, bit by bit (RFC 3720)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    # RFC 3720 appendix B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"") == 0
    # the vectorized path (long inputs, lengths not a multiple of its lane size)
    rng = np.random.default_rng(0)
    for n in (16383, 16384, 20001, 70000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == _crc32c_bitwise(data), n
    c = crc32c(b"abc")
    assert masked_crc32c(b"abc") == ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_records_round_trip(tmp_path):
    records = [b"first", b"", bytes(range(256)) * 300, b"last"]
    path = write_records(tmp_path / "data.tfrecord", records)
    assert list(read_records(path)) == records
    assert count_records(path) == 4
    raw = path.read_bytes()
    assert len(raw) == sum(16 + len(r) for r in records)
    length, length_crc = struct.unpack("<QI", raw[:12])  # framing of the first record
    assert length == 5 and length_crc == masked_crc32c(raw[:8])
    assert raw[12:17] == b"first" and struct.unpack("<I", raw[17:21])[0] == masked_crc32c(b"first")
    assert list(read_records(write_records(tmp_path / "empty.tfrecord", []))) == []


def test_corrupt_data_crc_detected(tmp_path):
    path = write_records(tmp_path / "data.tfrecord", [b"a" * 10, b"payload-two"])
    raw = bytearray(path.read_bytes())
    raw[26 + 12 + 3] ^= 0x01  # a byte inside the second record's data (record starts at 26)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"data\.tfrecord: corrupt record data \(CRC mismatch\).*byte offset 26"):
        list(read_records(path))
    assert [r for r in read_records(path, verify=False)][0] == b"a" * 10


def test_corrupt_length_detected(tmp_path):
    path = write_records(tmp_path / "data.tfrecord", [b"a" * 10, b"b" * 10])
    raw = bytearray(path.read_bytes())
    raw[26] ^= 0x04  # the second record's length
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"data\.tfrecord: corrupt record length.*byte offset 26"):
        list(read_records(path))
    with pytest.raises(ValueError, match="byte offset 26"):
        count_records(path)


@pytest.mark.parametrize("cut, where", [(30, "truncated record header at byte offset 26"),
                                        (45, "truncated record at byte offset 26"),
                                        (51, "truncated record at byte offset 26")])
def test_truncated_file_detected(tmp_path, cut, where):
    path = write_records(tmp_path / "data.tfrecord", [b"a" * 10, b"b" * 10])  # 26 + 26 bytes
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match=f"data.tfrecord: {where}"):
        list(read_records(path))


def test_gzip_file_named(tmp_path):
    path = tmp_path / "data.tfrecord.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    with pytest.raises(ValueError, match="GZIP"):
        list(read_records(path))


@pytest.mark.parametrize("packed", [True, False])
def test_example_round_trip(packed):
    features = {
        "name": b"Artist - Song",
        "tags": ["rock", b"\x00\xff"],
        "x": np.linspace(-1, 1, 7, dtype=np.float32),
        "scalar": [0.25],
        "ids": np.array([0, 1, -1, 2**40, -(2**63), 2**63 - 1]),
        "flags": [True, False],
        "empty": [],
    }
    parsed = parse_example(make_example(features, packed=packed))
    assert set(parsed) == set(features)
    assert parsed["name"] == [b"Artist - Song"] and parsed["tags"] == [b"rock", b"\x00\xff"]
    assert parsed["x"].dtype == np.float32 and np.array_equal(parsed["x"], features["x"])
    assert parsed["scalar"].tolist() == [0.25]
    assert parsed["ids"].dtype == np.int64 and parsed["ids"].tolist() == features["ids"].tolist()
    assert parsed["flags"].tolist() == [1, 0]
    assert parsed["empty"].size == 0
    with pytest.raises(TypeError):
        make_example({"bad": [1 + 2j]})


def _tf_messages():
    """tf.train.Example and TensorProto classes built with the protobuf library from the .proto
    definitions (example.proto, feature.proto, tensor.proto, tensor_shape.proto subsets)."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="tf_subset_test.proto", package="tfsub", syntax="proto3")

    def message(name, fields, parent=None):
        m = (parent.nested_type if parent else fdp.message_type).add(name=name)
        for fname, number, ftype, label, type_name, oneof in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if oneof is not None:
                f.oneof_index = oneof
        return m

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", [("value", 1, F.TYPE_BYTES, rep, None, None)])
    message("FloatList", [("value", 1, F.TYPE_FLOAT, rep, None, None)])
    message("Int64List", [("value", 1, F.TYPE_INT64, rep, None, None)])
    feature = message("Feature", [("bytes_list", 1, F.TYPE_MESSAGE, opt, ".tfsub.BytesList", 0),
                                  ("float_list", 2, F.TYPE_MESSAGE, opt, ".tfsub.FloatList", 0),
                                  ("int64_list", 3, F.TYPE_MESSAGE, opt, ".tfsub.Int64List", 0)])
    feature.oneof_decl.add(name="kind")
    features = message("Features", [("feature", 1, F.TYPE_MESSAGE, rep, ".tfsub.Features.FeatureEntry", None)])
    entry = message("FeatureEntry", [("key", 1, F.TYPE_STRING, opt, None, None),
                                     ("value", 2, F.TYPE_MESSAGE, opt, ".tfsub.Feature", None)], parent=features)
    entry.options.map_entry = True
    message("Example", [("features", 1, F.TYPE_MESSAGE, opt, ".tfsub.Features", None)])
    shape = message("TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, rep, ".tfsub.TensorShapeProto.Dim", None)])
    message("Dim", [("size", 1, F.TYPE_INT64, opt, None, None)], parent=shape)
    message("TensorProto", [("dtype", 1, F.TYPE_INT32, opt, None, None),
                            ("tensor_shape", 2, F.TYPE_MESSAGE, opt, ".tfsub.TensorShapeProto", None),
                            ("tensor_content", 4, F.TYPE_BYTES, opt, None, None),
                            ("string_val", 8, F.TYPE_BYTES, rep, None, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tfsub.{name}"))
            for name in ("Example", "TensorProto")]


def test_wire_format_matches_protobuf_library():
    Example, TensorProto = _tf_messages()
    ex = Example()
    ex.features.feature["x"].float_list.value.extend([0.5, -2.0, 3.25])
    ex.features.feature["n"].int64_list.value.extend([3, -7, 2**62])
    ex.features.feature["s"].bytes_list.value.extend([b"ab", b""])
    parsed = parse_example(ex.SerializeToString())
    assert parsed["x"].tolist() == [0.5, -2.0, 3.25] and parsed["n"].tolist() == [3, -7, 2**62]
    assert parsed["s"] == [b"ab", b""]
    for packed in (True, False):
        back = Example.FromString(make_example({"x": [1.5, 2.5], "n": [-1, 5], "s": b"z"}, packed=packed))
        assert list(back.features.feature["x"].float_list.value) == [1.5, 2.5]
        assert list(back.features.feature["n"].int64_list.value) == [-1, 5]
        assert list(back.features.feature["s"].bytes_list.value) == [b"z"]

    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    tp = TensorProto.FromString(make_tensor(arr))
    assert tp.dtype == 1 and [d.size for d in tp.tensor_shape.dim] == [2, 3, 4]
    assert np.array_equal(np.frombuffer(tp.tensor_content, "<f4").reshape(2, 3, 4), arr)
    tp = TensorProto(dtype=9, tensor_content=np.array([5, -6], "<i8").tobytes())
    tp.tensor_shape.dim.add(size=2)
    assert parse_tensor(tp.SerializeToString()).tolist() == [5, -6]


@pytest.mark.parametrize("array", [
    np.random.default_rng(1).random((400, 84, 1)).astype(np.float32),
    np.array([[1, -2], [3, 2**40]], dtype=np.int64),
    np.array([True, False, True]),
    np.array(3.5, dtype=np.float64),
    np.zeros((0, 5), dtype=np.float32),
    np.arange(6, dtype=np.uint8).reshape(2, 3),
])
def test_tensor_round_trip(array):
    back = parse_tensor(make_tensor(array))
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)


def test_string_tensor_and_errors():
    back = parse_tensor(make_tensor(np.array([b"a", b"", b"xyz"], dtype=object)))
    assert back.shape == (3,) and back.tolist() == [b"a", b"", b"xyz"]
    with pytest.raises(TypeError):
        make_tensor(np.array([1 + 1j]))
    with pytest.raises(ValueError, match="malformed protobuf"):
        parse_tensor(b"\x0a\x10abc")  # a length-delimited field longer than the message
