#!/usr/bin/python3
"""Output check for `ecsnet bench random-walk` against the Python peer random_walk.py (PSA's random walk; not part of
this repository: docs/BENCHMARKS.md, "Peers", describes it and how to get it).

  dump DIR     writes the peer's inputs (features = default_rng(0).random((448, N), float32),
               cam = default_rng(1).random((21, N), float32)) as DIR/features.npy and DIR/cam.npy, runs the
               peer's own numpy_dense path (PSA's dense T^256) on them and writes DIR/reference.npy; also
               reports the peak memory numpy allocated during that dense run (tracemalloc traces numpy's
               data buffers).
  compare DIR  max |ours - reference| / max |reference| for DIR/ours.npy (written by
               `ecsnet bench random-walk --inputs DIR --save-output DIR/ours.npy`), and how many grid nodes
               have a different argmax channel.

`dump` needs the peer: --peer FILE, or by default random_walk.py in the folder named by the environment variable
ECSNET_PEERS. `compare` does not.

Run from the repository root with Debian's python: /usr/bin/python3 bench/random_walk_check.py dump out/rwcheck
"""
import argparse
import importlib.util
import os
import time
import tracemalloc

import numpy as np


def peer_path(arg):
    """The peer script: --peer, else $ECSNET_PEERS/random_walk.py; exits with a clear message if neither exists."""
    if arg is None:
        folder = os.environ.get("ECSNET_PEERS")
        if not folder:
            raise SystemExit("random_walk_check.py: no peer: pass --peer FILE or set ECSNET_PEERS to the folder holding "
                             "random_walk.py (see docs/BENCHMARKS.md, \"Peers\")")
        arg = os.path.join(folder, "random_walk.py")
    if not os.path.isfile(arg):
        raise SystemExit(f"random_walk_check.py: peer script {arg} not found (see docs/BENCHMARKS.md, \"Peers\")")
    return arg


def load_peer(path):
    spec = importlib.util.spec_from_file_location("peer_random_walk", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def dump(args):
    peer = load_peer(peer_path(args.peer))
    os.makedirs(args.dir, exist_ok=True)
    n = args.grid * args.grid
    f = np.random.default_rng(0).random((args.channels, n), dtype=np.float32)
    cam = np.random.default_rng(1).random((21, n), dtype=np.float32)
    np.save(os.path.join(args.dir, "features.npy"), f)
    np.save(os.path.join(args.dir, "cam.npy"), cam)
    ind_from, ind_to = peer.get_indices_of_pairs(args.radius, (args.grid, args.grid))
    tracemalloc.start()
    t = time.perf_counter()
    out, phases = peer.run_numpy_dense(f, cam, ind_from, ind_to, args.beta, args.logt)
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.save(os.path.join(args.dir, "reference.npy"), out.astype(np.float32))
    print(f"inputs and numpy_dense reference written to {args.dir}: {dt * 1e3:.1f} ms "
          f"(affinity {phases[0] * 1e3:.1f}, T^256 {phases[1] * 1e3:.1f}, propagate {phases[2] * 1e3:.1f}); "
          f"peak numpy allocation during the run {peak / 2**20:.1f} MiB")


def compare(args):
    ref = np.load(os.path.join(args.dir, "reference.npy"))
    ours = np.load(os.path.join(args.dir, "ours.npy"))
    if ref.shape != ours.shape:
        raise SystemExit(f"shape mismatch: reference {ref.shape}, ours {ours.shape}")
    rel = np.abs(ours.astype(np.float64) - ref).max() / np.abs(ref).max()
    flips = int((ours.argmax(0) != ref.argmax(0)).sum())
    print(f"max relative difference {rel:.2e}; argmax differs at {flips} of {ref.shape[1]} nodes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["dump", "compare"])
    ap.add_argument("dir")
    ap.add_argument("--peer", default=None, help="the peer's random_walk.py (default: $ECSNET_PEERS/random_walk.py)")
    ap.add_argument("--grid", type=int, default=56)
    ap.add_argument("--channels", type=int, default=448)
    ap.add_argument("--radius", type=int, default=5)
    ap.add_argument("--beta", type=int, default=8)
    ap.add_argument("--logt", type=int, default=8)
    a = ap.parse_args()
    dump(a) if a.mode == "dump" else compare(a)


if __name__ == "__main__":
    main()
