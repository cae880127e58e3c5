#!/usr/bin/env python3
"""Writes the safetensors fixtures of tests/unit/test_model.c and the seeds of fuzz/fuzz_model.c.

Independent of cfl: plain struct + json, laid out the way the reference implementation
(huggingface/safetensors) writes files -- compact JSON, "__metadata__" first, tensors sorted by
name with consecutive data_offsets, header padded with spaces to a multiple of 8 bytes -- so a
file cfl writes can be compared with these byte for byte. Run from anywhere:
    python3 tests/data/models/make_fixtures.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "..", "fuzz", "corpus", "model")

SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2}


def pack(dtype, values):
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "F64":
        return struct.pack("<%dd" % len(values), *values)
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)
    if dtype == "BF16":  # the high half of the float32 (values chosen exact in bf16)
        return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:]
                        for v in values)
    raise ValueError(dtype)


def reference(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, values). The reference layout."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, values in sorted(tensors, key=lambda t: t[0]):
        raw = pack(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def unusual(tensors):
    """Another writer: header order as given, data in reverse order, default json spacing, no
    padding. Valid safetensors all the same."""
    header, data, raws = {}, b"", {}
    for name, dtype, shape, values in reversed(tensors):
        raws[name] = pack(dtype, values)
        header[name] = None
    off = {}
    for name, dtype, shape, values in reversed(tensors):
        off[name] = [len(data), len(data) + len(raws[name])]
        data += raws[name]
    header = {n: {"shape": s, "data_offsets": off[n], "dtype": d} for n, d, s, _ in tensors}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def raw(header_text, data=b""):
    text = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(text)) + text + data


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)


# Test fixtures.
PY_F32 = [("weight", "F32", [2, 2], [1.5, -2.0, 0.25, 3.0e-5]),
          ("bias", "F32", [2], [-0.5, 1024.0]),
          ("step", "F32", [], [7.0]),
          ("empty", "F32", [0, 3], [])]
write(os.path.join(HERE, "py_f32.safetensors"), reference(PY_F32, {"format": "pt"}))
PY_MIXED = [("half", "F16", [3], [1.5, -65504.0, 5.960464477539063e-08]),
            ("brain", "BF16", [2, 1], [-0.15625, 2.0 ** 127]),
            ("double", "F64", [2], [0.1, -1.0e300]),
            ("single", "F32", [1], [2.5])]
write(os.path.join(HERE, "py_mixed.safetensors"), unusual(PY_MIXED))

# Fuzz seeds, for the expected model of fuzz_model.c: a [2], b [1,3], c [].
os.makedirs(CORPUS, exist_ok=True)
GOOD = [("a", "F32", [2], [1.0, -2.0]), ("b", "F32", [1, 3], [0.5, 0.25, 8.0]),
        ("c", "F32", [], [3.0])]
write(os.path.join(CORPUS, "good"), reference(GOOD, {"format": "cfl", "round": "3"}))
write(os.path.join(CORPUS, "good-f16"),
      reference([(n, "F16", s, v) for n, _, s, v in GOOD]))
write(os.path.join(CORPUS, "good-mixed"),
      unusual([("a", "F64", [2], [1.0, -2.0]), ("b", "BF16", [1, 3], [0.5, 0.25, 8.0]),
               ("c", "F16", [], [3.0])]))
write(os.path.join(CORPUS, "wrong-shape"),
      reference([("a", "F32", [2], [1, 2]), ("b", "F32", [3], [1, 2, 3]),
                 ("c", "F32", [], [3.0])]))
write(os.path.join(CORPUS, "extra-tensor"), reference(GOOD + [("d", "F32", [1], [1.0])]))
write(os.path.join(CORPUS, "nan"),
      reference([("a", "F32", [2], [float("nan"), 1.0])] + GOOD[1:]))
write(os.path.join(CORPUS, "truncated"), reference(GOOD)[:-3])
write(os.path.join(CORPUS, "overlap"),
      raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
          '"b":{"dtype":"F32","shape":[1,3],"data_offsets":[4,16]}}', bytes(16)))
write(os.path.join(CORPUS, "gap"),
      raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
          '"c":{"dtype":"F32","shape":[],"data_offsets":[12,16]}}', bytes(16)))
write(os.path.join(CORPUS, "dtype-i32"),
      raw('{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', bytes(8)))
write(os.path.join(CORPUS, "duplicate"),
      raw('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},'
          '"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}', bytes(8)))
write(os.path.join(CORPUS, "huge-shape"),
      raw('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}',
          bytes(8)))
write(os.path.join(CORPUS, "header-too-long"), struct.pack("<Q", 1 << 40) + b"{}")
