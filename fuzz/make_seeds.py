#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_kitcfg, fuzz_bundle, fuzz_executor and fuzz_admin
(fuzz/corpus/<name>/): valid inputs as cfl writes them, and the edge cases each parser must
refuse. Run from anywhere; it rewrites only the files it names."""
import base64
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(corpus, name, data):
    d = os.path.join(HERE, "corpus", corpus)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- fuzz_kitcfg: one role byte ('0' client, '1' server, '2' admin), then the file ---------

SERVER = {
    "format_version": 2, "project_name": "example_project",
    "servers": [{
        "name": "example_project", "identity": "server1",
        "service": {"target": "server1:8002", "scheme": "tcp"},
        "fed_learn_port": 8002, "admin_port": 8003, "ssl_private_key": "server.key",
        "ssl_cert": "server.crt", "ssl_root_cert": "rootCA.pem",
        "connection_security": "mtls", "host_names": ["server1", "localhost"],
        "heart_beat_timeout": 60, "max_num_clients": 1000}],
    "secure_train": True}
CLIENT = {
    "format_version": 2, "project_name": "example_project",
    "servers": [{"name": "example_project", "identity": "server1",
                 "service": {"target": "server1:8002", "scheme": "tcp"}}],
    "client": {"name": "site-1", "org": "nvidia", "ssl_private_key": "client.key",
               "ssl_cert": "client.crt", "ssl_root_cert": "rootCA.pem",
               "connection_security": "mtls"},
    "secure_train": True}
ADMIN = {
    "format_version": 1,
    "admin": {"project_name": "example_project", "server_identity": "server1",
              "host": "server1", "port": 8003, "connection_security": "mtls",
              "client_cert": "client.crt", "client_key": "client.key", "ca_cert": "rootCA.pem",
              "username": "admin@nvidia.com", "role": "project_admin",
              "upload_dir": "transfer", "download_dir": "transfer"},
    "secure_train": True}


def kit(name, role, cfg):
    if isinstance(cfg, (dict, list)):
        cfg = json.dumps(cfg, indent=2)
    if isinstance(cfg, str):
        cfg = cfg.encode()
    write("kitcfg", name, role.encode() + cfg)


def variant(base, path, value):
    """A deep copy of base with the field at `path` (a list of keys) set, or removed (None)."""
    c = json.loads(json.dumps(base))
    o = c
    for k in path[:-1]:
        o = o[k]
    if value is None:
        del o[path[-1]]
    else:
        o[path[-1]] = value
    return c


def kitcfg():
    kit("server", "1", SERVER)
    kit("client", "0", CLIENT)
    kit("admin", "2", ADMIN)
    kit("server-custom-ca-tls", "1", variant(variant(SERVER, ["servers", 0, "custom_ca_cert"],
                                                     "customRootCA.pem"),
                                             ["servers", 0, "connection_security"], "tls"))
    kit("client-ipv6", "0", variant(CLIENT, ["servers", 0, "service", "target"], "[::1]:8002"))
    kit("client-clear-no-mode", "0",
        variant(variant(CLIENT, ["client", "connection_security"], None), ["secure_train"],
                False))
    kit("admin-custom-ca", "2", variant(ADMIN, ["admin", "custom_ca_cert"], "customRootCA.pem"))
    # Edges every loader must refuse (or take) without harm.
    kit("client-target-no-port", "0", variant(CLIENT, ["servers", 0, "service", "target"],
                                              "server1:"))
    kit("client-target-space-port", "0", variant(CLIENT, ["servers", 0, "service", "target"],
                                                 "server1: 80"))
    kit("client-target-empty-v6", "0", variant(CLIENT, ["servers", 0, "service", "target"],
                                               "[]:80"))
    kit("client-target-long", "0", variant(CLIENT, ["servers", 0, "service", "target"],
                                           "h" * 300 + ":80"))
    kit("server-port-0", "1", variant(SERVER, ["servers", 0, "fed_learn_port"], 0))
    kit("server-port-65536", "1", variant(SERVER, ["servers", 0, "admin_port"], 65536))
    kit("server-port-string", "1", variant(SERVER, ["servers", 0, "fed_learn_port"], "8002"))
    kit("server-port-real", "1", variant(SERVER, ["servers", 0, "fed_learn_port"], 8002.0))
    kit("server-cert-traversal", "1", variant(SERVER, ["servers", 0, "ssl_cert"], "../../etc/x"))
    kit("server-cert-dotdot", "1", variant(SERVER, ["servers", 0, "ssl_cert"], ".."))
    kit("server-identity-long", "1", variant(SERVER, ["servers", 0, "identity"], "s" * 300))
    kit("server-identity-nul", "1",
        json.dumps(SERVER).replace('"server1"', '"server1\\u0000evil"', 1))
    kit("server-no-servers", "1", variant(SERVER, ["servers"], []))
    kit("server-mode-bad", "1", variant(SERVER, ["servers", 0, "connection_security"], "ssl"))
    kit("admin-host-empty", "2", variant(ADMIN, ["admin", "host"], ""))
    kit("admin-not-object", "2", variant(ADMIN, ["admin"], ["x"]))
    kit("duplicate-key", "0", '{"client": {}, "client": {}}')
    kit("not-json", "0", "servers: [server1]\n")
    kit("array", "1", "[]")
    kit("empty", "2", "")
    kit("not-utf8", "0", b'{"project_name": "\xff\xfe"}')


def main():
    which = sys.argv[1:] or ["kitcfg", "bundle", "executor", "admin"]
    for name in which:
        globals()[name]()


if __name__ == "__main__":
    main()
