#!/usr/bin/env python3
"""A client_api script for tests/integration/test_clientapi.sh, on the real cfl.client.

usage: arith.py MODE MARKER. Site k (CFL_SITE_INDEX) adds k + 1 to every value of tensor "w"
each round, so with 2 sites of equal weight the global model grows by exactly 1.5 a round.
MODE: full (FULL weights), diff (DIFF: only the k + 1), and, on the site of index 1 only:
crash2 (exits 3 in round 2), nosend (never answers), badshape (a tensor of the wrong shape),
garbage (bytes that are not JSON on the channel). MARKER only names the process for pgrep.
"""
import os
import sys
import time

import numpy as np

import cfl.client as flare
from cfl.client.tracking import SummaryWriter

mode = sys.argv[1]
idx = int(os.environ["CFL_SITE_INDEX"])
flare.init()
writer = SummaryWriter()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    if model.params is None:  # get_weights: executor.initial_model "from_site"
        flare.send(flare.FLModel(params={"w": np.arange(6, dtype=np.float32).reshape(2, 3)}))
        continue
    rnd = model.current_round
    w = np.asarray(model.params["w"], dtype=np.float32)
    if idx == 1 and mode == "crash2" and rnd == 1:
        print("crashing on purpose in round 2", flush=True)
        sys.exit(3)
    if idx == 1 and mode == "nosend":
        time.sleep(1000)
    if idx == 1 and mode == "garbage":
        os.write(int(os.environ["CFL_CHANNEL_FD"]), b"\x00\x00\x00\x05hello")
        time.sleep(1000)
    if idx == 1 and mode == "badshape":
        w = np.zeros((w.shape[1], w.shape[0]), dtype=np.float32)
    delta = np.full(w.shape, idx + 1, dtype=np.float32)
    writer.add_scalar("loss", 1.0 / (rnd + 1), rnd)
    writer.add_scalars("main", {"a": 1.0, "b": 2.0}, rnd)
    if mode == "diff":
        out = flare.FLModel(params={"w": delta}, params_type=flare.ParamsType.DIFF)
    else:
        out = flare.FLModel(params={"w": w + delta}, params_type=flare.ParamsType.FULL)
    out.metrics = {"accuracy": 0.5 + idx}
    out.meta = {"NUM_STEPS_CURRENT_ROUND": 10}
    flare.send(out)
print("%s: the job ended" % os.environ["CFL_SITE"], flush=True)
