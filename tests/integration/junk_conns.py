#!/usr/bin/env python3
"""Junk connections for the admission control test and benchmark (stdlib only).

Opens COUNT TCP connections to HOST:PORT from the source address SOURCE and holds them: every
PARTIAL-th one sends the start of a TLS record (a header announcing 512 bytes, then 40), the
others send nothing. A connection the server closes is opened again after REOPEN_MS, so the
server keeps meeting COUNT connections from that address for SECONDS. Prints "ready" once the
first COUNT connection attempts are made, and at the end one line of counts:
"junk: opened N, closed by the server C, open at the end O, connect errors E".
"""
import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time

PARTIAL = b"\x16\x03\x01\x02\x00" + bytes(range(40))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else need
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Junk:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.opened = self.closed = self.errors = 0
        self.live = 0
        self.reopen = []  # times at which to open one more
        self.n = 0
        self.stop = False

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.a.source, 0))
            rc = s.connect_ex((self.a.host, self.a.port))
        except OSError:
            rc = -1
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.errors += 1
            self.reopen.append(time.monotonic() + self.a.reopen_ms / 1000)
            return
        self.n += 1
        partial = self.a.partial > 0 and self.n % self.a.partial == 0
        self.sel.register(s, selectors.EVENT_WRITE, partial)
        self.opened += 1
        self.live += 1

    def event(self, key, mask):
        s = key.fileobj
        if mask & selectors.EVENT_WRITE:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0 and key.data:
                try:
                    s.send(PARTIAL)
                except OSError:
                    err = 1
            if err == 0:
                self.sel.modify(s, selectors.EVENT_READ, key.data)
                return
            self.errors += 1
        else:
            try:
                if s.recv(4096):
                    return  # the server said something (a TLS alert): keep holding
            except OSError:
                pass
            self.closed += 1
        self.sel.unregister(s)
        s.close()
        self.live -= 1
        self.reopen.append(time.monotonic() + self.a.reopen_ms / 1000)

    def run(self):
        for _ in range(self.a.count):
            self.open_one()
        print("ready", flush=True)
        end = time.monotonic() + self.a.seconds
        while time.monotonic() < end and not self.stop:
            for key, mask in self.sel.select(timeout=0.05):
                self.event(key, mask)
            now = time.monotonic()
            due = [t for t in self.reopen if t <= now]
            self.reopen = [t for t in self.reopen if t > now]
            for _ in due:
                self.open_one()
        print("junk: opened %d, closed by the server %d, open at the end %d, connect errors %d"
              % (self.opened, self.closed, self.live, self.errors), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--partial", type=int, default=2, help="every Nth sends a partial record")
    p.add_argument("--reopen-ms", type=int, default=1000)
    a = p.parse_args()
    raise_nofile(a.count + 100)
    j = Junk(a)

    def stop(signo, frame):
        j.stop = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    j.run()


if __name__ == "__main__":
    sys.exit(main())
