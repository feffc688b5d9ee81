#!/usr/bin/env python3
"""Writes a ConvNeXt-style image classifier as an ONNX graph, spelled the way
PyTorch's TorchScript exporter spells a training export (module paths in node
names, `/stages/stages.2/stages.2.7/dwconv/Conv`; depthwise 7x7 Conv, channels-last
Transpose around LayerNormalization, pointwise Linear as Transpose(W)/MatMul/Add,
GELU as Div/Erf/Add/Mul/Mul, layer scale Mul, stochastic depth in training mode as
Shape/Gather/Unsqueeze/Concat/ConstantOfShape/RandomUniformLike/Less/Cast/Div/Mul,
strided Conv downsampling, GlobalAveragePool/Flatten/Gemm head), with free dims
`batch`, `height`, `width`. Written by nnmem's authors for its benchmarks; nothing
is exported from a framework.

  python3 scripts/make_convnext_graph.py OUT.onnx                     # depths 3,3,142,3: 6,043 nodes
  python3 scripts/make_convnext_graph.py OUT.onnx --depths 3,3,9,3    # ConvNeXt-T's depths

Options: --depths A,B,C,D --widths A,B,C,D --classes N
--inline-weights (random weights stored in the file, for running it; otherwise
weights are external references to a file never written).
"""
import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from make_llama_graph import save, weight_tensor  # the same weight and file conventions


class Builder:
    def __init__(self, inline, seed=0):
        self.nodes, self.inits, self.counts, self.anon = [], [], {}, 0
        self.inline = inline
        self.rng = np.random.default_rng(seed)
        self.shared = {}

    def node(self, scope, op, inputs, **attrs):
        """One node named `/scope/Op_k`, its output `/scope/Op_k_output_0`, as the exporter names them."""
        key = (scope, op)
        k = self.counts.get(key, 0)
        self.counts[key] = k + 1
        name = f"/{scope}/{op}" + (f"_{k}" if k else "")
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def const(self, scope, array):
        return self.node(scope, "Constant", [], value=numpy_helper.from_array(np.asarray(array)))

    def axes0(self):
        """An unscoped `[0]` Constant, as the exporter writes one per Unsqueeze."""
        self.anon += 1
        out = f"onnx::Unsqueeze_{self.anon}"
        self.nodes.append(helper.make_node("Constant", [], [out], name=f"Constant_{self.anon}",
                                           value=numpy_helper.from_array(np.array([0], dtype=np.int64))))
        return out

    def weight(self, name, shape):
        self.inits.append(weight_tensor(name, shape, self.inline, self.rng))
        return name


def layer_norm(b, scope, x, prefix, dim, channels_first):
    if channels_first:
        x = b.node(scope, "Transpose", [x], perm=[0, 2, 3, 1])
    y = b.node(scope, "LayerNormalization", [x, b.weight(f"{prefix}.weight", [dim]), b.weight(f"{prefix}.bias", [dim])],
               axis=-1, epsilon=1e-6)
    return b.node(scope, "Transpose", [y], perm=[0, 3, 1, 2]) if channels_first else y


def linear(b, scope, x, prefix, n_in, n_out):
    wt = b.node(scope, "Transpose", [b.weight(f"{prefix}.weight", [n_out, n_in])], perm=[1, 0])
    return b.node(scope, "Add", [b.weight(f"{prefix}.bias", [n_out]), b.node(scope, "MatMul", [x, wt])])


def gelu(b, scope, x):
    erf = b.node(scope, "Erf", [b.node(scope, "Div", [x, b.const(scope, np.array(np.sqrt(2.0), dtype=np.float32))])])
    half = b.node(scope, "Mul", [x, b.node(scope, "Add", [erf, b.const(scope, np.array(1.0, dtype=np.float32))])])
    return b.node(scope, "Mul", [half, b.const(scope, np.array(0.5, dtype=np.float32))])


def stochastic_depth(b, scope, x, one, keep):
    """Training-mode stochastic depth: a [batch, 1, 1, 1] Bernoulli mask, scaled by 1 / keep."""
    batch = b.node(scope, "Gather", [b.node(scope, "Shape", [x]), b.const(scope, np.array(0, dtype=np.int64))], axis=0)
    dims = [b.node(scope, "Unsqueeze", [batch, b.axes0()])] + [b.node(scope, "Unsqueeze", [one, b.axes0()]) for _ in range(3)]
    zeros = b.node(scope, "ConstantOfShape", [b.node(scope, "Concat", dims, axis=0)],
                   value=numpy_helper.from_array(np.zeros(1, dtype=np.float32)))
    noise = b.node(scope, "RandomUniformLike", [zeros], dtype=TensorProto.FLOAT, low=0.0, high=1.0)
    keep_c = np.array(keep, dtype=np.float32)
    mask = b.node(scope, "Cast", [b.node(scope, "Less", [noise, b.const(scope, keep_c)])], to=TensorProto.FLOAT)
    return b.node(scope, "Mul", [x, b.node(scope, "Div", [mask, b.const(scope, keep_c)])])


def build(cfg):
    b = Builder(cfg.inline_weights)
    depths, widths = cfg.depths, cfg.widths
    total_blocks = sum(depths)
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", cfg.classes])]
    one = b.const("stem/stem.0", np.array(1, dtype=np.int64))
    x = b.node("stem/stem.0", "Conv", ["input", b.weight("stem.0.weight", [widths[0], 3, 4, 4]), b.weight("stem.0.bias", [widths[0]])],
               kernel_shape=[4, 4], strides=[4, 4], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
    x = layer_norm(b, "stem/stem.1", x, "stem.1", widths[0], True)
    index = 0
    for s, (depth, dim) in enumerate(zip(depths, widths)):
        if s > 0:
            scope = f"stages/stages.{s}/stages.{s}.downsample"
            x = layer_norm(b, f"{scope}/norm", x, f"stages.{s}.downsample.norm", widths[s - 1], True)
            x = b.node(f"{scope}/conv", "Conv", [x, b.weight(f"stages.{s}.downsample.conv.weight", [dim, widths[s - 1], 2, 2]),
                                                 b.weight(f"stages.{s}.downsample.conv.bias", [dim])],
                       kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
        for i in range(depth):
            scope, prefix = f"stages/stages.{s}/stages.{s}.{i}", f"stages.{s}.blocks.{i}"
            y = b.node(f"{scope}/dwconv", "Conv", [x, b.weight(f"{prefix}.dwconv.weight", [dim, 1, 7, 7]), b.weight(f"{prefix}.dwconv.bias", [dim])],
                       kernel_shape=[7, 7], strides=[1, 1], pads=[3, 3, 3, 3], dilations=[1, 1], group=dim)
            y = b.node(f"{scope}/permute", "Transpose", [y], perm=[0, 2, 3, 1])
            y = layer_norm(b, f"{scope}/norm", y, f"{prefix}.norm", dim, False)
            y = linear(b, f"{scope}/pwconv1", y, f"{prefix}.pwconv1", dim, 4 * dim)
            y = gelu(b, f"{scope}/act", y)
            y = linear(b, f"{scope}/pwconv2", y, f"{prefix}.pwconv2", 4 * dim, dim)
            y = b.node(f"{scope}/unpermute", "Transpose", [y], perm=[0, 3, 1, 2])
            y = b.node(scope, "Mul", [b.weight(f"{prefix}.layer_scale", [dim, 1, 1]), y])
            drop = cfg.drop_path * index / max(total_blocks - 1, 1)
            if drop > 0:
                y = stochastic_depth(b, f"{scope}/drop_path", y, one, 1.0 - drop)
            x = b.node(scope, "Add", [y, x])
            index += 1
    x = b.node("head/pool", "GlobalAveragePool", [x])
    x = layer_norm(b, "head/norm", x, "head.norm", widths[-1], True)
    x = b.node("head/flatten", "Flatten", [x], axis=1)
    b.nodes.append(helper.make_node("Gemm", [x, b.weight("head.fc.weight", [cfg.classes, widths[-1]]), b.weight("head.fc.bias", [cfg.classes])],
                                    ["logits"], name="/head/fc/Gemm", alpha=1.0, beta=1.0, transB=1))
    graph = helper.make_graph(b.nodes, "convnext", inputs, outputs, b.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nnmem make_convnext_graph.py")
    m.ir_version = 8
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ints = lambda text: [int(v) for v in text.split(",")]
    ap.add_argument("--depths", type=ints, default=[3, 3, 142, 3], help="blocks per stage (default 3,3,142,3)")
    ap.add_argument("--widths", type=ints, default=[96, 192, 384, 768], help="channels per stage (default ConvNeXt-T's)")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--drop-path", type=float, default=0.1, help="stochastic depth rate of the last block (0: none)")
    ap.add_argument("--inline-weights", action="store_true", help="store random weights in the file")
    cfg = ap.parse_args()
    if len(cfg.depths) != 4 or len(cfg.widths) != 4:
        ap.error("--depths and --widths take four values")
    save(build(cfg), cfg)


if __name__ == "__main__":
    main()
