#!/usr/bin/python3
"""PyTorch's gradients for the whole-model oracle of the training engine (issue 22).

For LeNet-5 (data/mnist/lenet5.onnx) and the depthwise-separable test CNN (dwsep.onnx here, written once
from SyntheticModels.DepthwiseSeparableCnn()), runs the first 16 test digits through the same network in
PyTorch (the ONNX weights, loaded with onnx.numpy_helper), takes the mean cross-entropy on their labels and
writes the loss and every parameter's gradient (computed in float64 from the float32 weights, so
that the oracle's own rounding is far below the test's 1e-4), by initializer name, to <model>-gradients.npz beside this
script (numpy.savez: one float32 .npy per tensor, the loss as "loss").

Run with Debian's Python, which has PyTorch 1.13 and onnx:  /usr/bin/python3 make_gradients.py
"""
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
BATCH = 16


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def run(model, weights, x):
    """The model's graph in PyTorch, node by node (the operators these two models use)."""
    values = {model.graph.input[0].name: x, **weights}
    for node in model.graph.node:
        a = attributes(node)
        i = [values[name] for name in node.input]
        op = node.op_type
        if op == "Conv":
            pads = list(a.get("pads", [0] * 4))
            assert pads[:2] == pads[2:], "asymmetric pads"
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=list(a.get("strides", [1, 1])),
                         padding=pads[:2], dilation=list(a.get("dilations", [1, 1])), groups=a.get("group", 1))
        elif op == "MaxPool":
            pads = list(a.get("pads", [0] * 4))
            assert pads[:2] == pads[2:], "asymmetric pads"
            y = F.max_pool2d(i[0], list(a["kernel_shape"]), list(a.get("strides", a["kernel_shape"])), pads[:2],
                             ceil_mode=bool(a.get("ceil_mode", 0)))
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Flatten":
            y = torch.flatten(i[0], a.get("axis", 1))
        elif op == "Gemm":
            assert a.get("transB", 0) == 1 and a.get("transA", 0) == 0 and a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
            y = F.linear(i[0], i[1], i[2] if len(i) > 2 else None)
        elif op == "Relu":
            y = F.relu(i[0])
        elif op == "Clip":
            y = torch.clamp(i[0], i[1], i[2])
        else:
            raise NotImplementedError(op)
        values[node.output[0]] = y
    return values[model.graph.output[0].name]


def gradients(onnx_path, out_path, images, labels):
    model = onnx.load(onnx_path)
    # Every float initializer of more than one element is a parameter (the Clip bounds are not).
    weights = {}
    for t in model.graph.initializer:
        array = numpy_helper.to_array(t)
        weights[t.name] = torch.tensor(array, dtype=torch.float64, requires_grad=array.size > 1)
    logits = run(model, weights, torch.tensor(images, dtype=torch.float64))
    loss = F.cross_entropy(logits, torch.tensor(labels))
    loss.backward()
    out = {"loss": np.array(loss.item(), dtype=np.float32)}
    for name, w in weights.items():
        if w.requires_grad:
            out[name] = w.grad.numpy().astype(np.float32)
    np.savez(out_path, **out)
    print(f"{os.path.basename(out_path)}: loss {loss.item():.6f}, {len(out) - 1} gradients")


def main():
    torch.set_num_threads(1)
    images = np.load(os.path.join(ROOT, "data", "mnist", "test-images.npy"))[:BATCH].astype(np.float32)
    labels = np.load(os.path.join(ROOT, "data", "mnist", "test-labels.npy"))[:BATCH].astype(np.int64)
    gradients(os.path.join(ROOT, "data", "mnist", "lenet5.onnx"), os.path.join(HERE, "lenet5-gradients.npz"), images, labels)
    gradients(os.path.join(HERE, "dwsep.onnx"), os.path.join(HERE, "dwsep-gradients.npz"), images, labels)


if __name__ == "__main__":
    main()
