"""The channel between a script and its site (docs/python.md, "The channel").

Each message is a 4-byte big-endian length N (1 <= N <= 1 MiB), then N bytes of one UTF-8
JSON object with a string "type". What comes from the site is checked like any input: a
message that breaks a rule raises ProtocolError.
"""

import json
import math
import socket
import struct

MAX_MESSAGE = 1 << 20


class ProtocolError(RuntimeError):
    """A message that breaks the channel's rules."""


class ChannelClosed(EOFError):
    """The site closed the channel (between two messages)."""


def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ProtocolError("duplicate key '%s'" % k[:64])
        d[k] = v
    return d


def _bad_constant(s):
    raise ProtocolError("%s is not a number JSON allows" % s)


def encode(msg):
    """The framed bytes of the dict `msg`."""
    data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if not 1 <= len(data) <= MAX_MESSAGE:
        raise ProtocolError("message of %d bytes (1 to %d allowed)" % (len(data), MAX_MESSAGE))
    return struct.pack(">I", len(data)) + data


def decode(data):
    """The dict of one message body `data` (bytes), checked: a JSON object with a string type."""
    try:
        msg = json.loads(data.decode("utf-8"), object_pairs_hook=_no_dups, parse_constant=_bad_constant)
    except UnicodeDecodeError:
        raise ProtocolError("message is not utf-8") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("message is not json: %s" % exc) from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a json object")
    if not isinstance(msg.get("type"), str):
        raise ProtocolError("message has no string 'type'")
    for v in _numbers(msg):
        if isinstance(v, float) and not math.isfinite(v):
            raise ProtocolError("message holds a number out of range")
    return msg


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, float):
        yield obj


class Channel:
    """Framed JSON messages over a connected stream socket."""

    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def from_fd(cls, fd):
        sock = socket.socket(fileno=fd)
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ProtocolError("descriptor %d is not a unix stream socket" % fd)
        sock.set_inheritable(False)
        sock.setblocking(True)
        return cls(sock)

    def send(self, msg):
        self.sock.sendall(encode(msg))

    def _read(self, n, at_start):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 16))
            if not chunk:
                if at_start and not buf:
                    raise ChannelClosed("the site closed the channel")
                raise ProtocolError("the channel closed in the middle of a message")
            buf += chunk
        return bytes(buf)

    def recv(self):
        """The next message (a dict). Raises ChannelClosed at a clean end, ProtocolError."""
        (n,) = struct.unpack(">I", self._read(4, True))
        if not 1 <= n <= MAX_MESSAGE:
            raise ProtocolError("message length %d (1 to %d allowed)" % (n, MAX_MESSAGE))
        return decode(self._read(n, False))

    def close(self):
        self.sock.close()
