#!/usr/bin/env python3
"""An external cfl executor in plain Python 3 (no packages): softmax regression on the 8x8 digits.

cfl runs it once per round as:  python3 train.py GLOBAL_MODEL OUTPUT_MODEL
with CFL_SITE, CFL_ROUND, CFL_SITE_INDEX and CFL_SITE_COUNT in the environment and the job
folder as the working directory. It reads the global model (safetensors), trains on this
site's share of the data, writes the new weights to OUTPUT_MODEL and, optionally,
OUTPUT_MODEL + ".json" with {"steps": samples, "loss": mean loss} (the FedAvg weight).
"""
import gzip, json, math, os, random, struct, sys

def load_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        count = (e - b) // 4
        out[name] = (info["shape"], list(struct.unpack("<%df" % count, data[b:e])))
    return out

def save_model(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        shape, vals = tensors[name]
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def digits():
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    for p in (os.environ.get("CFL_DIGITS", ""), os.path.join(here, "digits.csv.gz"),
              "/usr/share/cfl/digits.csv.gz"):
        if p and os.path.exists(p):
            with gzip.open(p, "rt") as f:
                rows = [list(map(float, line.split(","))) for line in f if line.strip()]
            return [(r[:64], int(r[64])) for r in rows]
    sys.exit("digits.csv.gz not found: set CFL_DIGITS")

def main():
    glob, out = sys.argv[1], sys.argv[2]
    site, sites = int(os.environ["CFL_SITE_INDEX"]), int(os.environ["CFL_SITE_COUNT"])
    model = load_model(glob)
    (ws, w), (bs, b) = model["linear.weight"], model["linear.bias"]
    data = digits()
    random.Random(1).shuffle(data)
    mine = data[site::sites]
    lr, loss = 0.05, 0.0
    for x, y in mine:
        x = [v / 16.0 for v in x]
        z = [b[k] + sum(w[k * 64 + i] * x[i] for i in range(64)) for k in range(10)]
        m = max(z)
        p = [math.exp(v - m) for v in z]
        s = sum(p)
        p = [v / s for v in p]
        loss -= math.log(max(p[y], 1e-12))
        for k in range(10):
            g = p[k] - (1.0 if k == y else 0.0)
            b[k] -= lr * g
            row = k * 64
            for i in range(64):
                w[row + i] -= lr * g * x[i]
    save_model(out, {"linear.weight": (ws, w), "linear.bias": (bs, b)})
    with open(out + ".json", "w") as f:
        json.dump({"steps": len(mine), "loss": loss / max(len(mine), 1)}, f)

if __name__ == "__main__":
    main()
