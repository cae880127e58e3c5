"""Safetensors files as cfl reads and writes them (docs/models.md, "Model files").

Writing gives exactly the bytes the C side (`cfl_model_save`) gives for the same tensors and
metadata: float32 little-endian, tensors sorted by name with consecutive offsets from 0,
compact JSON with "__metadata__" first (keys sorted) and each tensor as dtype, shape,
data_offsets, the header padded with spaces to a multiple of 8 bytes.

Reading is as strict as the C reader: every rule of the table in docs/models.md is checked, in
the same order, before any tensor is decoded, and the first one broken raises
`SafetensorsError` with the same kind (`code`: "EPARSE", "ETOOBIG", "EUNSUPP") and a message
naming the tensor. F64, F16 and BF16 tensors are converted to float32, as the C side does.

    tensors = load_file("model.safetensors")            # {name: numpy float32 array}
    tensors = load_file("model.safetensors", framework="pt")   # torch tensors
    save_file({"w": array_or_tensor}, "out.safetensors")

torch is imported only when a torch tensor is asked for (framework="pt"); tensors given to
save() may be torch tensors whatever the framework (they are converted on the CPU).
"""

import json
import math
import os
import struct
import tempfile

import numpy as np

__all__ = [
    "SafetensorsError",
    "MAX_HEADER",
    "MAX_TENSORS",
    "MAX_NDIM",
    "NAME_MAX",
    "save",
    "save_file",
    "load",
    "load_file",
    "load_with_metadata",
]

MAX_HEADER = 16 << 20  # CFL_MODEL_MAX_HEADER: JSON header bytes
MAX_TENSORS = 4096  # CFL_MODEL_MAX_TENSORS
MAX_NDIM = 8  # CFL_MODEL_MAX_NDIM
NAME_MAX = 255  # bytes of UTF-8 in a tensor name
META_KEY = "__metadata__"
_MAX_COUNT = (2**64 - 1) // 8  # SIZE_MAX / 8 on a 64-bit host
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # jansson's json_int_t
_DTYPES = {"F32": ("<f4", 4), "F64": ("<f8", 8), "F16": ("<f2", 2), "BF16": ("<u2", 2)}


class SafetensorsError(ValueError):
    """A file or a model that breaks a rule; `code` is the C side's error name."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _parse_err(msg):
    return SafetensorsError("EPARSE", msg)


# ---- writing ----


def _json_str(s):
    """A JSON string as jansson writes it (JSON_COMPACT, UTF-8 kept as is): '"' and '\\'
    escaped, \\b \\f \\n \\r \\t by name, other control characters as \\u00XX (upper case)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20:
            named = {8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t"}
            out.append(named.get(o, "\\u%04X" % o))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf8(s, what):
    if not isinstance(s, str):
        raise SafetensorsError("EINVAL", "%s must be a string, not %s" % (what, type(s).__name__))
    if "\x00" in s:
        raise SafetensorsError("EINVAL", "%s %r holds a NUL character" % (what, s))
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise SafetensorsError("EINVAL", "%s %r is not valid utf-8" % (what, s)) from None


def _as_f32(name, value):
    """A C-contiguous little-endian float32 numpy array of `value` (numpy array, torch tensor,
    number or nested list)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().float().numpy()
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiub":
            raise TypeError("dtype %s" % arr.dtype)
        with np.errstate(over="ignore"):
            arr = np.asarray(arr, dtype="<f4", order="C")
    except (TypeError, ValueError) as exc:
        raise SafetensorsError("EINVAL", "tensor '%s': cannot make float32 values of it (%s)" % (name, exc)) from None
    if arr.ndim > MAX_NDIM:
        raise SafetensorsError("ETOOBIG", "tensor '%s': %d dimensions, at most %d" % (name, arr.ndim, MAX_NDIM))
    return arr


def _check_name(name):
    raw = _utf8(name, "tensor name")
    if not 1 <= len(raw) <= NAME_MAX or name == META_KEY:
        raise SafetensorsError("EINVAL", "tensor name %r: 1 to %d bytes of utf-8, not %r" % (name, NAME_MAX, META_KEY))
    return raw


def _encode(tensors, metadata):
    """(header bytes with the 8-byte length, [arrays in file order])."""
    if not hasattr(tensors, "items"):
        raise SafetensorsError("EINVAL", "tensors must be a mapping of name to array")
    if len(tensors) > MAX_TENSORS:
        raise SafetensorsError("ETOOBIG", "%d tensors, at most %d" % (len(tensors), MAX_TENSORS))
    items = []
    for name, value in tensors.items():
        items.append((_check_name(name), name, _as_f32(name, value)))
    items.sort(key=lambda t: t[0])
    parts = []
    if metadata:
        meta = []
        for k, v in metadata.items():
            kb = _utf8(k, "metadata key")
            _utf8(v, "metadata value of %r" % k)
            if not kb or k == META_KEY:
                raise SafetensorsError("EINVAL", "metadata key %r: empty or reserved" % k)
            meta.append((kb, k, v))
        meta.sort(key=lambda t: t[0])
        body = ",".join("%s:%s" % (_json_str(k), _json_str(v)) for _, k, v in meta)
        parts.append("%s:{%s}" % (_json_str(META_KEY), body))
    at, arrays = 0, []
    for _, name, arr in items:
        end = at + 4 * arr.size
        shape = ",".join(str(d) for d in arr.shape)
        parts.append('%s:{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}' % (_json_str(name), shape, at, end))
        arrays.append(arr)
        at = end
    head = ("{" + ",".join(parts) + "}").encode("utf-8")
    head += b" " * (-len(head) % 8)
    if len(head) > MAX_HEADER:
        raise SafetensorsError("ETOOBIG", "header of %d bytes exceeds the limit of %d" % (len(head), MAX_HEADER))
    return struct.pack("<Q", len(head)) + head, arrays


def save(tensors, metadata=None):
    """The safetensors bytes of `tensors` ({name: array-like}), as cfl writes them."""
    head, arrays = _encode(tensors, metadata)
    return head + b"".join(a.tobytes() for a in arrays)


def save_file(tensors, path, metadata=None):
    """Writes `tensors` to `path` as cfl does: a temporary file (mode 0600) in the same folder,
    flushed and renamed over `path`, so a reader sees the old file or the new one."""
    head, arrays = _encode(tensors, metadata)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for a in arrays:
                f.write(memoryview(a).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---- reading ----


def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise _parse_err("header is not valid json: duplicate object key '%s'" % k[:64])
        d[k] = v
    return d


def _parse_int(s):
    v = int(s)
    if not _INT_MIN <= v <= _INT_MAX:
        raise _parse_err("header is not valid json: too big integer '%s'" % s[:32])
    return v


def _parse_float(s):
    v = float(s)
    if math.isinf(v):
        raise _parse_err("header is not valid json: real number overflow '%s'" % s[:32])
    return v


def _bad_constant(s):
    raise _parse_err("header is not valid json: invalid token '%s'" % s)


def _check_strings(obj, depth=0):
    """jansson refuses what Python's json takes: NUL characters (\\u0000) and lone surrogates."""
    if isinstance(obj, str):
        if "\x00" in obj:
            raise _parse_err("header is not valid json: \\u0000 is not allowed")
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise _parse_err("header is not valid json: invalid unicode escape") from None
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_strings(k, depth + 1)
            _check_strings(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            _check_strings(v, depth + 1)


def _parse_json(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _parse_err("header is not valid json: invalid utf-8 at byte %d" % exc.start) from None
    try:
        root = json.loads(
            text, object_pairs_hook=_no_dups, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_bad_constant
        )
        _check_strings(root)
    except json.JSONDecodeError as exc:
        raise _parse_err("header is not valid json: %s (at byte %d)" % (exc.msg, exc.pos)) from None
    except RecursionError:
        raise _parse_err("header is not valid json: too deeply nested") from None
    if not isinstance(root, dict):
        raise _parse_err("header must be a json object")
    return root


def _is_int(v):
    return type(v) is int  # not bool: JSON true is no integer


def _shape_str(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def _parse_entry(name, v, max_data):
    """(dtype, shape, count, begin, end) of the header entry `name`, by the C reader's rules."""
    nlen = len(name.encode("utf-8"))
    if not 1 <= nlen <= NAME_MAX:
        raise _parse_err("tensor name of %d bytes (1 to %d allowed)" % (nlen, NAME_MAX))
    if not isinstance(v, dict):
        raise _parse_err("tensor '%s' must be an object" % name)
    for key in v:
        if key not in ("dtype", "shape", "data_offsets"):
            raise _parse_err("tensor '%s': unknown key '%s'" % (name, key[:64]))
    if len(v) != 3:
        raise _parse_err("tensor '%s' needs dtype, shape and data_offsets" % name)
    dtype, shape, offs = v["dtype"], v["shape"], v["data_offsets"]
    if not isinstance(dtype, str):
        raise _parse_err("tensor '%s': dtype must be a string" % name)
    if dtype not in _DTYPES:
        raise SafetensorsError(
            "EUNSUPP", "tensor '%s': dtype '%s' is not supported (F32, F64, F16, BF16 are)" % (name, dtype[:32])
        )
    if not isinstance(shape, list):
        raise _parse_err("tensor '%s': shape must be an array" % name)
    if len(shape) > MAX_NDIM:
        raise SafetensorsError(
            "ETOOBIG", "tensor '%s': shape has %d dimensions, at most %d" % (name, len(shape), MAX_NDIM)
        )
    if not all(_is_int(d) and d >= 0 for d in shape):
        raise _parse_err("tensor '%s': shape must hold integers >= 0" % name)
    count = 1
    if 0 in shape:
        count = 0
    else:
        for d in shape:
            if d > _MAX_COUNT // count:
                raise SafetensorsError("ETOOBIG", "tensor '%s': shape %s is too large" % (name, _shape_str(shape)))
            count *= d
    if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs) and 0 <= offs[0] <= offs[1]):
        raise _parse_err("tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end" % name)
    begin, end = offs
    if end > max_data:
        raise _parse_err(
            "tensor '%s': data_offsets [%d,%d] pass the end of the data (%d bytes)" % (name, begin, end, max_data)
        )
    need = count * _DTYPES[dtype][1]
    if end - begin != need:
        raise _parse_err(
            "tensor '%s': data_offsets [%d,%d] hold %d bytes, shape %s needs %d"
            % (name, begin, end, end - begin, _shape_str(shape), need)
        )
    return dtype, tuple(shape), count, begin, end


def _check_tiling(entries, avail):
    spans = sorted((e[4], e[5], i) for i, e in enumerate(entries))
    at = 0
    for k, (begin, end, i) in enumerate(spans):
        if begin < at:
            raise _parse_err("tensors '%s' and '%s' overlap" % (entries[spans[k - 1][2]][0], entries[i][0]))
        if begin > at:
            raise _parse_err("gap of %d bytes before tensor '%s' at %d" % (begin - at, entries[i][0], begin))
        at = end
    if at != avail:
        raise _parse_err("%d bytes of data after the last tensor" % (avail - at))


def _parse_header(buf):
    """(entries [(name, dtype, shape, count, begin, end)], metadata, data offset) of `buf`."""
    if len(buf) < 8:
        raise _parse_err("%d bytes, too short for a safetensors file" % len(buf))
    (n,) = struct.unpack_from("<Q", buf, 0)
    if n > MAX_HEADER:
        raise SafetensorsError("ETOOBIG", "header length %d exceeds the limit of %d" % (n, MAX_HEADER))
    if n > len(buf) - 8:
        raise _parse_err("header length %d exceeds the %d bytes that follow" % (n, len(buf) - 8))
    if n < 2:
        raise _parse_err("header length %d is too short for json" % n)
    root = _parse_json(bytes(buf[8 : 8 + n]))
    max_data = len(buf) - 8 - n
    meta = root.get(META_KEY)
    if meta is not None or META_KEY in root:
        if not isinstance(meta, dict):
            raise _parse_err("'%s' must be an object" % META_KEY)
        for k, v in meta.items():
            if not isinstance(v, str):
                raise _parse_err("'%s' value of '%s' must be a string" % (META_KEY, k))
    ntensors = len(root) - (META_KEY in root)
    if ntensors > MAX_TENSORS:
        raise SafetensorsError("ETOOBIG", "%d tensors, at most %d" % (ntensors, MAX_TENSORS))
    entries = []
    for name, v in root.items():
        if name != META_KEY:
            entries.append((name,) + _parse_entry(name, v, max_data))
    _check_tiling(entries, max_data)
    return entries, dict(meta or {}), 8 + n


def _decode(buf, base, dtype, shape, count, begin):
    if count == 0:
        return np.zeros(shape, dtype=np.float32)
    code, _ = _DTYPES[dtype]
    raw = np.frombuffer(buf, dtype=code, count=count, offset=base + begin)
    if dtype == "BF16":  # the high half of a float32
        out = (raw.astype(np.uint32) << 16).view(np.float32)
    else:
        with np.errstate(over="ignore"):
            out = raw.astype(np.float32)  # a copy, native order; F64 rounded to nearest
    return out.reshape(shape)


def _to_framework(arrays, framework):
    if framework in ("np", "numpy"):
        return arrays
    if framework in ("pt", "pytorch", "torch"):
        import torch  # only when asked for

        return {k: torch.from_numpy(v) for k, v in arrays.items()}
    raise ValueError("framework must be 'np' or 'pt', not %r" % (framework,))


def load_with_metadata(data, framework="np"):
    """({name: float32 array or torch tensor}, {metadata}) of the safetensors bytes `data`,
    tensors in the header's order. Raises SafetensorsError on the first rule broken."""
    entries, meta, base = _parse_header(data)
    out = {}
    for name, dtype, shape, count, begin, _ in entries:
        out[name] = _decode(data, base, dtype, shape, count, begin)
    return _to_framework(out, framework), meta


def load(data, framework="np"):
    """{name: float32 array (or torch tensor with framework="pt")} of the bytes `data`."""
    return load_with_metadata(data, framework)[0]


def _read_bounded(path, max_bytes):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise SafetensorsError("ETOOBIG", "%d bytes, more than the limit of %d" % (size, max_bytes))
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise SafetensorsError("ETOOBIG", "more than the limit of %d bytes" % max_bytes)
    return data


def load_file(path, framework="np", max_bytes=None, with_metadata=False):
    """The tensors of the file `path` (see load()); `max_bytes` bounds the file's size."""
    data = _read_bounded(path, max_bytes)
    try:
        tensors, meta = load_with_metadata(data, framework)
    except SafetensorsError as exc:
        raise SafetensorsError(exc.code, "cannot load '%s': %s" % (path, exc)) from None
    return (tensors, meta) if with_metadata else tensors
