#!/usr/bin/python3
"""The alpha-beta cost model of docs/SCALING.md: flat gRPC ring vs hierarchical all-reduce.

Calibration (this machine): `ecsnet bench allreduce --json` outputs of 2..16 processes, per transport:
  alpha: the median one-float all-reduce time (tiny_us) over 2(p-1) ring steps (gRPC) or over the
         3 synchronisations of a one-chunk shared-memory all-reduce;
  cpu:   CPU seconds per GB sent by the gRPC ring at the largest size (cpu_s_per_gb).
Link speeds (beta) are the figures to plan with, not measured here: NVLink/PCIe inside a node,
25-400 Gb/s between nodes.

usage: bench/scaling_model.py CALIBRATION_DIR [--grad-mb 420] [--compute-s 0.5] [--leader-cores 4]
CALIBRATION_DIR holds cal-grpc-P.json and cal-shm-P.json (bench/scaling.sh writes them).
"""
import argparse
import glob
import json
import os
import re
import statistics


def load(folder, transport):
    runs = {}
    for path in glob.glob(os.path.join(folder, f"cal-{transport}-*.json")):
        p = int(re.search(r"-(\d+)\.json$", path).group(1))
        with open(path) as f:
            text = f.read().strip()
        if text:
            runs[p] = json.loads(text)
    return runs


def calibrate(folder):
    grpc, shm = load(folder, "grpc"), load(folder, "shm")
    # alpha of one ring step: a one-float ring all-reduce is 2(p-1) dependent steps
    ring_alpha = statistics.median(
        min(s["tiny_us"] for s in r["sizes"]) * 1e-6 / (2 * (p - 1)) for p, r in grpc.items() if p > 1)
    # a one-chunk shared-memory all-reduce: describe, post, reduce (3 waits on the slowest rank)
    shm_alpha = statistics.median(min(s["tiny_us"] for s in r["sizes"]) * 1e-6 / 3 for p, r in shm.items() if p > 1)
    cpu = statistics.median(max(s["sizes"], key=lambda s: s["mib"])["cpu_s_per_gb"] for s in grpc.values())
    rows = []
    for p in sorted(set(grpc) | set(shm)):
        row = {"p": p}
        for name, runs in (("grpc", grpc), ("shm", shm)):
            if p in runs:
                big = max(runs[p]["sizes"], key=lambda s: s["mib"])
                row[name] = (min(s["tiny_us"] for s in runs[p]["sizes"]), big["mib"], big["busbw_gbps"], big["cpu_s_per_gb"])
        rows.append(row)
    return ring_alpha, shm_alpha, cpu, rows


def flat_ring(p, n, alpha, link):
    """2(p-1) steps of n/p bytes; every step waits for the slowest link (the NIC once the ring leaves a node)."""
    return 2 * (p - 1) * (alpha + n / p / link)


def hierarchical(p, g, n, alpha, shm_alpha, intra, inter, chunk=1 << 20):
    """Reduce to each node's leader, ring of the k = p/g leaders, broadcast back (not pipelined, as built)."""
    k = max(1, p // g)
    chunks = max(1, -(-n // chunk))
    # reduce-scatter + gather to the leader moves about 2n through each rank's memory; the broadcast n
    local = 0 if g == 1 else (3 + 2) * chunks * shm_alpha + 3 * n / intra
    ring = 0 if k == 1 else 2 * (k - 1) * (alpha + n / k / inter)
    return local + ring


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--grad-mb", type=float, default=420.0, help="gradient size; 420 MB: ResNet-38 (105 M float32)")
    ap.add_argument("--compute-s", type=float, default=0.5, help="forward + backward time of one step on one GPU")
    ap.add_argument("--leader-cores", type=float, default=4.0, help="cores a leader's gRPC stack may use")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    args = ap.parse_args()
    ring_alpha, shm_alpha, cpu, rows = calibrate(args.folder)
    print("## Calibration on this machine")
    print(f"alpha (gRPC ring step) {ring_alpha * 1e6:.1f} us, alpha (shared-memory wait) {shm_alpha * 1e6:.1f} us, "
          f"gRPC CPU {cpu:.2f} s per GB sent")
    print("| processes | gRPC one-float us | gRPC busbw GB/s (MiB) | gRPC CPU s/GB | shm one-float us | shm busbw GB/s (MiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        g, s = r.get("grpc"), r.get("shm")
        print(f"| {r['p']} | {g[0]:.0f} | {g[2]:.2f} ({g[1]}) | {g[3]:.2f} |" if g else f"| {r['p']} | – | – | – |", end="")
        print(f" {s[0]:.0f} | {s[2]:.2f} ({s[1]}) |" if s else " – | – |")

    n = args.grad_mb * 1e6
    g = args.gpus_per_node
    # the gRPC stack's own ceiling: a leader moving B bytes/s spends B * cpu seconds of CPU per second
    grpc_cap = args.leader_cores / cpu * 1e9
    intra = {"NVLink": 150e9, "PCIe": 12e9}
    print()
    print(f"## Predicted all-reduce of {args.grad_mb:.0f} MB ({g} GPUs per node), share of a step of "
          f"{args.compute_s} s compute + communication (no overlap)")
    print("| GPUs | inter-node | intra-node | flat ring s | hierarchical s | flat share | hierarchical share |")
    print("|---|---|---|---|---|---|---|")
    for p in (8, 16, 64, 128, 512):
        for gbps in (25, 100, 400):
            link = min(gbps / 8 * 1e9, grpc_cap)
            for name, bw in intra.items():
                # the flat ring's links inside a node are as fast as the intra-node fabric, but the NIC link bounds every step
                flat = flat_ring(p, n, ring_alpha, link if p > g else bw)
                hier = hierarchical(p, g, n, ring_alpha, shm_alpha, bw, link)
                share = lambda t: t / (t + args.compute_s)
                print(f"| {p} | {gbps} Gb/s | {name} | {flat:.3f} | {hier:.3f} | {share(flat):.0%} | {share(hier):.0%} |")
    print()
    print(f"gRPC ceiling per leader at {args.leader_cores:.0f} cores: {grpc_cap / 1e9:.1f} GB/s "
          f"({grpc_cap * 8 / 1e9:.0f} Gb/s); links above it are capped there.")


if __name__ == "__main__":
    main()
