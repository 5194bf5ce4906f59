"""Reference gradients by PyTorch autograd on an ONNX model's own weights.

Runs an ONNX graph node by node with torch operations (the weights are the model's initializers), lets
autograd differentiate the same scalar loss the gradient transform builds, and writes the loss and the
gradients. Used by tests/integration/autodiff-pytorch.test.ts to check main/autodiff against an
independent implementation (torch's own backward formulas), in float32.

    /usr/bin/python3 tests/python/onnx_torch_grad.py MODEL.onnx IN_DIR OUT_DIR --wrt NAME [--wrt NAME ...]
        --loss sum|dot|squared-distance --output NAME

IN_DIR holds one NAME.npy per graph input (plus weight.npy / target.npy for dot / squared-distance);
OUT_DIR receives loss.npy, loss_per_item.npy and grad__NAME.npy per --wrt name.
"""
import argparse
import math
import os
import re

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def s(v):
    return v.decode() if isinstance(v, bytes) else v


def ints(t):
    return [int(v) for v in t.reshape(-1).tolist()]


def run(model, feeds, wrt):
    """Evaluates the graph; tensors named in `wrt` become leaves that require grad."""
    env = {}
    for init in model.graph.initializer:
        env[init.name] = torch.from_numpy(numpy_helper.to_array(init).copy())
    for k, v in feeds.items():
        env[k] = v
    leaves = {}

    def mark(name):
        if name in wrt and name not in leaves:
            t = env[name].detach().clone().requires_grad_(True)
            env[name] = t
            leaves[name] = t

    for name in list(env):
        mark(name)
    for node in model.graph.node:
        a = attrs(node)
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            out = [torch.from_numpy(numpy_helper.to_array(a["value"]).copy())]
        elif op in ("Identity", "Dropout"):
            out = [x[0]]
        elif op == "Cast":
            out = [x[0].to(DTYPES[a["to"]])]
        elif op == "Shape":
            out = [torch.tensor(list(x[0].shape), dtype=torch.int64)]
        elif op == "ConstantOfShape":
            val = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            out = [torch.full(ints(x[0]), val.reshape(-1)[0].item(), dtype=torch.from_numpy(val).dtype)]
        elif op == "Unsqueeze":
            t = x[0]
            for ax in sorted(ints(x[1])):
                t = t.unsqueeze(ax if ax >= 0 else ax + t.dim() + 1)
            out = [t]
        elif op == "Squeeze":
            t = x[0]
            for ax in sorted(ints(x[1]), reverse=True):
                t = t.squeeze(ax)
            out = [t]
        elif op == "Reshape":
            shape = ints(x[1])
            shape = [x[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
            out = [x[0].reshape(shape)]
        elif op == "Flatten":
            ax = a.get("axis", 1)
            out = [x[0].reshape(int(np.prod(x[0].shape[:ax])), -1)]
        elif op == "Transpose":
            out = [x[0].permute(*a.get("perm", list(range(x[0].dim()))[::-1]))]
        elif op == "Concat":
            out = [torch.cat([t for t in x], dim=a["axis"])]
        elif op == "Gather":
            ax = a.get("axis", 0)
            idx = x[1].long()
            idx = torch.where(idx < 0, idx + x[0].shape[ax], idx)
            out = [torch.index_select(x[0], ax, idx.reshape(-1)).reshape(list(x[0].shape[:ax]) + list(idx.shape) + list(x[0].shape[ax + 1:]))]
        elif op == "Slice":
            t = x[0]
            starts, ends = ints(x[1]), ints(x[2])
            axes = ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
            steps = ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
            idx = [slice(None)] * t.dim()
            for st, en, ax, sp in zip(starts, ends, axes, steps):
                n = t.shape[ax]
                st = max(0, min(n, st + n if st < 0 else st))
                en = max(0, min(n, en + n if en < 0 else en))
                idx[ax] = slice(st, en, sp)
            out = [t[tuple(idx)]]
        elif op == "Range":
            out = [torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype)]
        elif op in ("Add", "Sub", "Mul", "Div", "Pow"):
            f = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}[op]
            if op == "Div" and not x[0].is_floating_point():
                out = [torch.div(x[0], x[1], rounding_mode="trunc")]
            else:
                out = [f(x[0], x[1])]
        elif op == "Equal":
            out = [torch.eq(x[0], x[1])]
        elif op == "LessOrEqual":
            out = [torch.le(x[0], x[1])]
        elif op == "Where":
            out = [torch.where(x[0], x[1], x[2])]
        elif op == "Expand":
            shape = ints(x[1])
            out = [x[0] * torch.ones(shape, dtype=x[0].dtype) if x[0].is_floating_point() else x[0].expand(torch.broadcast_shapes(tuple(x[0].shape), tuple(shape)))]
        elif op == "IsNaN":
            out = [torch.isnan(x[0])]
        elif op == "ArgMax":
            out = [torch.argmax(x[0], dim=a.get("axis", 0), keepdim=bool(a.get("keepdims", 1)))]
        elif op in ("Sigmoid", "Sin", "Cos", "Erf", "Sqrt", "Exp", "Tanh", "Neg", "Log", "Reciprocal", "Relu"):
            f = {"Sigmoid": torch.sigmoid, "Sin": torch.sin, "Cos": torch.cos, "Erf": torch.erf, "Sqrt": torch.sqrt, "Exp": torch.exp,
                 "Tanh": torch.tanh, "Neg": torch.neg, "Log": torch.log, "Reciprocal": torch.reciprocal, "Relu": torch.relu}[op]
            out = [f(x[0])]
        elif op == "ReduceMean":
            axes = a.get("axes")
            out = [x[0].mean(dim=axes, keepdim=bool(a.get("keepdims", 1)))]
        elif op == "Gemm":
            A = x[0].t() if a.get("transA", 0) else x[0]
            B = x[1].t() if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
            out = [y]
        elif op == "MatMul":
            out = [torch.matmul(x[0], x[1])]
        elif op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[0] == pads[2] and pads[1] == pads[3]
            out = [F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=a.get("strides", 1), padding=(pads[0], pads[1]),
                            dilation=a.get("dilations", 1), groups=a.get("group", 1))]
        elif op == "InstanceNormalization":
            out = [F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5))]
        elif op == "LayerNormalization":
            ax = a.get("axis", -1)
            ax = ax if ax >= 0 else ax + x[0].dim()
            out = [F.layer_norm(x[0], x[0].shape[ax:], x[1], x[2] if len(x) > 2 else None, eps=a.get("epsilon", 1e-5))]
        elif op == "Softmax":
            out = [torch.softmax(x[0], dim=a.get("axis", -1))]
        elif op == "Resize":
            assert s(a.get("mode")) == "nearest"
            scales = x[2].tolist()
            out = [F.interpolate(x[0], scale_factor=(scales[2], scales[3]), mode="nearest")]
        else:
            raise SystemExit(f"reference: operator {op} has no torch translation in this reference")
        for name, value in zip(node.output, out):
            env[name] = value
            mark(name)
    return env, leaves


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("inputs")
    p.add_argument("out")
    p.add_argument("--wrt", action="append", required=True)
    p.add_argument("--loss", required=True)
    p.add_argument("--output", required=True)
    args = p.parse_args()
    torch.set_grad_enabled(True)
    model = onnx.load(args.model)
    feeds = {i.name: torch.from_numpy(np.load(os.path.join(args.inputs, i.name + ".npy"))) for i in model.graph.input}
    env, leaves = run(model, feeds, set(args.wrt))
    y = env[args.output]
    if args.loss == "sum":
        per = y
    elif args.loss == "dot":
        per = y * torch.from_numpy(np.load(os.path.join(args.inputs, "weight.npy")))
    else:
        per = (y - torch.from_numpy(np.load(os.path.join(args.inputs, "target.npy")))) ** 2
    per_item = per.reshape(per.shape[0], -1).sum(1)
    loss = per_item.sum()
    grads = torch.autograd.grad(loss, [leaves[w] for w in args.wrt], allow_unused=True)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "loss.npy"), loss.detach().numpy())
    np.save(os.path.join(args.out, "loss_per_item.npy"), per_item.detach().numpy())
    for w, g in zip(args.wrt, grads):
        g = torch.zeros_like(leaves[w]) if g is None else g
        np.save(os.path.join(args.out, "grad__" + re.sub(r"[^A-Za-z0-9_]", "_", w) + ".npy"), g.detach().numpy())


if __name__ == "__main__":
    main()
