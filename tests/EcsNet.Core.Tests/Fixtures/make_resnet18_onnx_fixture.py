"""Writes the reference outputs of the packaged ImageNet ResNet-18 (run once; outputs are committed).

    /usr/bin/python3 make_resnet18_onnx_fixture.py PACKAGE_DIR VOC_JPEG   # Debian's python3-onnx, -numpy, -pil

PACKAGE_DIR is the NuGet cache folder of Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (normally
~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1, present after any build of EcsNet.Core);
VOC_JPEG is one photo of the VOC 2012 sample (the committed fixture used 2007_000123.jpg: a PASCAL VOC 2012 photo,
Everingham et al., a Flickr image the VOC organisers redistribute for research; kept as a test fixture under the VOC
terms of use).

The graphs are evaluated here by a small NumPy interpreter (float64), written from the ONNX operator
specification for the operators the two files use (Conv, BatchNormalization, Relu, Add, MaxPool, AveragePool,
Split, Concat, Sub): an implementation independent of the C# reader and of TorchSharp. onnx.load only parses
the protobuf.

Files written next to this script:
  resnet18-onnx-input.png  the photo, shorter side resized to 224 (bilinear) and centre-cropped to 224x224 RGB
  resnet18-onnx.json       sha256 of both .onnx files, graph facts, and the 512 pooled features of that PNG:
                           "package" after the package's own preprocessing graph (RGB 0-255 -> BGR minus the
                           224x224 mean image), "channelMean" after BGR minus the mean image's per-channel means,
                           and "folded" (the same, with conv1's padding
                           standing for the ImageNet mean colour: what the C# trunk computes on the project's
                           normalised input, where the preprocessing is folded into conv1 and bn1)
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def pad_nchw(x, pads, value):
    # ONNX pads: [begin_0, begin_1, end_0, end_1] over the spatial axes.
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def windows(x, kh, kw, sh, sw, dh, dw):
    """[N, C, Ho, Wo, kh, kw] view of the (already padded) input."""
    n, c, h, w = x.shape
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, c, ho, wo, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, :, i, j] = x[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
    return out


def conv(x, w, a):
    assert a.get("group", 1) == 1
    kh, kw = w.shape[2:]
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    cols = windows(pad_nchw(x, a.get("pads", [0, 0, 0, 0]), 0.0), kh, kw, sh, sw, dh, dw)
    return np.einsum("nchwij,ocij->nohw", cols, w, optimize=True)


def batch_norm(x, scale, bias, mean, var, a):
    eps = a.get("epsilon", 1e-5)
    s = (scale / np.sqrt(var + eps)).reshape(1, -1, 1, 1)
    return (x - mean.reshape(1, -1, 1, 1)) * s + bias.reshape(1, -1, 1, 1)


def max_pool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    cols = windows(pad_nchw(x, a.get("pads", [0, 0, 0, 0]), -np.inf), kh, kw, sh, sw, 1, 1)
    return cols.max(axis=(4, 5))


def average_pool(x, a):
    assert a.get("pads", [0, 0, 0, 0]) == [0, 0, 0, 0]
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    return windows(x, kh, kw, sh, sw, 1, 1).mean(axis=(4, 5))


def run(model, feeds):
    g = model.graph
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    values.update(feeds)
    for node in g.node:
        a = attrs(node)
        x = [values[i] for i in node.input]
        op = node.op_type
        if op == "Conv":
            out = [conv(x[0], x[1], a) + (x[2].reshape(1, -1, 1, 1) if len(x) > 2 else 0)]
        elif op == "BatchNormalization":
            out = [batch_norm(*x, a)]
        elif op == "Relu":
            out = [np.maximum(x[0], 0)]
        elif op == "Add":
            out = [x[0] + x[1]]
        elif op == "Sub":
            out = [x[0] - x[1]]
        elif op == "MaxPool":
            out = [max_pool(x[0], a)]
        elif op == "AveragePool":
            out = [average_pool(x[0], a)]
        elif op == "Split":
            out = np.split(x[0], np.cumsum(a["split"])[:-1], axis=a["axis"])
        elif op == "Concat":
            out = [np.concatenate(x, axis=a["axis"])]
        else:
            raise NotImplementedError(op)
        for name, v in zip(node.output, out):
            values[name] = v
    return values[g.output[0].name]


def main():
    package, jpeg = sys.argv[1], sys.argv[2]
    trunk_path = os.path.join(package, "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx")
    prep_path = os.path.join(package, "tools", "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx")
    trunk = onnx.load(trunk_path)
    prep = onnx.load(prep_path)

    img = Image.open(jpeg).convert("RGB")
    scale = 224 / min(img.size)
    img = img.resize((max(224, round(img.width * scale)), max(224, round(img.height * scale))), Image.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    png = os.path.join(HERE, "resnet18-onnx-input.png")
    img.save(png)
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64).transpose(2, 0, 1)[None]   # [1, 3, 224, 224]

    package_input = run(prep, {prep.graph.input[0].name: rgb})
    mean_image = numpy_helper.to_array(prep.graph.initializer[0]).astype(np.float64)
    channel_mean = mean_image.reshape(3, -1).mean(axis=1)
    channel_input = rgb[:, ::-1] - channel_mean.reshape(1, 3, 1, 1)

    name = trunk.graph.input[0].name
    pooled_package = run(trunk, {name: package_input}).reshape(-1)
    pooled_channel = run(trunk, {name: channel_input}).reshape(-1)

    # The C# trunk folds the preprocessing into conv1/bn1 for input normalised as (p/255 - mean)/std with the
    # ImageNet mean/std; its zero padding then stands for the pixel value 255*mean, i.e. u = 255*mean - M in the
    # graph's input units. Emulate that: pad the input with those values and run conv1 without padding.
    imagenet_mean_rgb = np.array([0.485, 0.456, 0.406], dtype=np.float32).astype(np.float64)
    pad_bgr = (255 * imagenet_mean_rgb)[::-1] - channel_mean
    stem = trunk.graph.node[0]
    assert stem.op_type == "Conv" and stem.input[0] == name
    pads = list(attrs(stem)["pads"])
    t, l, b, r = pads
    padded = np.concatenate([np.pad(channel_input[:, k:k + 1], ((0, 0), (0, 0), (t, b), (l, r)), constant_values=pad_bgr[k])
                             for k in range(3)], axis=1)
    for a in stem.attribute:
        if a.name == "pads":
            del a.ints[:]
            a.ints.extend([0, 0, 0, 0])
    pooled_folded = run(trunk, {name: padded}).reshape(-1)

    ops = {}
    for node in trunk.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    result = {
        "nugetPackage": "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1",
        "image": os.path.basename(jpeg),
        "resnet18Sha256": sha256(trunk_path),
        "preprocessSha256": sha256(prep_path),
        "opset": trunk.opset_import[0].version,
        "input": name,
        "output": trunk.graph.output[0].name,
        "initializers": len(trunk.graph.initializer),
        "operators": ops,
        "bgrChannelMean": [float(v) for v in channel_mean],
        "package": [float("%.9g" % v) for v in pooled_package],
        "channelMean": [float("%.9g" % v) for v in pooled_channel],
        "folded": [float("%.9g" % v) for v in pooled_folded],
    }
    with open(os.path.join(HERE, "resnet18-onnx.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("pooled (package preprocessing): mean %.6f max %.6f" % (pooled_package.mean(), pooled_package.max()))
    print("pooled (channel means): max |diff| vs package %.6g" % np.abs(pooled_package - pooled_channel).max())
    print("pooled (folded padding): max |diff| vs channel means %.6g" % np.abs(pooled_folded - pooled_channel).max())


if __name__ == "__main__":
    main()
