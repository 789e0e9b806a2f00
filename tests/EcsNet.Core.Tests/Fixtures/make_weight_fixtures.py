"""Writes the small weight-file fixtures the loader tests read (run once; outputs are committed).

    /usr/bin/python3 make_weight_fixtures.py [PSA_NETWORK_DIR]   # Debian's python3-torch 1.13, from this folder

PSA_NETWORK_DIR holds local copies of PSA's network/resnet38d.py and network/vgg16d.py (jiwoon-ahn/psa);
without it resnet38d-state-dict.txt and the *-forward.json reference outputs are not rewritten.

The tiny network mirrors TinyPsaTrunk in PretrainedWeightsTests.cs: PSA/SEAM ResNet-38 names (conv1a, one
pre-activation block b2 with a projection shortcut, bn7) at toy widths. Every tensor holds values that tests
recompute: the k-th state-dict key in ordinal order holds ((j % 17) - 8) / 8 + k / 4 at flat index j (exact in
float16 and bfloat16); num_batches_tracked counters hold 3k + 1.

Files: tiny.pth (zip format), tiny-legacy.pth (pre-1.6 format, wrapped as a DataParallel training checkpoint),
tiny-f16.safetensors and tiny-bf16.safetensors (safetensors written here by hand from the format description),
tiny-mxnet.params (MXNet nd.save layout with ademxapp ResNet-38 names plus its linear1000 classifier).
Also resnet38d-state-dict.txt / vgg16-features-state-dict.txt: the state-dict keys and shapes of PSA's
network/resnet38d.py Net() and torchvision's vgg16().features, for the name tests; and resnet38d-forward.json /
vgg16d-forward.json: summaries of the reference trunks' stage outputs (eval mode) with every weight set by
formula_weight() and the input by formula_input(), mirrored in ReferenceForwardTests.cs.
"""
import math
import json
import struct
import sys
from collections import OrderedDict

import torch
from torch import nn

SHAPES = OrderedDict([
    ("conv1a.weight", (4, 3, 3, 3)),
    ("b2.bn_branch2a.weight", (4,)), ("b2.bn_branch2a.bias", (4,)),
    ("b2.bn_branch2a.running_mean", (4,)), ("b2.bn_branch2a.running_var", (4,)),
    ("b2.bn_branch2a.num_batches_tracked", ()),
    ("b2.conv_branch2a.weight", (8, 4, 3, 3)),
    ("b2.bn_branch2b1.weight", (8,)), ("b2.bn_branch2b1.bias", (8,)),
    ("b2.bn_branch2b1.running_mean", (8,)), ("b2.bn_branch2b1.running_var", (8,)),
    ("b2.bn_branch2b1.num_batches_tracked", ()),
    ("b2.conv_branch2b1.weight", (8, 8, 3, 3)),
    ("b2.conv_branch1.weight", (8, 4, 1, 1)),
    ("bn7.weight", (8,)), ("bn7.bias", (8,)), ("bn7.running_mean", (8,)), ("bn7.running_var", (8,)),
    ("bn7.num_batches_tracked", ()),
])


def expected(name, shape, k):
    if name.endswith("num_batches_tracked"):
        return torch.tensor(3 * k + 1, dtype=torch.int64)
    n = 1
    for d in shape:
        n *= d
    j = torch.arange(n, dtype=torch.float64)
    return (((j % 17) - 8) / 8 + k / 4).to(torch.float32).reshape(shape)


def state_dict():
    order = sorted(SHAPES)  # ordinal order, as the C# tests sort
    return OrderedDict((name, expected(name, SHAPES[name], order.index(name))) for name in SHAPES)


def write_safetensors(path, tensors, dtype, code):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        if t.dtype == torch.int64:
            raw, dt = t.numpy().tobytes(), "I64"
        else:
            c = t.to(dtype).contiguous()
            raw, dt = c.view(torch.int16).numpy().tobytes(), code
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def mxnet_name(name):
    """PSA name -> ademxapp MXNet name (the inverse of PSA's convert_mxnet_to_torch)."""
    if name == "conv1a.weight":
        return "arg:conv1a_weight"
    bn = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}
    parts = name.split(".")
    if parts[0] == "bn7":
        return ("aux:" if parts[1].startswith("running") else "arg:") + "bn7_" + bn[parts[1]]
    block = parts[0][1:]  # "2" or "2_1"
    mx_block = block + "a" if "_" not in block else block.split("_")[0] + "b" + block.split("_")[1]
    kind, branch = parts[1].split("_", 1)
    if kind == "conv":
        return "arg:res%s_%s_weight" % (mx_block, branch)
    prefix = "aux:" if parts[2].startswith("running") else "arg:"
    return prefix + "bn%s_%s_%s" % (mx_block, branch, bn[parts[2]])


def write_mxnet(path, tensors):
    items = [(mxnet_name(k), v) for k, v in tensors.items() if not k.endswith("num_batches_tracked")]
    items.append(("arg:linear1000_weight", torch.ones(10, 8)))
    items.append(("arg:linear1000_bias", torch.zeros(10)))
    with open(path, "wb") as f:
        f.write(struct.pack("<QQQ", 0x112, 0, len(items)))
        for i, (_, t) in enumerate(items):
            if i % 2 == 0:  # legacy layout: ndim, then uint32 dims
                f.write(struct.pack("<I", t.dim()))
                f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            else:  # v2 layout: magic, dense storage type, ndim, int64 dims
                f.write(struct.pack("<IiI", 0xF993FAC9, 0, t.dim()))
                f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            f.write(struct.pack("<iii", 1, 0, 0))  # cpu(0), float32
            f.write(t.contiguous().numpy().tobytes())
        f.write(struct.pack("<Q", len(items)))
        for name, _ in items:
            b = name.encode("utf-8")
            f.write(struct.pack("<Q", len(b)))
            f.write(b)


def write_keys(path, sd):
    with open(path, "w") as f:
        for k, v in sd.items():
            f.write("%s %s\n" % (k, "x".join(str(d) for d in v.shape)))


def formula_weight(name, shape, k):
    """Deterministic, well-scaled values for the k-th key (ordinal order of our names)."""
    if name.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    n = 1
    for d in shape:
        n *= d
    j = torch.arange(n, dtype=torch.float64)
    last = name.rsplit(".", 1)[1]
    if len(shape) == 4:
        v = torch.sin(0.37 * j + k) * math.sqrt(3.0 / (shape[1] * shape[2] * shape[3]))
    elif last == "running_mean":
        v = 0.05 * torch.sin(2 * j + k)
    elif last == "running_var":
        v = 1 + 0.25 * (1 + torch.sin(3 * j + k))
    elif last == "weight":
        v = 1 + 0.1 * torch.sin(j + k)
    else:
        v = 0.1 * torch.cos(j + k)
    return v.to(torch.float32).reshape(shape)


def formula_input(shape):
    n = 1
    for d in shape:
        n *= d
    j = torch.arange(n, dtype=torch.float64)
    return torch.sin(0.01 * j + 0.5).to(torch.float32).reshape(shape)


def summarise(t):
    flat = t.detach().double().reshape(-1)
    n = flat.numel()
    idx = [0, n // 7, n // 3, n // 2, n - 1]
    # A position-sensitive checksum: a permuted or shifted map changes it.
    weighted = (flat * torch.sin(0.1 * torch.arange(n, dtype=torch.float64))).sum().item()
    return {"shape": list(t.shape), "sum": flat.sum().item(), "abs_sum": flat.abs().sum().item(),
            "weighted_sum": weighted, "max": flat.max().item(),
            "indices": idx, "values": [flat[i].item() for i in idx]}


def reference_outputs(psa_dir):
    sys.path.insert(0, psa_dir)
    import resnet38d
    import vgg16d
    x = formula_input((1, 3, 64, 64))
    with torch.no_grad():
        net = resnet38d.Net().eval()
        sd = net.state_dict()
        order = sorted(sd)
        net.load_state_dict(OrderedDict((k, formula_weight(k, tuple(v.shape), order.index(k))) for k, v in sd.items()))
        d = net.forward_as_dict(x)
        out = {k: summarise(d[k]) for k in ("conv4", "conv5", "conv6")}
        with open("resnet38d-forward.json", "w") as f:
            json.dump(out, f, indent=1)

        vgg = vgg16d.Net().eval()
        index = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10, "conv3_2": 12,
                 "conv3_3": 14, "conv4_1": 17, "conv4_2": 19, "conv4_3": 21, "conv5_1": 24, "conv5_2": 26,
                 "conv5_3": 28}
        ours = {k: "features.%d.%s" % (index[k.split(".")[0]], k.split(".")[1])
                for k in vgg.state_dict() if k.split(".")[0] in index}
        order = sorted(ours.values())
        vgg.load_state_dict(OrderedDict((k, formula_weight(ours[k], tuple(v.shape), order.index(ours[k])))
                                        for k, v in vgg.state_dict().items() if k in ours), strict=False)
        d = vgg.forward_as_dict(x)
        out = {"conv4": summarise(d["conv4"]), "conv5": summarise(d["conv5"]),
               "pool5": summarise(torch.nn.functional.max_pool2d(d["conv5"], 3, 1, 1))}
        with open("vgg16d-forward.json", "w") as f:
            json.dump(out, f, indent=1)


def main():
    sd = state_dict()
    torch.save(sd, "tiny.pth")
    wrapped = {"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 3}
    torch.save(wrapped, "tiny-legacy.pth", _use_new_zipfile_serialization=False)
    write_safetensors("tiny-f16.safetensors", sd, torch.float16, "F16")
    write_safetensors("tiny-bf16.safetensors", sd, torch.bfloat16, "BF16")
    write_mxnet("tiny-mxnet.params", sd)

    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
        import resnet38d
        write_keys("resnet38d-state-dict.txt", resnet38d.Net().state_dict())
        reference_outputs(sys.argv[1])
    import torchvision
    write_keys("vgg16-features-state-dict.txt",
               OrderedDict(("features." + k, v) for k, v in torchvision.models.vgg16().features.state_dict().items()))


if __name__ == "__main__":
    main()
