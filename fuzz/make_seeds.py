#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_kitcfg, fuzz_bundle, fuzz_executor, fuzz_admin, fuzz_manifest
and fuzz_authhdrs (fuzz/corpus/<name>/): valid inputs as cfl writes them, and the edge cases each parser must
refuse. Run from anywhere; it rewrites only the files it names."""
import base64
import hashlib
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


# --- fuzz_bundle: a job bundle as `submit_job` packs it ------------------------------------

CONFIG = {"workflow": {"name": "fedavg", "num_rounds": 2, "min_clients": 1,
                       "round_timeout_s": 120},
          "executor": {"type": "builtin", "dataset": "digits", "arch": "softmax", "lr": 0.1,
                       "epochs": 1, "batch": 16, "seed": 1, "alpha": 0},
          "sites": ["@ALL"]}
COMMAND_CONFIG = {"workflow": {"name": "fedavg", "num_rounds": 3, "min_clients": 2,
                               "round_timeout_s": 300, "result": "diff"},
                  "executor": {"type": "command", "command": ["python3", "train.py"],
                               "initial_model": "initial.safetensors"},
                  "sites": ["@ALL"]}
META = {"name": "fedavg-digits", "description": "FedAvg on the digits"}


def b64(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def bundle_text(files, raw=None):
    """{"files": {...}}; `raw` replaces the text of the files object (for keys JSON cannot
    build from a dict: duplicates, bad escapes)."""
    if raw is not None:
        return '{"files": ' + raw + "}"
    return json.dumps({"files": {k: (b64(v) if not isinstance(v, RawValue) else v.v)
                                 for k, v in files.items()}}, separators=(",", ":"))


class RawValue:
    """A value put into the bundle as it is (not base64-encoded first)."""

    def __init__(self, v):
        self.v = v


def good_files(**more):
    f = {"config.json": CONFIG, "meta.json": META}
    f.update(more)
    return f


def with_workflow(**kv):
    c = json.loads(json.dumps(CONFIG))
    for k, v in kv.items():
        if v is None:
            c["workflow"].pop(k, None)
        else:
            c["workflow"][k] = v
    return c


BAD_NAMES = {
    "traversal": "../x", "absolute": "/abs", "inner-traversal": "a/../../b", "empty": "",
    "dot": ".", "dotdot": "..", "hidden": ".bashrc", "backslash": "a\\\\..\\\\b",
    "space": "a b", "unicode": "caf\\u00e9", "newline": "a\\nb", "long-129": "n" * 129,
    "very-long": "n" * 3000, "slash-end": "dir/", "nul-escape": "a\\u0000b",
}


def bundle():
    w = lambda name, text: write("bundle", name, text)
    w("good", bundle_text(good_files()))
    w("good-command", bundle_text({"config.json": COMMAND_CONFIG, "meta.json": META,
                                   "train.py": "print('hi')\n",
                                   "initial.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "}))
    w("no-meta", bundle_text({"config.json": CONFIG}))
    w("name-128", bundle_text(good_files(**{"n" * 128: "x"})))
    w("empty-file", bundle_text(good_files(**{"empty.txt": ""})))
    for tag, name in BAD_NAMES.items():
        # The names are JSON text (escapes stay escapes).
        w("name-" + tag, bundle_text(None, raw='{"config.json":"%s","meta.json":"%s","%s":"eA=="}'
                                     % (b64(CONFIG), b64(META), name)))
    w("name-raw-nul", ('{"files":{"config.json":"%s","a' % b64(CONFIG)).encode() + b"\x00" +
      b'b":"eA=="}}')
    w("name-raw-control", '{"files":{"config.json":"%s","a\x01b":"eA=="}}' % b64(CONFIG))
    w("files-65", bundle_text(good_files(**{"f%02d" % i: "x" for i in range(63)})))
    w("files-64", bundle_text(good_files(**{"f%02d" % i: "x" for i in range(62)})))
    w("duplicate-name", bundle_text(None, raw='{"config.json":"%s","a":"eA==","a":"eQ=="}'
                                    % b64(CONFIG)))
    w("base64-length", bundle_text(good_files(**{"x.bin": RawValue("eA=")})))
    w("base64-chars", bundle_text(good_files(**{"x.bin": RawValue("e!==")})))
    w("base64-inner-pad", bundle_text(good_files(**{"x.bin": RawValue("eA==eA==")})))
    w("value-not-string", bundle_text(good_files(**{"x.bin": RawValue(5)})))
    w("config-missing", bundle_text({"meta.json": META}))
    w("config-array", bundle_text(good_files(**{"config.json": [1, 2]})))
    w("config-not-json", bundle_text(good_files(**{"config.json": "workflow: fedavg"})))
    w("config-not-utf8", bundle_text(good_files(**{"config.json": b'{"a": "\xff"}'})))
    w("config-duplicate", bundle_text(good_files(**{"config.json": '{"workflow":1,"workflow":2}'})))
    w("meta-string", bundle_text(good_files(**{"meta.json": '"meta"'})))
    w("rounds-0", bundle_text(good_files(**{"config.json": with_workflow(num_rounds=0)})))
    w("rounds-100001", bundle_text(good_files(**{"config.json": with_workflow(num_rounds=100001)})))
    w("rounds-2p32-plus-1", bundle_text(good_files(**{"config.json":
                                                      with_workflow(num_rounds=2**32 + 1)})))
    w("rounds-real", bundle_text(good_files(**{"config.json": with_workflow(num_rounds=2.0)})))
    w("min-clients-1025", bundle_text(good_files(**{"config.json":
                                                    with_workflow(min_clients=1025)})))
    w("min-clients-negative", bundle_text(good_files(**{"config.json":
                                                        with_workflow(min_clients=-5)})))
    w("timeout-negative", bundle_text(good_files(**{"config.json":
                                                    with_workflow(round_timeout_s=-1)})))
    w("timeout-huge", bundle_text(good_files(**{"config.json":
                                                with_workflow(round_timeout_s=2**62)})))
    w("workflow-unknown", bundle_text(good_files(**{"config.json": with_workflow(name="cyclic")})))
    w("files-not-object", '{"files": ["config.json"]}')
    w("top-array", '[{"files": {}}]')
    w("files-empty", '{"files": {}}')
    w("deep", '{"files": ' + "[" * 3000 + "]" * 3000 + "}")
    w("empty", "")


# --- fuzz_executor: the frames the server sends a site -------------------------------------

REQUEST, REPLY, ONEWAY, CHUNK = 1, 2, 3, 4
MORE = 1


def frame(ftype, fid, headers=(), body=b"", flags=0, ref=0):
    """One frame in wire format (docs/protocol.md, section 1)."""
    hdr = b""
    if ftype in (REQUEST, REPLY, ONEWAY):
        hdr = struct.pack(">H", len(headers))
        for k, v in headers:
            k = k.encode()
            v = v.encode() if isinstance(v, str) else v
            hdr += struct.pack(">B", len(k)) + k + struct.pack(">H", len(v)) + v
    if isinstance(body, str):
        body = body.encode()
    payload = hdr + body
    return (b"CF" + bytes([1, ftype]) +
            struct.pack(">HHIIQQ", flags, len(hdr), len(payload), 0, fid, ref) + payload)


def safetensors(tensors):
    """A safetensors file of F32 tensors: [(name, shape, values)]."""
    header, data = {}, b""
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


JOB = "20260101-000000-abcdef"
MODEL = safetensors([("w", [4], [0.5, -1.0, 2.0, 0.0]), ("b", [1], [0.25])])
SOFTMAX = safetensors([("linear.weight", [10, 64], [0.0] * 640), ("linear.bias", [10], [0.0] * 10)])


def deploy(fid, config, job=JOB, extra=None, streamed=False):
    files = {"config.json": config, "meta.json": META}
    files.update(extra or {})
    body = bundle_text(files).encode()
    hdrs = [("topic", "job.deploy"), ("src", "server"), ("job", job)]
    if not streamed:
        return frame(REQUEST, fid, hdrs, body)
    half = len(body) // 2
    return (frame(REQUEST, fid, hdrs + [("body-length", str(len(body)))], body[:half], MORE) +
            frame(CHUNK, fid + 1, body=body[half:], ref=fid))


def task(fid, job=JOB, rnd="1", idx="0", count="2", model=MODEL, topic="task.train"):
    hdrs = [("topic", topic), ("src", "server"), ("job", job)]
    for k, v in (("round", rnd), ("site_index", idx), ("site_count", count)):
        if v is not None:
            hdrs.append((k, v))
    return frame(REQUEST, fid, hdrs, model)


SYNTHETIC = {"workflow": {"name": "fedavg", "num_rounds": 2, "result": "diff"},
             "executor": {"type": "builtin", "dataset": "synthetic", "floats": 4}}


def executor_config(**ex):
    c = json.loads(json.dumps(CONFIG))
    c["executor"].update(ex)
    return c


def executor():
    w = lambda name, data: write("executor", name, data)
    w("deploy", deploy(1, CONFIG))
    w("deploy-streamed", deploy(1, CONFIG, streamed=True))
    w("deploy-train-builtin", deploy(1, CONFIG) + task(3, model=SOFTMAX))
    w("deploy-train-synthetic", deploy(1, SYNTHETIC) + task(3))
    w("deploy-train-command", deploy(1, COMMAND_CONFIG, extra={"train.py": "pass\n"}) +
      task(3))
    w("deploy-train-get-end", deploy(1, SYNTHETIC) + task(3) +
      frame(REQUEST, 5, [("topic", "task.get_update"), ("src", "server"), ("job", JOB),
                         ("round", "1")]) +
      frame(ONEWAY, 7, [("topic", "job.end"), ("src", "server"), ("job", JOB)]) +
      frame(ONEWAY, 9, [("topic", "shutdown"), ("src", "server")]))
    w("abort", frame(ONEWAY, 1, [("topic", "job.abort"), ("src", "server"), ("job", JOB)]))
    # Regressions: a command word that is not a string (argv[0] NULL), settings whose
    # conversion to int was undefined, a site index whose + 1 overflowed.
    w("regress-command-not-string", deploy(1, {**COMMAND_CONFIG, "executor": {
        "type": "command", "command": [5, "train.py"]}}) + task(3))
    w("regress-hidden-1e300", deploy(1, executor_config(hidden=1e300)) + task(3, model=SOFTMAX))
    w("regress-seed-negative", deploy(1, executor_config(seed=-1)) + task(3, model=SOFTMAX))
    w("regress-site-int-max", deploy(1, SYNTHETIC) + task(3, idx="2147483647",
                                                          count="2147483647"))
    for tag, kv in {"round-negative": {"rnd": "-1"}, "round-plus": {"rnd": "+1"},
                    "round-space": {"rnd": " 1"}, "round-huge": {"rnd": "99999999999999999999"},
                    "round-trailing": {"rnd": "1x"}, "round-empty": {"rnd": ""},
                    "round-missing": {"rnd": None}, "round-0": {"rnd": "0"},
                    "round-100001": {"rnd": "100001"}, "site-equal": {"idx": "2"},
                    "site-count-0": {"idx": "0", "count": "0"},
                    "site-count-1025": {"count": "1025"}, "site-missing": {"idx": None}}.items():
        w("train-" + tag, deploy(1, SYNTHETIC) + task(3, **kv))
    for tag, job in {"traversal": "../x", "empty": "", "64": "j" * 64, "slash": "a/b",
                     "dot": "a.b", "dotdot": ".."}.items():
        w("job-" + tag, deploy(1, CONFIG, job=job) + task(3, job=job))
    w("train-no-job", task(3))
    w("train-bad-model", deploy(1, SYNTHETIC) + task(3, model=b"\x10" + b"\x00" * 7 + b"{"))
    w("chunk-wrong-ref", frame(REQUEST, 1, [("topic", "job.deploy"), ("src", "server"),
                                            ("job", JOB), ("body-length", "4")], b"{}", MORE) +
      frame(CHUNK, 2, body=b"{}", ref=9))
    w("config-array", deploy(1, [1, 2]))


# --- fuzz_admin: settings byte, command text, NUL, replies separated by NULs ---------------
# Settings: 2 interactive (the text is stdin, else it is --cmd), 4 replies streamed in two
# frames (1, once --json, is ignored). A reply starting with '!' is an error reply.

CLIENTS = {"clients": [{"name": "site-1", "address": "127.0.0.1:50412", "via": "direct",
                        "connection_security": "mtls", "connected": True,
                        "last_heartbeat": "2026-01-01T00:00:00Z",
                        "token_expiry": "2026-01-02T00:00:00Z", "role": ""}]}
SERVER_STATUS = {"server": {"name": "server1", "project": "example_project",
                            "status": "started", "started_at": "2026-01-01T00:00:00Z",
                            "uptime_s": 42, "clients": 1, "admins": 1}}
JOBS = {"jobs": [{"id": JOB, "name": "fedavg-digits", "status": "RUNNING",
                  "submitter": "admin@nvidia.com", "submitted_at": 1767225600,
                  "rounds_done": 1, "num_rounds": 2, "error": ""}]}


def admin_seed(settings, text, *replies):
    out = bytes([settings]) + (text.encode() if isinstance(text, str) else text)
    for r in replies:
        if isinstance(r, (dict, list)):
            r = json.dumps(r, separators=(",", ":"))
        out += b"\x00" + (r.encode() if isinstance(r, str) else r)
    return out


def download(files, job=JOB):
    return {"id": job, "files": {k: (b64(v) if not isinstance(v, RawValue) else v.v)
                                 for k, v in files.items()}}


def admin():
    w = lambda name, *a: write("admin", name, admin_seed(*a))
    w("check-status-client", 0, "check_status client", CLIENTS)
    w("check-status-server", 0, "check_status server", SERVER_STATUS)
    w("list-jobs", 0, "list_jobs", JOBS)
    w("list-jobs-streamed", 4, "list_jobs " + JOB, JOBS)
    w("abort-job", 0, "abort_job " + JOB, {"aborted": JOB})
    w("remove-client-error", 0, "remove_client site-9", "!no client 'site-9'")
    w("shutdown", 0, "shutdown client all", {"shutdown": "all"})
    w("submit-job-not-sent", 2, "submit_job /tmp\nlist_jobs\n", JOBS)
    w("download", 0, "download_job " + JOB,
      download({"model.safetensors": MODEL, "metrics.json": [{"round": 1}],
                "job.json": {"id": JOB}}))
    w("download-streamed", 4, "download_job " + JOB, download({"metrics.csv": "round\n1\n"}))
    w("download-bad-names", 0, "download_job " + JOB,
      download({"../x": "x", "/abs": "x", ".hidden": "x", "a/b": "x", "": "x", "ok": "x"}))
    w("download-value-not-string", 0, "download_job " + JOB,
      download({"model.safetensors": RawValue(5)}))
    w("download-bad-base64", 0, "download_job " + JOB, download({"m": RawValue("e!==")}))
    w("download-64-files", 0, "download_job " + JOB,
      download({"f%02d" % i: "x" for i in range(64)}))
    w("download-65-files", 0, "download_job " + JOB,
      download({"f%02d" % i: "x" for i in range(65)}))
    # The id asked for names the folder: the server's answer may not name another one.
    w("download-other-id", 0, "download_job " + JOB, download({"ok": "x"}, "other-job"))
    w("download-reply-id-traversal", 0, "download_job " + JOB, download({"ok": "x"}, "../../x"))
    w("download-reply-no-id", 0, "download_job " + JOB, {"files": {"ok": b64("x")}})
    for tag, what in {"traversal": "../../x", "dot": ".", "dotdot": "..", "absolute": "/tmp/x",
                      "hidden": ".x"}.items():
        w("download-id-" + tag, 0, "download_job " + what, download({"ok": "x"}, what))
    w("reply-not-json", 0, "check_status client", "<html>")
    w("reply-empty", 0, "list_jobs", "", "")  # a last empty reply would read as none
    w("reply-array", 0, "list_jobs", [1, 2])
    w("reply-clients-not-strings", 0, "check_status client",
      {"clients": [{"name": 5, "address": None}], "x": {"y": [1]}})
    w("interactive", 2, "check_status client\nlist_jobs\r\n\nabort_job " + JOB + "\nbye\n",
      CLIENTS, JOBS, "!job already FINISHED:COMPLETED")
    w("interactive-local", 2, "help\n?\nhelp list_jobs\nhelp nope\nfrobnicate\nquit\nlist_jobs\n")
    w("interactive-eof-no-newline", 2, "list_jobs", JOBS)
    w("interactive-long-line", 2, "x" * 1500 + "\nlist_jobs\n", JOBS)
    w("interactive-1023", 2, "list_jobs " + "j" * 1013 + "\nlist_jobs\n", JOBS, JOBS)
    w("interactive-1023-crlf", 2, "list_jobs " + "j" * 1013 + "\r\nlist_jobs " + "k" * 1014 +
      "\r\nlist_jobs\n", JOBS, JOBS)
    # A '\r' early in a line longer than the old 2047-byte read: the tail past the read was
    # taken for a line of its own, and ran.
    w("interactive-cr-tail", 2, "list_jobs\r" + "z" * 2037 + "check_status server\nbye\n",
      JOBS, SERVER_STATUS)
    # The same with a NUL, which the --cmd text cannot hold: admin_read_line alone reads it.
    w("stdin-nul-tail", 2, "list_jobs\n", JOBS, "z" * 2037 + "check_status server\n")
    w("command-too-long", 0, "list_jobs " + "j" * 1100, JOBS)
    w("command-1023", 0, "list_jobs " + "j" * 1013, JOBS)
    w("verb-too-long", 0, "v" * 70 + " x", "!unknown command")
    w("arg-too-long", 0, "remove_client " + "s" * 300, "!command word too long")
    w("shutdown-name-too-long", 0, "shutdown client " + "s" * 300, "!command word too long")
    w("whitespace", 0, " \tcheck_status\t\vclient \n", CLIENTS)
    w("vtab-in-name", 0, "remove_client site-1\vjunk", {"removed": "site-1"})
    w("empty-command", 0, "", "!empty command")
    w("no-reply", 0, "check_status client")


# --- fuzz_manifest: a mode byte, then a manifest's text (0) or a bundle (1: signed there as
# it is, 2: its manifest built there from its files) -----------------------------------------

MANIFEST_HEADER = "cfl-job-manifest 1\n"


def manifest_text(files):
    """The canonical manifest of {name: contents}."""
    lines = []
    for name in sorted(files):
        data = files[name]
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        lines.append("%s %s\n" % (hashlib.sha256(data).hexdigest(), name))
    return MANIFEST_HEADER + "".join(lines)


def signed_bundle(files, manifest=None, **more):
    """A bundle as submit_job sends it; the signature and certificate are placeholders (the
    target signs in mode 1)."""
    b = {"files": {k: b64(v) for k, v in files.items()},
         "manifest": manifest if manifest is not None else manifest_text(files),
         "signature": "MEUCIQ==", "certificate": "-----BEGIN CERTIFICATE-----\n"
         "-----END CERTIFICATE-----\n"}
    b.update(more)
    return json.dumps(b, separators=(",", ":"))


def manifest():
    def w(name, mode, text):
        write("manifest", name, bytes([mode]) + (text.encode() if isinstance(text, str) else text))

    files = good_files()
    good = manifest_text(files)
    digest = "0" * 64
    w("text-good", 0, good)
    w("text-one", 0, manifest_text({"config.json": CONFIG}))
    w("text-64", 0, MANIFEST_HEADER + "".join("%s f%02d\n" % (digest, i) for i in range(64)))
    w("text-65", 0, MANIFEST_HEADER + "".join("%s f%02d\n" % (digest, i) for i in range(65)))
    w("text-name-128", 0, MANIFEST_HEADER + "%s %s\n" % (digest, "n" * 128))
    w("text-name-129", 0, MANIFEST_HEADER + "%s %s\n" % (digest, "n" * 129))
    w("text-unsorted", 0, MANIFEST_HEADER + "%s b\n%s a\n" % (digest, digest))
    w("text-duplicate", 0, MANIFEST_HEADER + "%s a\n%s a\n" % (digest, digest))
    w("text-uppercase-hex", 0, MANIFEST_HEADER + "%s a\n" % ("AB" * 32))
    w("text-short-hex", 0, MANIFEST_HEADER + "%s a\n" % ("ab" * 31))
    w("text-two-spaces", 0, MANIFEST_HEADER + "%s  a\n" % digest)
    w("text-tab", 0, MANIFEST_HEADER + "%s\ta\n" % digest)
    w("text-crlf", 0, good.replace("\n", "\r\n"))
    w("text-no-final-newline", 0, good[:-1])
    w("text-empty-name", 0, MANIFEST_HEADER + "%s \n" % digest)
    w("text-slash", 0, MANIFEST_HEADER + "%s a/b\n" % digest)
    w("text-dotdot", 0, MANIFEST_HEADER + "%s ..\n" % digest)
    w("text-hidden", 0, MANIFEST_HEADER + "%s .a\n" % digest)
    w("text-nul-name", 0, (MANIFEST_HEADER + "%s a" % digest).encode() + b"\x00b\n")
    w("text-header-only", 0, MANIFEST_HEADER)
    w("text-header-2", 0, good.replace(" 1\n", " 2\n", 1))
    w("text-no-header", 0, good[len(MANIFEST_HEADER):])
    w("text-empty", 0, "")
    w("bundle-good", 1, signed_bundle(files))
    w("bundle-command", 1, signed_bundle({"config.json": COMMAND_CONFIG, "meta.json": META,
                                          "train.py": "print('hi')\n"}))
    w("bundle-changed", 1, signed_bundle(files, manifest=manifest_text(
        dict(files, **{"config.json": with_workflow(num_rounds=3)}))))
    w("bundle-extra-file", 1, signed_bundle(dict(files, **{"x.sh": "rm -rf /"}),
                                            manifest=good))
    w("bundle-missing-file", 1, signed_bundle({"config.json": CONFIG}, manifest=good))
    w("bundle-unknown-member", 1, signed_bundle(files, note="unsigned"))
    w("bundle-manifest-number", 1, signed_bundle(files, manifest=5))
    w("bundle-unsigned", 1, bundle_text(files))
    w("bundle-bad-base64", 1, signed_bundle(files).replace('"config.json":"', '"config.json":"!', 1))
    w("build-good", 2, bundle_text(files))
    w("build-empty-file", 2, bundle_text(good_files(**{"empty.txt": ""})))
    w("build-bad-base64", 2, bundle_text(good_files(**{"x.bin": RawValue("e!==")})))
    w("build-not-string", 2, bundle_text(None, raw='{"config.json":5}'))
    w("build-64", 2, bundle_text(good_files(**{"f%02d" % i: "x" for i in range(62)})))


def authhdrs():
    """Authenticated messages as a site sends them (docs/security.md 4.3), and near misses."""
    tok = "v2.1765000000." + "A" * 32
    sig = "MEUCIQ" + "A" * 90
    good = [("topic", "nop"), ("src", "site-1"), ("client_name", "site-1"), ("token", tok),
            ("token_signature", sig)]
    near = [("topic", "ping"), ("client_name", "site-2"), ("token", tok[:-1] + "B"),
            ("token_signature", "")]
    write("authhdrs", "oneway_authenticated", frame(ONEWAY, 1, good, b"x" * 64))
    write("authhdrs", "two_frames", frame(ONEWAY, 1, good, b"x" * 64) + frame(ONEWAY, 2, near))
    fp = "SHA256:" + ":".join(["AB"] * 32)
    chal = [("topic", "challenge"), ("client_name", "site-1"), ("nonce", "0" * 64),
            ("kind", "client"), ("tls_cert", fp)]
    write("authhdrs", "challenge_tls_cert", frame(REQUEST, 3, chal))
    write("authhdrs", "challenge_tls_cert_b64",
          frame(REQUEST, 4, chal[:4] + [("tls_cert", "q" * 43)]))


def main():
    which = sys.argv[1:] or ["kitcfg", "bundle", "executor", "admin", "manifest", "authhdrs"]
    for name in which:
        globals()[name]()


if __name__ == "__main__":
    main()
