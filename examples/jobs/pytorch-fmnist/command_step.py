#!/usr/bin/env python3
"""The same training as client.py, as a `command` executor (docs/jobs.md): cfl starts it once
per round as `python3 command_step.py [--pythonpath DIR] [client.py's options] GLOBAL_MODEL
OUTPUT_MODEL` (the executor appends the two files), so Python, torch and the data are loaded again every round (bench/bench_pytorch.sh
compares it with client_api). The command executor does not put the `cfl` package on
PYTHONPATH: --pythonpath names the folder holding it (python/ of the source tree).
"""
import json
import os
import sys

if len(sys.argv) > 2 and sys.argv[1] == "--pythonpath":
    sys.path.insert(0, sys.argv[2])
    del sys.argv[1:3]

import torch  # noqa: E402

import client  # noqa: E402
from cfl import safetensors  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: command_step.py [--pythonpath DIR] [options] GLOBAL_MODEL OUTPUT_MODEL")
    glob, out = sys.argv[-2], sys.argv[-1]
    args = client.parse_args_from(sys.argv[1:-2])
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
