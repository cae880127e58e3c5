"""cfl.safetensors: round trips, the C side's bytes, and every reading rule of docs/models.md,
each malformed file also given to the C reader (st_tool, when CFL_ST_TOOL names it) to check
both readers give the same verdict."""
import json
import os
import stat
import struct
import subprocess
import tempfile
import unittest

import numpy as np

from cfl import safetensors as st

SRC = os.environ.get("CFL_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ST_TOOL = os.environ.get("CFL_ST_TOOL")

try:
    import torch
except ImportError:
    torch = None


def raw_file(header, data=b"", pad=True, length=None):
    """A safetensors file with the given header (dict or str) and data, unchecked."""
    text = header if isinstance(header, (str, bytes)) else json.dumps(header, separators=(",", ":"))
    text = text.encode() if isinstance(text, str) else text
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def f32(name, shape, begin, end=None):
    count = int(np.prod(shape)) if shape else 1
    return {name: {"dtype": "F32", "shape": shape, "data_offsets": [begin, begin + 4 * count if end is None else end]}}


def both(*entries):
    h = {}
    for e in entries:
        h.update(e)
    return h


# (name, file bytes, expected code): every rule of docs/models.md's table, broken once.
BAD = [
    ("empty", b"", "EPARSE"),
    ("seven bytes", b"\x08\x00\x00\x00\x00\x00\x00", "EPARSE"),
    ("huge header length", struct.pack("<Q", 2**63) + b"{}", "ETOOBIG"),
    ("header length over the cap", struct.pack("<Q", (16 << 20) + 1) + b"{}", "ETOOBIG"),
    ("header length past the end", raw_file({}, length=100), "EPARSE"),
    ("header length 1", struct.pack("<Q", 1) + b"{", "EPARSE"),
    ("header length 0", struct.pack("<Q", 0), "EPARSE"),
    ("not json", raw_file("{nope}"), "EPARSE"),
    ("truncated json", raw_file('{"a":{"dtype":"F32"'), "EPARSE"),
    ("json array", raw_file("[1,2]"), "EPARSE"),
    ("json string", raw_file('"x"'), "EPARSE"),
    ("invalid utf-8", raw_file(b'{"\xff":1}'), "EPARSE"),
    ("duplicate keys", raw_file('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', b"\0" * 4), "EPARSE"),
    ("NaN token", raw_file('{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}', b"\0" * 4), "EPARSE"),
    ("integer over int64", raw_file('{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}', b"\0" * 4), "EPARSE"),
    ("real overflow", raw_file('{"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', b"\0" * 4), "EPARSE"),
    ("lone surrogate", raw_file('{"\\ud800":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', b"\0" * 4), "EPARSE"),
    ("nul escape", raw_file('{"a\\u0000b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', b"\0" * 4), "EPARSE"),
    ("trailing garbage", raw_file('{} x'), "EPARSE"),
    ("too many tensors", raw_file({"t%d" % i: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(4097)}), "ETOOBIG"),
    ("empty name", raw_file(f32("", [], 0), b"\0" * 4), "EPARSE"),
    ("name of 256 bytes", raw_file(f32("n" * 256, [], 0), b"\0" * 4), "EPARSE"),
    ("entry not an object", raw_file({"a": [1]}), "EPARSE"),
    ("unknown key", raw_file({"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4), "EPARSE"),
    ("missing data_offsets", raw_file({"a": {"dtype": "F32", "shape": []}}, b"\0" * 4), "EPARSE"),
    ("dtype not a string", raw_file({"a": {"dtype": 4, "shape": [], "data_offsets": [0, 4]}}, b"\0" * 4), "EPARSE"),
    ("dtype I32", raw_file({"a": {"dtype": "I32", "shape": [], "data_offsets": [0, 4]}}, b"\0" * 4), "EUNSUPP"),
    ("dtype F8_E4M3", raw_file({"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4), "EUNSUPP"),
    ("shape not an array", raw_file({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}}, b"\0" * 4), "EPARSE"),
    ("nine dimensions", raw_file(f32("a", [1] * 9, 0), b"\0" * 4), "ETOOBIG"),
    ("negative dimension", raw_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "EPARSE"),
    ("real dimension", raw_file({"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, b"\0" * 4), "EPARSE"),
    ("boolean dimension", raw_file({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4), "EPARSE"),
    ("shape product overflows", raw_file({"a": {"dtype": "F32", "shape": [2**31, 2**31, 4], "data_offsets": [0, 4]}}, b"\0" * 4), "ETOOBIG"),
    ("offsets not a pair", raw_file({"a": {"dtype": "F32", "shape": [], "data_offsets": [0]}}, b"\0" * 4), "EPARSE"),
    ("offsets reversed", raw_file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}, b"\0" * 4), "EPARSE"),
    ("negative offset", raw_file({"a": {"dtype": "F32", "shape": [], "data_offsets": [-4, 0]}}, b"\0" * 4), "EPARSE"),
    ("offsets past the data", raw_file(f32("a", [2], 0), b"\0" * 4), "EPARSE"),
    ("offsets far out of range", raw_file({"a": {"dtype": "F32", "shape": [], "data_offsets": [2**62, 2**62 + 4]}}, b"\0" * 4), "EPARSE"),
    ("size does not match shape", raw_file(f32("a", [2], 0, 4), b"\0" * 8), "EPARSE"),
    ("overlapping tensors", raw_file(both(f32("a", [2], 0), f32("b", [2], 4)), b"\0" * 12), "EPARSE"),
    ("same range twice", raw_file(both(f32("a", [2], 0), f32("b", [2], 0)), b"\0" * 8), "EPARSE"),
    ("gap between tensors", raw_file(both(f32("a", [1], 0), f32("b", [1], 8)), b"\0" * 12), "EPARSE"),
    ("gap at the start", raw_file(f32("a", [1], 4), b"\0" * 8), "EPARSE"),
    ("trailing data", raw_file(f32("a", [1], 0), b"\0" * 5), "EPARSE"),
    ("truncated data", raw_file(f32("a", [4], 0), b"\0" * 12), "EPARSE"),
    ("metadata not an object", raw_file({"__metadata__": "x"}), "EPARSE"),
    ("metadata value not a string", raw_file({"__metadata__": {"round": 3}}), "EPARSE"),
]

GOOD = [
    ("no tensors", raw_file({})),
    ("unpadded, spaced json", raw_file('{ "a" : {"shape":[2],"dtype":"F32","data_offsets":[0,8]} }', b"\0" * 8, pad=False)),
    ("tensors out of order", raw_file(both(f32("z", [1], 4), f32("a", [1], 0)), b"\0" * 8)),
    ("empty tensors and a scalar", raw_file(both(f32("e", [0, 3], 0), f32("s", [], 0)), b"\0" * 4)),
    ("metadata", raw_file(both({"__metadata__": {"k": "v"}}, f32("a", [1], 0)), b"\0" * 4)),
    ("name of 255 bytes", raw_file(f32("n" * 255, [], 0), b"\0" * 4)),
]


class Writing(unittest.TestCase):
    def test_round_trip(self):
        rng = np.random.default_rng(7)
        tensors = {
            "fc.weight": rng.standard_normal((3, 5)).astype(np.float32),
            "fc.bias": np.array([1.5, -0.0, np.inf], dtype=np.float32),
            "scalar": np.float32(2.5),
            "empty": np.zeros((0, 4), dtype=np.float32),
            "\u00e9t\u00e9 \"q\"\\\n": np.arange(8, dtype=np.float64).reshape(2, 2, 2),
            "ints": np.arange(4, dtype=np.int64),
            "nd8": np.ones([1] * 8, dtype=np.float32),
        }
        back, meta = st.load_with_metadata(st.save(tensors, {"round": "3", "format": "cfl"}))
        self.assertEqual(meta, {"round": "3", "format": "cfl"})
        self.assertEqual(list(back), sorted(tensors, key=lambda s: s.encode()))
        for k, v in tensors.items():
            self.assertEqual(back[k].dtype, np.float32)
            self.assertEqual(back[k].shape, np.shape(v))
            np.testing.assert_array_equal(back[k], np.asarray(v, dtype=np.float32))
            self.assertTrue(back[k].flags.writeable)

    def test_layout(self):
        data = st.save({"b": np.ones(2), "a": np.zeros(1)}, {"k": "v"})
        (n,) = struct.unpack("<Q", data[:8])
        self.assertEqual(n % 8, 0)
        self.assertEqual(
            data[8 : 8 + n].rstrip(b" "),
            b'{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
        )
        self.assertEqual(data[8 + n :], struct.pack("<3f", 0, 1, 1))
        self.assertEqual(st.save({"b": np.ones(2), "a": np.zeros(1)}), st.save({"a": np.zeros(1), "b": np.ones(2)}))

    def test_non_contiguous_and_big_endian(self):
        a = np.arange(12, dtype=">f8").reshape(3, 4).T
        np.testing.assert_array_equal(st.load(st.save({"a": a}))["a"], a.astype(np.float32))

    def test_write_refusals(self):
        for tensors, code in [
            ({"": np.zeros(1)}, "EINVAL"),
            ({"n" * 256: np.zeros(1)}, "EINVAL"),
            ({"__metadata__": np.zeros(1)}, "EINVAL"),
            ({"a\x00b": np.zeros(1)}, "EINVAL"),
            ({"\ud800": np.zeros(1)}, "EINVAL"),
            ({"a": np.zeros([1] * 9)}, "ETOOBIG"),
            ({"a": np.array(["x"])}, "EINVAL"),
            ({"a": np.array([1 + 2j])}, "EINVAL"),
            ({"t%d" % i: np.zeros(0) for i in range(4097)}, "ETOOBIG"),
        ]:
            with self.assertRaises(st.SafetensorsError) as cm:
                st.save(tensors)
            self.assertEqual(cm.exception.code, code, str(cm.exception))
        for meta in ({"": "v"}, {"k": 3}, {"__metadata__": "x"}):
            with self.assertRaises(st.SafetensorsError):
                st.save({"a": np.zeros(1)}, meta)
        with self.assertRaises(st.SafetensorsError):
            st.save([np.zeros(1)])

    def test_save_file_atomic_0600(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            st.save_file({"a": np.ones(3)}, path)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            self.assertEqual(os.listdir(d), ["m.safetensors"])
            np.testing.assert_array_equal(st.load_file(path)["a"], np.ones(3))
            with self.assertRaises(st.SafetensorsError):
                st.save_file({"": np.ones(3)}, path)
            self.assertEqual(os.listdir(d), ["m.safetensors"])

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch(self):
        t = {"w": torch.arange(6, dtype=torch.float64).reshape(2, 3), "n": torch.tensor(5), "h": torch.ones(2, dtype=torch.bfloat16),
             "g": torch.ones(2, requires_grad=True)}
        back = st.load(st.save(t), framework="pt")
        self.assertTrue(all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in back.values()))
        self.assertTrue(torch.equal(back["w"], t["w"].float()))
        self.assertEqual(back["n"].shape, torch.Size([]))
        self.assertEqual(st.save(t), st.save({k: v.detach().float().numpy() for k, v in t.items()}))


class CSideFiles(unittest.TestCase):
    """Files the C side reads and writes, byte for byte."""

    def same_after_round_trip(self, path):
        with open(path, "rb") as f:
            raw = f.read()
        tensors, meta = st.load_with_metadata(raw)
        self.assertEqual(st.save(tensors, meta), raw, path)

    def test_repository_files(self):
        # py_f32 is compared byte for byte with cfl_model_save in tests/unit/test_model.c.
        for rel in ("tests/data/models/py_f32.safetensors", "examples/jobs/external-python/initial.safetensors"):
            self.same_after_round_trip(os.path.join(SRC, rel))

    def test_mixed_dtypes_as_the_c_side(self):
        t = st.load_file(os.path.join(SRC, "tests/data/models/py_mixed.safetensors"))
        self.assertTrue(all(v.dtype == np.float32 for v in t.values()))

    @unittest.skipUnless(ST_TOOL, "CFL_ST_TOOL (the C writer) is not set")
    def test_c_writer_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.safetensors")
            subprocess.run([ST_TOOL, "write", path], check=True)
            self.same_after_round_trip(path)
            with open(path, "rb") as f:
                raw = f.read()
            tensors, meta = st.load_with_metadata(raw)
            self.assertEqual(meta["z\"q\\\x01"], "\u00e9")
            self.assertIn("b\"q\\\n\t\x1f", tensors)
            self.assertEqual(tensors["scalar"].shape, ())
            # written again from fresh arrays in another order: the same bytes
            again = {k: np.array(v, dtype=np.float64) for k, v in reversed(list(tensors.items()))}
            self.assertEqual(st.save(again, dict(reversed(list(meta.items())))), raw)


class Reading(unittest.TestCase):
    def test_conversions(self):
        vals = [1.0, -2.5, 0.0, 65504.0, 2.0**-24]
        data = raw_file(
            {"h": {"dtype": "F16", "shape": [5], "data_offsets": [0, 10]},
             "b": {"dtype": "BF16", "shape": [2], "data_offsets": [10, 14]},
             "d": {"dtype": "F64", "shape": [3], "data_offsets": [14, 38]}},
            struct.pack("<5e", *vals) + struct.pack("<2H", 0x3FC0, 0xC080) + struct.pack("<3d", 0.1, 1e300, -1e300),
        )
        t = st.load(data)
        np.testing.assert_array_equal(t["h"], np.array(vals, dtype=np.float32))
        np.testing.assert_array_equal(t["b"], np.array([1.5, -4.0], dtype=np.float32))
        np.testing.assert_array_equal(t["d"], np.array([0.1, np.inf, -np.inf], dtype=np.float32))

    def test_bad_files(self):
        for name, data, code in BAD:
            with self.subTest(name):
                with self.assertRaises(st.SafetensorsError) as cm:
                    st.load(data)
                self.assertEqual(cm.exception.code, code, "%s: %s" % (name, cm.exception))

    def test_good_files(self):
        for name, data in GOOD:
            with self.subTest(name):
                st.load(data)

    def test_messages_name_the_file_and_tensor(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            with open(path, "wb") as f:
                f.write(raw_file(f32("fc1.weight", [2], 0, 4), b"\0" * 4))
            with self.assertRaisesRegex(st.SafetensorsError, "cannot load '.*m.safetensors': tensor 'fc1.weight': data_offsets \\[0,4\\] hold 4 bytes, shape \\[2\\] needs 8"):
                st.load_file(path)

    def test_max_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            st.save_file({"a": np.zeros(100)}, path)
            with self.assertRaises(st.SafetensorsError) as cm:
                st.load_file(path, max_bytes=100)
            self.assertEqual(cm.exception.code, "ETOOBIG")
            self.assertEqual(st.load_file(path, max_bytes=1000)["a"].shape, (100,))

    @unittest.skipUnless(ST_TOOL, "CFL_ST_TOOL (the C reader) is not set")
    def test_same_verdict_as_the_c_reader(self):
        cases = [(n, d, c) for n, d, c in BAD] + [(n, d, "OK") for n, d in GOOD]
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for i, (_, data, _) in enumerate(cases):
                paths.append(os.path.join(d, "%03d.safetensors" % i))
                with open(paths[-1], "wb") as f:
                    f.write(data)
            out = subprocess.run([ST_TOOL, "check"] + paths, check=True, capture_output=True, text=True).stdout.split()
        self.assertEqual(len(out), len(cases))
        for (name, _, code), got in zip(cases, out):
            self.assertEqual(got, code, "the C reader on '%s'" % name)


if __name__ == "__main__":
    unittest.main()
