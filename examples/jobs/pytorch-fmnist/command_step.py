#!/usr/bin/env python3
"""The same training as client.py, as a `command` executor (docs/jobs.md): cfl starts it once
per round as `python3 command_step.py GLOBAL_MODEL OUTPUT_MODEL`, so Python, torch and the data
are loaded again every round (bench/bench_pytorch.sh compares it with client_api). It needs
the `cfl` package importable (the benchmark copies it into the job folder).
"""
import json
import os
import sys

import torch

import client
from cfl import safetensors


def main():
    glob, out = sys.argv[1], sys.argv[2]
    args = client.parse_args_from(sys.argv[3:])
    site, sites = int(os.environ["CFL_SITE_INDEX"]), int(os.environ["CFL_SITE_COUNT"])
    rnd = int(os.environ.get("CFL_ROUND", "1")) - 1
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // sites))
    x, y, xt, yt = client.load_data(args, site, sites)
    net = client.Net()
    net.load_state_dict(safetensors.load_file(glob, framework="pt"))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps, loss = client.train_epochs(net, opt, x, y, args.epochs, args.batch_size, args.seed + 1000 * site + rnd)
    acc = client.evaluate(net, xt, yt)
    print("round %d: after training %.4f (loss %.4f)" % (rnd, acc, loss), flush=True)
    safetensors.save_file(net.state_dict(), out)
    with open(out + ".json", "w") as f:
        json.dump({"steps": steps, "loss": loss}, f)


if __name__ == "__main__":
    main()
