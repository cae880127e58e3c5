#!/usr/bin/env python3
"""A TCP relay that records every byte in both directions: relay.py LISTEN_PORT TARGET_PORT OUT.
LISTEN_PORT 0: a port the kernel picks. Prints "ready PORT" once listening. Loopback only;
serves connections until SIGTERM, then exits 0 (the tests check the status)."""
import selectors, signal, socket, sys

signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(0))

listen_port, target_port, out_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = open(out_path, "wb")
sel = selectors.DefaultSelector()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", listen_port))
ls.listen(16)
sel.register(ls, selectors.EVENT_READ)
print("ready", ls.getsockname()[1], flush=True)
peers = {}
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is ls:
            c, _ = ls.accept()
            u = socket.create_connection(("127.0.0.1", target_port))
            peers[c], peers[u] = u, c
            sel.register(c, selectors.EVENT_READ)
            sel.register(u, selectors.EVENT_READ)
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        other = peers.get(s)
        if not data or other is None:
            for x in (s, other):
                if x is not None and x in peers:
                    sel.unregister(x)
                    peers.pop(x, None)
                    x.close()
            continue
        out.write(data)
        out.flush()
        other.sendall(data)
