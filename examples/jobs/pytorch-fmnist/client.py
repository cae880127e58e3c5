#!/usr/bin/env python3
"""A small CNN on Fashion-MNIST in PyTorch, written with FLARE's Client API: under cfl it runs
as this job's client_api executor (once per job on each site, see config.json); with
--central it trains on all the data alone, the baseline the federated run is compared with.

    python3 client.py --central --epochs 3        # central: accuracy and time per epoch
    python3 client.py --evaluate model.safetensors  # test accuracy of a saved (global) model
    python3 client.py --limit 2000                # (under cfl) a small slice, for tests
    python3 client.py --save-initial init.safetensors   # the initial weights as a file

The data is Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, or
$CFL_FMNIST_DIR, or --data DIR): the four idx .gz files, read with gzip and numpy. Each site
trains on its share of the training set (CFL_SITE_INDEX of CFL_SITE_COUNT) and reports the
test accuracy of its model through metrics and SummaryWriter.
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import cfl.client as flare
from cfl.client.tracking import SummaryWriter

DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def read_idx(path, magic, max_items=70000):
    """The array of an idx file (gzip): images [n, 28, 28] uint8 or labels [n] uint8."""
    with gzip.open(path, "rb") as f:
        raw = f.read(16 + max_items * 28 * 28 + 1)
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        sys.exit("%s: not an idx file of the expected kind" % path)
    dims = struct.unpack(">%dI" % ndim, raw[4 : 4 + 4 * ndim])
    if dims[0] > max_items or dims[1:] not in ((), (28, 28)):
        sys.exit("%s: unexpected dimensions %s" % (path, dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        sys.exit("%s: %d bytes of data, dimensions %s" % (path, data.size, dims))
    return data.reshape(dims)


def load_split(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"), 0x803)
    y = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"), 0x801)
    if len(x) != len(y):
        sys.exit("%s: %d images, %d labels" % (prefix, len(x), len(y)))
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - MEAN) / STD
    return x.unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def train_epochs(net, opt, x, y, epochs, batch, seed):
    """Trains `epochs` passes over (x, y); returns (batches run, mean loss of the last pass)."""
    gen = torch.Generator().manual_seed(seed)
    steps, total = 0, 0.0
    net.train()
    for _ in range(epochs):
        total, perm = 0.0, torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            steps += 1
    return steps, total / max(len(x), 1)


@torch.no_grad()
def evaluate(net, x, y):
    net.eval()
    correct = sum(int((net(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / max(len(x), 1)


def parse_args_from(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="local epochs per round (central: total)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--limit", type=int, default=int(os.environ.get("CFL_FMNIST_LIMIT", "0")),
                   help="use only the first N training and N test samples (0: all; env CFL_FMNIST_LIMIT)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: cores / sites)")
    p.add_argument("--data", default=os.environ.get("CFL_FMNIST_DIR", DATA_DIR))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--central", action="store_true", help="train alone on all the data")
    p.add_argument("--evaluate", metavar="MODEL", help="print the test accuracy of a safetensors model")
    p.add_argument("--save-initial", metavar="MODEL", help="write the initial weights (for a command job)")
    return p.parse_args(argv)


def parse_args():
    return parse_args_from(sys.argv[1:])


def load_data(args, site=0, sites=1):
    x, y = load_split(args.data, "train")
    xt, yt = load_split(args.data, "t10k")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm[site::sites]], y[perm[site::sites]]
    if args.limit > 0:
        x, y, xt, yt = x[: args.limit], y[: args.limit], xt[: args.limit], yt[: args.limit]
    return x, y, xt, yt


def central(args):
    x, y, xt, yt = load_data(args)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        t0 = time.monotonic()
        _, loss = train_epochs(net, opt, x, y, 1, args.batch_size, args.seed + epoch)
        dt = time.monotonic() - t0
        print("epoch %d: loss %.4f, test accuracy %.4f, %.1f s" % (epoch + 1, loss, evaluate(net, xt, yt), dt), flush=True)


def evaluate_file(args):
    from cfl import safetensors

    _, _, xt, yt = load_data(args)
    net = Net()
    net.load_state_dict(safetensors.load_file(args.evaluate, framework="pt"))
    print("test accuracy %.4f" % evaluate(net, xt, yt))


def federated(args):
    flare.init()
    site, sites = int(os.environ.get("CFL_SITE_INDEX", "0")), int(os.environ.get("CFL_SITE_COUNT", "1"))
    info = flare.system_info()
    x, y, xt, yt = load_data(args, site, sites)
    print("%s: %d training samples, %d test samples" % (info["site_name"], len(x), len(xt)), flush=True)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    writer = SummaryWriter()
    while flare.is_running():
        input_model = flare.receive()
        if input_model.params is None:  # get_weights: this site's initial weights start the job
            flare.send(flare.FLModel(params=net.state_dict()))
            continue
        net.load_state_dict(input_model.params)
        rnd = input_model.current_round
        global_acc = evaluate(net, xt, yt)
        if not flare.is_train():  # evaluate (or submit_model): the global model as received
            flare.send(flare.FLModel(params=net.state_dict() if flare.is_submit_model() else None,
                                     metrics={"accuracy": global_acc}))
            continue
        t0 = time.monotonic()
        steps, loss = train_epochs(net, opt, x, y, args.epochs, args.batch_size, args.seed + 1000 * site + rnd)
        acc = evaluate(net, xt, yt)
        writer.add_scalar("train_loss", loss, rnd)
        writer.add_scalar("local_accuracy", acc, rnd)
        writer.add_scalar("global_accuracy", global_acc, rnd)
        print("round %d: global model %.4f, after training %.4f (loss %.4f), %.1f s"
              % (rnd, global_acc, acc, loss, time.monotonic() - t0), flush=True)
        flare.send(flare.FLModel(params=net.state_dict(), metrics={"accuracy": acc, "loss": loss},
                                 meta={"NUM_STEPS_CURRENT_ROUND": steps}))


def main():
    args = parse_args()
    sites = int(os.environ.get("CFL_SITE_COUNT", "1") or 1)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // max(sites, 1)))
    torch.manual_seed(args.seed)
    if args.central:
        central(args)
    elif args.evaluate:
        evaluate_file(args)
    elif args.save_initial:
        from cfl import safetensors

        safetensors.save_file(Net().state_dict(), args.save_initial)
    else:
        federated(args)


if __name__ == "__main__":
    main()
