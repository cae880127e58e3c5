"""The Client API's functions: one channel to the site per process (docs/python.md)."""

import math
import os
import sys
import threading

from cfl import safetensors
from cfl.client.channel import Channel, ChannelClosed, ProtocolError
from cfl.client.model import FLModel, ParamsType

TASKS = ("train", "evaluate", "submit_model", "get_weights")
FORMATS = {"numpy": "np", "pytorch": "pt"}
NUM_STEPS = "NUM_STEPS_CURRENT_ROUND"
_INT_MAX = 2**63 - 1


class _State:
    def __init__(self):
        self.channel = None
        self.framework = "np"
        self.task = None  # the task message being worked on
        self.model = None  # receive()'s FLModel of that task
        self.stopped = False
        self.lock = threading.Lock()


_s = _State()


def _reset(channel=None, params_format="numpy"):
    """Starts over with `channel` (tests use it with one end of a socketpair)."""
    global _s
    _s = _State()
    _s.channel = channel
    _s.framework = FORMATS[params_format]


def _fd_from_env():
    raw = os.environ.get("CFL_CHANNEL_FD")
    if raw is None:
        raise RuntimeError(
            "cfl.client.init(): CFL_CHANNEL_FD is not set: this script must be started by cfl's "
            "client_api executor (docs/python.md)"
        )
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 3:
        raise RuntimeError("cfl.client.init(): CFL_CHANNEL_FD=%r is not a descriptor number >= 3" % raw)
    return int(raw)


def init(*args, **kwargs):
    """Connects to the site (once; later calls do nothing) and says hello. Arguments FLARE
    takes (rank, config_file...) are accepted and ignored."""
    if _s.channel is not None:
        return
    fmt = os.environ.get("CFL_PARAMS_FORMAT", "numpy")
    if fmt not in FORMATS:
        raise RuntimeError("cfl.client.init(): CFL_PARAMS_FORMAT=%r (numpy or pytorch)" % fmt)
    channel = Channel.from_fd(_fd_from_env())
    _reset(channel, fmt)
    _send({"type": "hello", "version": 1})


def _need_init():
    if _s.channel is None:
        raise RuntimeError("call cfl.client.init() first")


def _send(msg):
    with _s.lock:
        _s.channel.send(msg)


def _is_int(v):
    return type(v) is int


def _check_task(msg):
    """The task message `msg`, checked (ProtocolError names the field)."""
    if msg.get("task") not in TASKS:
        raise ProtocolError("task message: 'task' must be one of %s" % ", ".join(TASKS))
    for k in ("current_round", "total_rounds"):
        if not _is_int(msg.get(k)) or msg[k] < 0:
            raise ProtocolError("task message: '%s' must be an integer >= 0" % k)
    if msg.get("model") is not None and not isinstance(msg["model"], str):
        raise ProtocolError("task message: 'model' must be a path or null")
    if not isinstance(msg.get("result"), str) or not msg["result"]:
        raise ProtocolError("task message: 'result' must be a path")
    if msg.get("params_type", "FULL") not in ("FULL", "DIFF"):
        raise ProtocolError("task message: 'params_type' must be FULL or DIFF")
    if not isinstance(msg.get("meta", {}), dict):
        raise ProtocolError("task message: 'meta' must be an object")
    return msg


def _next():
    """Waits for the site's next message unless a task is pending or the job stopped."""
    if _s.task is not None or _s.stopped:
        return
    try:
        msg = _s.channel.recv()
    except ChannelClosed:
        _s.stopped = True
        return
    if msg["type"] == "stop":
        _s.stopped = True
    elif msg["type"] == "task":
        _s.task = _check_task(msg)
    else:
        raise ProtocolError("unknown message type '%s' from the site" % msg["type"][:64])


def is_running():
    """True while the job runs: waits for the next task, False once the site says stop."""
    _need_init()
    _next()
    return not _s.stopped


def receive(timeout=None):
    """The current task's FLModel (the same object until send()), or None once the job has
    stopped. params is None for the get_weights task (the script sends its initial weights)."""
    _need_init()
    if _s.model is not None:
        return _s.model
    _next()
    if _s.stopped:
        return None
    t = _s.task
    params = None
    if t.get("model") is not None:
        params = safetensors.load_file(t["model"], framework=_s.framework)
    _s.model = FLModel(
        params_type=ParamsType(t.get("params_type", "FULL")),
        params=params,
        current_round=t["current_round"],
        total_rounds=t["total_rounds"],
        meta=dict(t.get("meta", {})),
    )
    return _s.model


def _number(v):
    if hasattr(v, "item") and not isinstance(v, (int, float)):
        v = v.item()  # numpy scalars, 0-d arrays and tensors
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return v


def _metrics(metrics):
    out = {}
    for k, v in (metrics or {}).items():
        n = _number(v)
        if not isinstance(k, str) or n is None or (isinstance(n, float) and not math.isfinite(n)):
            print("cfl.client: metric %r = %r not sent (a name and a finite number are)" % (k, v), file=sys.stderr)
            continue
        out[k] = n
    return out


def _weight(meta):
    if not meta or meta.get(NUM_STEPS) is None:
        return {}
    v = _number(meta[NUM_STEPS])
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not _is_int(v) or not 0 <= v <= _INT_MAX:
        raise ValueError("meta['%s'] must be an integer >= 0, not %r" % (NUM_STEPS, meta[NUM_STEPS]))
    return {NUM_STEPS: v}


def send(model, clear_cache=True):
    """Answers the current task: writes model.params (if any) to the task's result file, then
    sends the result with model.metrics and meta['NUM_STEPS_CURRENT_ROUND']."""
    _need_init()
    if not isinstance(model, FLModel):
        raise TypeError("send() takes an FLModel, not %s" % type(model).__name__)
    if _s.task is None:
        raise RuntimeError("send() without a task: call receive() first")
    ptype = ParamsType(model.params_type if model.params_type is not None else ParamsType.FULL)
    msg = {
        "type": "result",
        "model": model.params is not None,
        "params_type": ptype.value,
        "metrics": _metrics(model.metrics),
        "meta": _weight(model.meta),
    }
    if model.params is not None:
        safetensors.save_file(model.params, _s.task["result"])
    _send(msg)
    if clear_cache:
        _s.task, _s.model = None, None


def _task_name():
    return None if _s.task is None else _s.task["task"]


def is_train():
    return _task_name() == "train"


def is_evaluate():
    return _task_name() == "evaluate"


def is_submit_model():
    return _task_name() == "submit_model"


def get_task_name():
    """The current task: train, evaluate, submit_model, get_weights, or None."""
    return _task_name()


def get_site_name():
    return os.environ.get("CFL_SITE", "")


def get_job_id():
    return os.environ.get("CFL_JOB_ID", "")


def system_info():
    return {"site_name": get_site_name(), "job_id": get_job_id()}


def log_metric(tag, value, step=None):
    """Sends one metric to the site (what SummaryWriter.add_scalar does)."""
    _need_init()
    n = _number(value)
    if not isinstance(tag, str) or not tag or n is None or not math.isfinite(n):
        print("cfl.client: metric %r = %r not sent (a name and a finite number are)" % (tag, value), file=sys.stderr)
        return
    if step is None:
        step = _s.task["current_round"] if _s.task is not None else 0
    step = _number(step)
    if not _is_int(step):
        raise ValueError("metric step must be an integer, not %r" % (step,))
    _send({"type": "metric", "tag": tag, "value": n, "step": step})
