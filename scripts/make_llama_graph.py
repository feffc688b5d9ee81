#!/usr/bin/env python3
"""Writes a Llama-style decoder as an ONNX graph, spelled the way PyTorch's
dynamo exporter spells one (Shape/Range/Expand position ids, Cos/Sin rotary
tables, Slice/Neg/Concat rotation, Unsqueeze/Expand/Reshape for grouped K/V,
Trilu/Equal/Where causal mask, IsNaN guard after Softmax, RMSNorm as
Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul, SwiGLU as Sigmoid/Mul), with free
dims `s0` (batch) and `s1` (sequence). Written by nnmem's authors for its
tests and benchmarks; nothing is exported from a framework.

  python3 scripts/make_llama_graph.py OUT.onnx                 # Llama-2-7B's config, weights as
                                                               # external references (never written)
  python3 scripts/make_llama_graph.py OUT.onnx --tiny          # 2 layers, tiny dims
  python3 scripts/make_llama_graph.py OUT.onnx --tiny --decode # with past K/V inputs (KV cache)

Options: --layers N --hidden D --heads H --kv-heads K --ffn F --vocab V
--inline-weights (random weights stored in the file, for running it).

Llama-2-7B (layers 32, hidden 4096, heads 32, kv heads 32, ffn 11008, vocab
32000, untied head) has 6,738,415,616 parameters: embedding and head
32000·4096 each, per layer 4·4096² + 3·4096·11008 + 2·4096, final norm 4096.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, inline, seed=0):
        self.nodes, self.inits, self.n = [], [], 0
        self.inline = inline
        self.rng = np.random.default_rng(seed)

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def node(self, op, inputs, n_out=1, base=None, **attrs):
        outs = [self.name(base or op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"node_{outs[0]}", **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, array, base="val"):
        """A small constant as a Constant node (shape arguments, scalars)."""
        out = self.name(base)
        self.nodes.append(helper.make_node("Constant", [], [out], name=f"node_{out}", value=numpy_helper.from_array(np.asarray(array))))
        return out

    def i64(self, values):
        return self.const(np.array(values, dtype=np.int64))

    def weight(self, name, shape):
        self.inits.append(weight_tensor(name, shape, self.inline, self.rng))
        return name


def weight_tensor(name, shape, inline, rng):
    """A float32 weight: random values stored inline, or an external reference to a file never written."""
    if inline:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.05).astype(np.float32), name)
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", str(4 * int(np.prod(shape))))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def save(m, cfg):
    """Checks the model when its weights are inline, writes it and says what it holds."""
    onnx.checker.check_model(m) if cfg.inline_weights else None
    onnx.save(m, cfg.out)
    print(f"{cfg.out}: {len(m.graph.node)} nodes, {sum(int(np.prod(t.dims)) for t in m.graph.initializer):,} parameters")


def rms_norm(b, x, weight, eps=1e-6):
    sq = b.node("Pow", [x, b.const(np.array(2.0, dtype=np.float32))], base="pow")
    mean = b.node("ReduceMean", [sq, b.i64([-1])], base="mean", keepdims=1, noop_with_empty_axes=0)
    var = b.node("Add", [mean, b.const(np.array(eps, dtype=np.float32))], base="add")
    r = b.node("Reciprocal", [b.node("Sqrt", [var])], base="rsqrt")
    return b.node("Mul", [weight, b.node("Mul", [x, r], base="mul")], base="mul")


def rotate(b, x, half):
    """Concat(-x[..., half:], x[..., :half]) with Slice inputs, as the exporter writes rotate_half."""
    axes, steps = b.i64([3]), b.i64([1])
    upper = b.node("Slice", [x, b.i64([half]), b.i64([np.iinfo(np.int64).max]), axes, steps], base="slice")
    lower = b.node("Slice", [x, b.i64([0]), b.i64([half]), axes, steps], base="slice")
    return b.node("Concat", [b.node("Neg", [upper]), lower], base="cat", axis=-1)


def build(cfg):
    b = Builder(cfg.inline_weights)
    L, D, H, KV, F, V = cfg.layers, cfg.hidden, cfg.heads, cfg.kv_heads, cfg.ffn, cfg.vocab
    hd, rep = D // H, H // KV
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["s0", "s1"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["s0", "s1", V])]
    past = []
    if cfg.decode:
        for i in range(L):
            for kind in ("key", "value"):
                name = f"past_{kind}_{i}"
                inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["s0", KV, "s2", hd]))
                outputs.append(helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT, ["s0", KV, "s3", hd]))
            past.append((f"past_key_{i}", f"past_value_{i}"))

    batch = b.node("Shape", ["input_ids"], base="val", start=0, end=1)
    seq = b.node("Shape", ["input_ids"], base="val", start=1, end=2)
    seq_scalar = b.node("Squeeze", [seq], base="sym_size_int")
    if cfg.decode:
        past_len = b.node("Squeeze", [b.node("Shape", [past[0][0]], base="val", start=2, end=3)], base="sym_size_int")
        total = b.node("Add", [past_len, seq_scalar], base="add")
        start = past_len
    else:
        start, total = b.const(np.array(0, dtype=np.int64)), seq_scalar
    positions = b.node("Range", [start, total, b.const(np.array(1, dtype=np.int64))], base="arange")
    positions = b.node("Unsqueeze", [positions, b.i64([0])], base="unsqueeze")
    positions = b.node("Expand", [positions, b.node("Concat", [batch, seq], base="val", axis=0)], base="expand")

    # Rotary tables: inv_freq [1, hd/2, 1] expanded to the batch, times the positions.
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, hd, 2, dtype=np.float32) / hd))
    inv = b.const(inv_freq.reshape(1, hd // 2, 1).astype(np.float32), base="inv_freq")
    inv = b.node("Expand", [inv, b.node("Concat", [batch, b.i64([1]), b.i64([1])], base="val", axis=0)], base="expand")
    pos = b.node("Cast", [b.node("Unsqueeze", [positions, b.i64([1])], base="unsqueeze")], base="to_copy", to=TensorProto.FLOAT)
    freqs = b.node("Transpose", [b.node("MatMul", [inv, pos], base="matmul")], base="transpose", perm=[0, 2, 1])
    emb = b.node("Concat", [freqs, freqs], base="cat", axis=-1)
    cos = b.node("Unsqueeze", [b.node("Cos", [emb]), b.i64([1])], base="unsqueeze")
    sin = b.node("Unsqueeze", [b.node("Sin", [emb]), b.i64([1])], base="unsqueeze")

    # Causal mask [s1, total]: ones, lower triangle from the diagonal offset `past`, then 0 / -inf.
    ones = b.node("Expand", [b.const(np.array(1.0, dtype=np.float32)),
                             b.node("Concat", [seq, b.node("Unsqueeze", [total, b.i64([0])], base="val")], base="val", axis=0)],
                  base="val")
    tri = b.node("Trilu", [ones, start], base="val", upper=0)
    masked = b.node("Equal", [tri, b.const(np.array(0.0, dtype=np.float32))], base="val")
    mask = b.node("Where", [masked, b.const(np.array(-np.inf, dtype=np.float32)), b.const(np.array(0.0, dtype=np.float32))], base="val")

    x = b.node("Gather", [b.weight("embed_tokens.weight", [V, D]), "input_ids"], base="embedding", axis=0)
    heads_shape = lambda n: b.node("Concat", [batch, seq, b.i64([n]), b.i64([hd])], base="val", axis=0)
    q_shape, kv_shape = heads_shape(H), heads_shape(KV)
    scale = b.const(np.array(hd ** -0.25, dtype=np.float32), base="val")
    for i in range(L):
        p = f"layers.{i}"
        h = rms_norm(b, x, b.weight(f"{p}.input_layernorm.weight", [D]))
        proj = lambda w, shape, out: b.node("Transpose", [b.node("Reshape", [b.node("MatMul", [h, b.weight(w, [D, out])], base="linear"), shape],
                                                                 base="view", allowzero=1)], base="transpose", perm=[0, 2, 1, 3])
        q = proj(f"{p}.self_attn.q_proj.weight", q_shape, D)
        k = proj(f"{p}.self_attn.k_proj.weight", kv_shape, KV * hd)
        v = proj(f"{p}.self_attn.v_proj.weight", kv_shape, KV * hd)
        q = b.node("Add", [b.node("Mul", [q, cos], base="mul"), b.node("Mul", [rotate(b, q, hd // 2), sin], base="mul")], base="add")
        k = b.node("Add", [b.node("Mul", [k, cos], base="mul"), b.node("Mul", [rotate(b, k, hd // 2), sin], base="mul")], base="add")
        if cfg.decode:
            k = b.node("Concat", [past[i][0], k], base="cat", axis=2)
            v = b.node("Concat", [past[i][1], v], base="cat", axis=2)
            b.nodes.append(helper.make_node("Identity", [k], [f"present_key_{i}"], name=f"present_key_{i}"))
            b.nodes.append(helper.make_node("Identity", [v], [f"present_value_{i}"], name=f"present_value_{i}"))
        if rep > 1:
            kv_len = b.node("Shape", [k], base="val", start=2, end=3)
            expand_shape = b.node("Concat", [batch, b.i64([KV]), b.i64([rep]), kv_len, b.i64([hd])], base="val", axis=0)
            merged = b.node("Concat", [batch, b.i64([H]), kv_len, b.i64([hd])], base="val", axis=0)
            k = b.node("Reshape", [b.node("Expand", [b.node("Unsqueeze", [k, b.i64([2])], base="unsqueeze"), expand_shape], base="expand"),
                                   merged], base="unsafe_view", allowzero=1)
            v = b.node("Reshape", [b.node("Expand", [b.node("Unsqueeze", [v, b.i64([2])], base="unsqueeze"), expand_shape], base="expand"),
                                   merged], base="unsafe_view", allowzero=1)
        kt = b.node("Transpose", [k], base="val", perm=[0, 1, 3, 2])
        scores = b.node("MatMul", [b.node("Mul", [q, scale], base="val"), b.node("Mul", [kt, scale], base="val")], base="val")
        probs = b.node("Softmax", [b.node("Add", [scores, mask], base="val")], base="val", axis=-1)
        probs = b.node("Where", [b.node("IsNaN", [probs], base="val"), b.const(np.array(0.0, dtype=np.float32)), probs], base="val")
        attn = b.node("Transpose", [b.node("MatMul", [probs, v], base="scaled_dot_product_attention")], base="transpose", perm=[0, 2, 1, 3])
        attn = b.node("Reshape", [attn, b.node("Concat", [batch, seq, b.i64([D])], base="val", axis=0)], base="view", allowzero=1)
        x = b.node("Add", [x, b.node("MatMul", [attn, b.weight(f"{p}.self_attn.o_proj.weight", [D, D])], base="linear")], base="add")
        h = rms_norm(b, x, b.weight(f"{p}.post_attention_layernorm.weight", [D]))
        gate = b.node("MatMul", [h, b.weight(f"{p}.mlp.gate_proj.weight", [D, F])], base="linear")
        silu = b.node("Mul", [gate, b.node("Sigmoid", [gate], base="val")], base="silu")
        up = b.node("MatMul", [h, b.weight(f"{p}.mlp.up_proj.weight", [D, F])], base="linear")
        down = b.node("MatMul", [b.node("Mul", [silu, up], base="mul"), b.weight(f"{p}.mlp.down_proj.weight", [F, D])], base="linear")
        x = b.node("Add", [x, down], base="add")
    h = rms_norm(b, x, b.weight("norm.weight", [D]))
    b.nodes.append(helper.make_node("MatMul", [h, b.weight("lm_head.weight", [D, V])], ["logits"], name="lm_head"))
    graph = helper.make_graph(b.nodes, "llama", inputs, outputs, b.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="nnmem make_llama_graph.py")
    m.ir_version = 9
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--tiny", action="store_true", help="2 layers, hidden 32, 4 heads, 2 kv heads, ffn 48, vocab 64")
    ap.add_argument("--decode", action="store_true", help="past key/value inputs and present outputs")
    ap.add_argument("--inline-weights", action="store_true", help="store random weights in the file")
    for flag, default in (("layers", 32), ("hidden", 4096), ("heads", 32), ("kv-heads", 32), ("ffn", 11008), ("vocab", 32000)):
        ap.add_argument(f"--{flag}", type=int, default=default)
    cfg = ap.parse_args()
    if cfg.tiny:
        cfg.layers, cfg.hidden, cfg.heads, cfg.kv_heads, cfg.ffn, cfg.vocab = 2, 32, 4, 2, 48, 64
    save(build(cfg), cfg)


if __name__ == "__main__":
    main()
