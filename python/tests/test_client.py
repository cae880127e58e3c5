"""cfl.client against a fake site: the test holds one end of a socketpair and speaks the
channel protocol (docs/python.md); the script side runs in this process (the socket's buffer
holds what one side writes until the other reads) or as a real subprocess."""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np

import cfl.client as flare
from cfl import safetensors as st
from cfl.app_common.np.constants import NPConstants
from cfl.client import api
from cfl.client.channel import MAX_MESSAGE
from cfl.client.tracking import SummaryWriter

PYDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

try:
    import torch
except ImportError:
    torch = None


class FakeSite:
    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(30)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.send_raw(struct.pack(">I", len(body)) + body)

    def recv(self):
        head = self._read(4)
        (n,) = struct.unpack(">I", head)
        assert 1 <= n <= MAX_MESSAGE, n
        return json.loads(self._read(n))

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("script closed the channel")
            buf += chunk
        return buf


def task(name, model, result, rnd=0, total=3, **extra):
    msg = {"type": "task", "task": name, "current_round": rnd, "total_rounds": total, "model": model,
           "result": result, "params_type": "FULL", "meta": {}}
    msg.update(extra)
    return msg


class InProcess(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.d = self.dir.name
        site_end, script_end = socket.socketpair()
        self.site = FakeSite(site_end)
        env = {"CFL_CHANNEL_FD": str(script_end.detach()), "CFL_SITE": "site-2", "CFL_JOB_ID": "job-7",
               "CFL_PARAMS_FORMAT": "numpy"}
        self.env = mock.patch.dict(os.environ, env)
        self.env.start()
        api._reset()
        flare.init()
        self.assertEqual(self.site.recv(), {"type": "hello", "version": 1})

    def tearDown(self):
        if api._s.channel is not None:
            api._s.channel.close()
        api._reset()
        self.env.stop()
        self.site.sock.close()
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def global_model(self, value):
        st.save_file({NPConstants.NUMPY_KEY: np.full((3, 3), value, dtype=np.float32)}, self.path("global"))
        return self.path("global")

    def test_train_round_and_stop(self):
        init_again_is_noop = flare.init()
        self.assertIsNone(init_again_is_noop)
        self.assertEqual(flare.system_info(), {"site_name": "site-2", "job_id": "job-7"})
        self.assertEqual((flare.get_site_name(), flare.get_job_id()), ("site-2", "job-7"))
        self.site.send(task("train", self.global_model(1.0), self.path("r1"), rnd=1, meta={"x": 1}))
        self.assertTrue(flare.is_running())
        m = flare.receive()
        self.assertIs(flare.receive(), m)  # the same until send()
        self.assertTrue(flare.is_train() and not flare.is_evaluate() and not flare.is_submit_model())
        self.assertEqual(flare.get_task_name(), "train")
        self.assertEqual((m.current_round, m.total_rounds, m.params_type, m.meta), (1, 3, flare.ParamsType.FULL, {"x": 1}))
        np.testing.assert_array_equal(m.params[NPConstants.NUMPY_KEY], np.ones((3, 3)))
        w = SummaryWriter()
        w.add_scalar("loss", np.float32(0.25), 4)
        w.add_scalars("acc", {"a": 1, "b": 0.5})
        w.add_scalar("nan", float("nan"))  # not sent
        w.flush()
        out = {NPConstants.NUMPY_KEY: m.params[NPConstants.NUMPY_KEY] + 1}
        flare.send(flare.FLModel(params=out, params_type=flare.ParamsType.DIFF, metrics={"accuracy": np.float64(0.5), "bad": float("inf")},
                                 meta={"NUM_STEPS_CURRENT_ROUND": np.int64(42), "other": object()}))
        self.assertEqual(self.site.recv(), {"type": "metric", "tag": "loss", "value": 0.25, "step": 4})
        self.assertEqual(self.site.recv(), {"type": "metric", "tag": "acc/a", "value": 1, "step": 1})
        self.assertEqual(self.site.recv(), {"type": "metric", "tag": "acc/b", "value": 0.5, "step": 1})
        self.assertEqual(self.site.recv(), {"type": "result", "model": True, "params_type": "DIFF",
                                            "metrics": {"accuracy": 0.5}, "meta": {"NUM_STEPS_CURRENT_ROUND": 42}})
        np.testing.assert_array_equal(st.load_file(self.path("r1"))[NPConstants.NUMPY_KEY], np.full((3, 3), 2.0))
        self.assertIsNone(flare.get_task_name())
        self.site.send({"type": "stop"})
        self.assertFalse(flare.is_running())
        self.assertFalse(flare.is_running())
        self.assertIsNone(flare.receive())

    def test_get_weights_and_evaluate(self):
        self.site.send(task("get_weights", None, self.path("init")))
        self.site.send(task("evaluate", self.global_model(3.0), self.path("unused")))
        self.assertTrue(flare.is_running())
        m = flare.receive()
        self.assertIsNone(m.params)
        self.assertEqual(flare.get_task_name(), "get_weights")
        flare.send(flare.FLModel(params={"w": np.zeros(2)}))
        self.assertEqual(self.site.recv(), {"type": "result", "model": True, "params_type": "FULL", "metrics": {}, "meta": {}})
        self.assertEqual(list(st.load_file(self.path("init"))), ["w"])
        m = flare.receive()
        self.assertTrue(flare.is_evaluate())
        flare.send(flare.FLModel(metrics={"accuracy": 0.75}))
        self.assertEqual(self.site.recv(), {"type": "result", "model": False, "params_type": "FULL",
                                            "metrics": {"accuracy": 0.75}, "meta": {}})
        self.assertFalse(os.path.exists(self.path("unused")))

    def test_send_misuse(self):
        with self.assertRaises(RuntimeError):
            flare.send(flare.FLModel(params={}))  # no task
        self.site.send(task("train", self.global_model(0.0), self.path("r")))
        flare.receive()
        with self.assertRaises(TypeError):
            flare.send({"w": 1})
        for steps in (-1, 1.5, "3", True, 2**63):
            with self.assertRaises(ValueError):
                flare.send(flare.FLModel(params={}, meta={"NUM_STEPS_CURRENT_ROUND": steps}))
        with self.assertRaises(ValueError):
            flare.send(flare.FLModel(params={}, params_type="HALF"))
        flare.send(flare.FLModel(params={}, meta={"NUM_STEPS_CURRENT_ROUND": 7.0}))
        self.assertEqual(self.site.recv()["meta"], {"NUM_STEPS_CURRENT_ROUND": 7})

    def test_site_closes_between_messages(self):
        self.site.sock.shutdown(socket.SHUT_WR)
        self.assertFalse(flare.is_running())
        self.assertIsNone(flare.receive())

    def garbage(self, data, pattern):
        self.site.send_raw(data)
        with self.assertRaisesRegex(flare.ProtocolError, pattern):
            flare.is_running()

    def test_garbage_length_zero(self):
        self.garbage(struct.pack(">I", 0), "length 0")

    def test_garbage_length_too_big(self):
        self.garbage(struct.pack(">I", MAX_MESSAGE + 1), "length")

    def test_garbage_not_json(self):
        self.garbage(struct.pack(">I", 3) + b"{x}", "not json")

    def test_garbage_not_utf8(self):
        self.garbage(struct.pack(">I", 2) + b"\xff\xfe", "utf-8")

    def test_garbage_not_an_object(self):
        self.garbage(struct.pack(">I", 2) + b"[]", "object")

    def test_garbage_no_type(self):
        self.garbage(struct.pack(">I", 8) + b'{"t":12}', "type")

    def test_garbage_unknown_type(self):
        self.garbage(struct.pack(">I", 15) + b'{"type":"boom"}', "unknown message type 'boom'")

    def test_garbage_truncated(self):
        self.site.send_raw(struct.pack(">I", 100) + b'{"type"')
        self.site.sock.shutdown(socket.SHUT_WR)
        with self.assertRaisesRegex(flare.ProtocolError, "middle"):
            flare.is_running()

    def test_garbage_bad_task_fields(self):
        for field, value, pattern in [
            ("task", "dance", "'task'"),
            ("current_round", -1, "current_round"),
            ("current_round", "1", "current_round"),
            ("total_rounds", True, "total_rounds"),
            ("model", 5, "'model'"),
            ("result", None, "'result'"),
            ("params_type", "HALF", "params_type"),
            ("meta", [], "'meta'"),
        ]:
            with self.subTest(field=field, value=value):
                msg = task("train", None, "r")
                msg[field] = value
                self.site.send(msg)
                with self.assertRaisesRegex(flare.ProtocolError, pattern):
                    flare.is_running()

    def test_unknown_keys_ignored(self):
        self.site.send(task("evaluate", None, "r", extra={"a": 1}))
        self.assertTrue(flare.is_running())
        self.assertTrue(flare.is_evaluate())


class OutsideCfl(unittest.TestCase):
    def setUp(self):
        api._reset()

    def test_init_without_channel(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaisesRegex(RuntimeError, "CFL_CHANNEL_FD is not set"):
                flare.init()
        for bad in ("x", "-1", "1", "99999999999"):
            with mock.patch.dict(os.environ, {"CFL_CHANNEL_FD": bad}):
                with self.assertRaisesRegex(RuntimeError, "CFL_CHANNEL_FD"):
                    flare.init()
        with self.assertRaisesRegex(RuntimeError, "init"):
            flare.receive()

    def test_bad_params_format(self):
        with mock.patch.dict(os.environ, {"CFL_CHANNEL_FD": "3", "CFL_PARAMS_FORMAT": "jax"}):
            with self.assertRaisesRegex(RuntimeError, "CFL_PARAMS_FORMAT"):
                flare.init()


SCRIPT = r"""
import sys
import cfl.client as flare
from cfl.app_common.np.constants import NPConstants
flare.init()
while flare.is_running():
    m = flare.receive()
    if m.params is None:
        flare.send(flare.FLModel(params=%s))
        continue
    p = m.params
    print("round", m.current_round, type(next(iter(p.values()))).__name__, flush=True)
    if m.current_round == 1 and "crash" in sys.argv:
        sys.exit(3)
    flare.send(flare.FLModel(params={k: v + 1 for k, v in p.items()}, meta={"NUM_STEPS_CURRENT_ROUND": 10}))
"""


class Subprocess(unittest.TestCase):
    """The whole exchange with a real script process, as the site starts it."""

    def run_script(self, fmt, initial, args=()):
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        site_end, script_end = socket.socketpair()
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PYDIR, "CFL_CHANNEL_FD": str(script_end.fileno()),
               "CFL_PARAMS_FORMAT": fmt, "CFL_SITE": "site-1", "CFL_JOB_ID": "j"}
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT % initial] + list(args), env=env, cwd=d,
                                pass_fds=(script_end.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        script_end.close()
        self.addCleanup(site_end.close)
        return FakeSite(site_end), proc, d

    def exchange(self, fmt, initial):
        site, proc, d = self.run_script(fmt, initial)
        self.assertEqual(site.recv(), {"type": "hello", "version": 1})
        site.send(task("get_weights", None, os.path.join(d, "init")))
        self.assertTrue(site.recv()["model"])
        model = os.path.join(d, "init")
        for rnd in range(3):
            out = os.path.join(d, "r%d" % rnd)
            site.send(task("train", model, out, rnd=rnd))
            self.assertEqual(site.recv()["meta"], {"NUM_STEPS_CURRENT_ROUND": 10})
            model = out
        site.send({"type": "stop"})
        out, _ = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0)
        return st.load_file(model), out.decode()

    def test_numpy(self):
        params, out = self.exchange("numpy", "{NPConstants.NUMPY_KEY: [[1, 2, 3]] * 3}")
        np.testing.assert_array_equal(params["numpy_key"], np.array([[4, 5, 6]] * 3))
        self.assertIn("round 2 ndarray", out)

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_pytorch(self):
        params, out = self.exchange("pytorch", "__import__('torch').nn.Linear(2, 1).state_dict()")
        self.assertEqual(sorted(params), ["bias", "weight"])
        self.assertIn("round 2 Tensor", out)

    def test_script_exits_before_its_result(self):
        site, proc, d = self.run_script("numpy", "{}", ["crash"])
        site.recv()
        st.save_file({"a": np.zeros(1)}, os.path.join(d, "g"))
        site.send(task("train", os.path.join(d, "g"), os.path.join(d, "r0"), rnd=0))
        site.recv()
        site.send(task("train", os.path.join(d, "g"), os.path.join(d, "r1"), rnd=1))
        with self.assertRaises(EOFError):
            site.recv()
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 3)

    def test_site_closes_channel_script_ends(self):
        site, proc, _ = self.run_script("numpy", "{}")
        site.recv()
        site.sock.close()
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
