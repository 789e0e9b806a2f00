#!/usr/bin/python3
"""The alpha-beta cost model of docs/SCALING.md: flat gRPC ring vs hierarchical all-reduce.

Calibration (this machine): `ecsnet bench allreduce --json` outputs of 2..16 processes, per transport:
  alpha: the median one-float all-reduce time (tiny_us) over 2(p-1) ring steps (gRPC) or over the
         3 synchronisations of a one-chunk shared-memory all-reduce;
  cpu:   CPU seconds per GB sent by the gRPC ring at the largest size (cpu_s_per_gb).
Link speeds (beta) are the figures to plan with, not measured here: NVLink/PCIe inside a node,
25-400 Gb/s between nodes.

usage: bench/scaling_model.py CALIBRATION_DIR [--grad-mb 420] [--compute-s 0.5] [--pcie-gbs 12]
CALIBRATION_DIR holds cal-grpc-P.json and cal-shm-P.json (bench/scaling.sh writes them) and, if present, the
2-rank runs ecsnet-2.json and ecsnet-2-grpc.json of bench/allreduce.sh (uncontended CPU and bandwidth figures).
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


def grpc_hop_ceiling(cpu_s_per_gb):
    """One gRPC hop moves a GB for cpu_s_per_gb CPU seconds, about half on each end: with a core on each end it
    cannot run faster than this (bytes/s), whatever the link."""
    return 1e9 / (cpu_s_per_gb / 2)


def flat_ring(p, g, n, alpha, net, hop_cap):
    """The gRPC ring over all p ranks: 2(p-1) steps of n/p bytes, each as slow as the slowest hop; hops inside a
    node are loopback TCP (only the gRPC ceiling), hops between nodes the NIC."""
    link = hop_cap if p <= g else min(net, hop_cap)
    return 2 * (p - 1) * (alpha + n / p / link)


def hierarchical(p, g, n, alpha, shm_alpha, shm_bw, net, hop_cap, chunk=1 << 20):
    """Reduce into each node's leader through shared memory, gRPC ring of the k = p/g leaders, broadcast back
    (one after the other, as built). The shared-memory stages cost about 1.5 all-reduces of host memory traffic
    (measured all-reduce: shm_bw) and 5 waits per chunk."""
    k = max(1, p // g)
    chunks = max(1, -(-int(n) // chunk))
    local = 0 if g == 1 else 5 * chunks * shm_alpha + 1.5 * n / shm_bw
    ring = 0 if k == 1 else 2 * (k - 1) * (alpha + n / k / min(net, hop_cap))
    return local + ring


def two_dimensional(p, g, n, alpha, shm_alpha, shm_bw, net, hop_cap, chunk=1 << 20):
    """Not built: a reduce-scatter inside each node, then g rings between nodes at once (local rank i of every
    node all-reduces part i), then an all-gather inside the node. The NIC carries the same bytes, but through
    g gRPC streams, so the gRPC ceiling is g times higher."""
    k = max(1, p // g)
    chunks = max(1, -(-int(n) // chunk))
    local = 0 if g == 1 else 3 * chunks * shm_alpha + n / shm_bw
    ring = 0 if k == 1 else 2 * (k - 1) * alpha + 2 * (k - 1) / k * n / min(net, g * hop_cap)
    return local + ring


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--grad-mb", type=float, default=420.0, help="gradient size; 420 MB: ResNet-38 (105 M float32)")
    ap.add_argument("--compute-s", type=float, default=0.5, help="forward + backward time of one step on one GPU")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--pcie-gbs", type=float, default=12.0, help="device-host copy bandwidth (PCIe 3.0 x16 in practice)")
    ap.add_argument("--bucket-mb", type=float, default=25 * 1.048576, help="gradient bucket (DDP's 25 MiB): one collective each")
    args = ap.parse_args()
    ring_alpha, shm_alpha, cpu_cal, rows = calibrate(args.folder)
    # CPU per GB and shared-memory bandwidth from the uncontended 2-rank runs (one rank per core) when present
    cpu, shm_bw = cpu_cal, None
    for name in ("ecsnet-2-grpc.json", "ecsnet-2.json"):
        path = os.path.join(args.folder, name)
        if os.path.exists(path):
            with open(path) as f:
                run = json.load(f)
            big = max(run["sizes"], key=lambda s: s["mib"])
            if "gRPC" in run["transport"]:
                cpu = big["cpu_s_per_gb"]
            else:
                shm_bw = big["busbw_gbps"] * 1e9
    if shm_bw is None:
        shm_bw = max(r["shm"][2] for r in rows if "shm" in r) * 1e9
    hop_cap = grpc_hop_ceiling(cpu)
    print("## Calibration on this machine")
    print(f"alpha (gRPC ring step) {ring_alpha * 1e6:.0f} us, alpha (shared-memory wait) {shm_alpha * 1e6:.0f} us, "
          f"gRPC {cpu:.2f} CPU-s per GB (hop ceiling {hop_cap / 1e9:.2f} GB/s = {hop_cap * 8 / 1e9:.0f} Gb/s), "
          f"shared-memory all-reduce {shm_bw / 1e9:.2f} GB/s")
    print()
    print("| processes | gRPC one-float us | gRPC busbw GB/s (MiB) | gRPC CPU s/GB | shm one-float us | shm busbw GB/s (MiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        g, s = r.get("grpc"), r.get("shm")
        print(f"| {r['p']} | {g[0]:.0f} | {g[2]:.2f} ({g[1]}) | {g[3]:.2f} |" if g else f"| {r['p']} | – | – | – |", end="")
        print(f" {s[0]:.0f} | {s[2]:.2f} ({s[1]}) |" if s else " – | – |")

    n = args.grad_mb * 1e6
    bucket = args.bucket_mb * 1e6
    g = args.gpus_per_node
    pcie = 2 * n / (args.pcie_gbs * 1e9)  # gradients to host memory and back, both designs
    share = lambda t: t / (t + args.compute_s)
    print()
    print(f"## Predicted all-reduce of {args.grad_mb:.0f} MB in buckets of {args.bucket_mb:.1f} MB, {g} GPUs per node: seconds, "
          f"and share of a step of {args.compute_s} s compute (no overlap; each includes {pcie:.3f} s of device-host copies "
          f"at {args.pcie_gbs:.0f} GB/s)")
    print()
    print("| GPUs | between nodes | flat gRPC ring | hierarchical (built) | 2-D (not built) | flat share | hierarchical share | 2-D share |")
    print("|---|---|---|---|---|---|---|---|")
    for p in (8, 16, 64, 128, 512):
        for gbps in (25, 100, 400):
            if p <= g and gbps != 25:
                continue
            net = gbps / 8 * 1e9
            # one collective per bucket: the latency terms are paid per bucket
            buckets = max(1, -(-int(n) // int(bucket)))
            flat = pcie + buckets * flat_ring(p, g, n / buckets, ring_alpha, net, hop_cap)
            hier = pcie + buckets * hierarchical(p, g, n / buckets, ring_alpha, shm_alpha, shm_bw, net, hop_cap)
            two_d = pcie + buckets * two_dimensional(p, g, n / buckets, ring_alpha, shm_alpha, shm_bw, net, hop_cap)
            between = "– (one node)" if p <= g else f"{gbps} Gb/s"
            print(f"| {p} | {between} | {flat:.2f} | {hier:.2f} | {two_d:.2f} | {share(flat):.0%} | {share(hier):.0%} | {share(two_d):.0%} |")


if __name__ == "__main__":
    main()
