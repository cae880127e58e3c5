#!/usr/bin/env python3
"""FLARE's hello-numpy, on cfl: the model is one 3x3 array under NPConstants.NUMPY_KEY and
"training" is arithmetic, so the result is known exactly. Site k (CFL_SITE_INDEX, from 0)
adds k + 1 to every value each round; all sites weigh the same, so with N sites the global
model grows by (N + 1) / 2 per round: from [[1..9]], 2 sites, 3 rounds: [[5.5, ..., 13.5]].

The FLARE original needs only its imports changed:
    import nvflare.client as flare                                ->  import cfl.client as flare
    from nvflare.app_common.np.constants import NPConstants       ->  from cfl.app_common...
"""
import os

import numpy as np

import cfl.client as flare
from cfl.app_common.np.constants import NPConstants
from cfl.client.tracking import SummaryWriter


def train(arr, step):
    return arr + step


def evaluate(arr):
    return {"weight_mean": float(np.mean(arr))}


def main():
    flare.init()
    info = flare.system_info()
    step = int(os.environ.get("CFL_SITE_INDEX", "0")) + 1
    print("hello-numpy on %s (job %s): adding %d per round" % (info["site_name"], info["job_id"], step), flush=True)
    writer = SummaryWriter()
    while flare.is_running():
        input_model = flare.receive()
        if input_model.params is None:  # get_weights (initial_model "from_site")
            params = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float32)
            flare.send(flare.FLModel(params={NPConstants.NUMPY_KEY: params}))
            continue
        params = np.array(input_model.params[NPConstants.NUMPY_KEY], dtype=np.float32)
        print("round %d/%d: received mean %.2f" % (input_model.current_round + 1, input_model.total_rounds,
                                                   float(params.mean())), flush=True)
        if flare.is_train():
            new_params = train(params, step)
            metrics = evaluate(params)
            writer.add_scalar("weight_mean", metrics["weight_mean"], input_model.current_round)
            flare.send(flare.FLModel(params={NPConstants.NUMPY_KEY: new_params}, params_type=flare.ParamsType.FULL,
                                     metrics=metrics, current_round=input_model.current_round,
                                     meta={"NUM_STEPS_CURRENT_ROUND": 1}))
        elif flare.is_evaluate():
            flare.send(flare.FLModel(metrics=evaluate(params)))
        elif flare.is_submit_model():
            flare.send(flare.FLModel(params={NPConstants.NUMPY_KEY: params}))


if __name__ == "__main__":
    main()
