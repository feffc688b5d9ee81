#!/usr/bin/env python3
"""The measured UNet (scripts/measure_cpu.py) written two ways: one ONNX graph, two PyTorch peaks.

The committed UNet's decoder runs `x = dec(torch.cat([skips.pop(), up(x)], dim=1))`, so the old `x` stays bound
through `dec`; written as statements (`x = up(x); x = torch.cat([skips.pop(), x], dim=1); x = dec(x)`) it is freed
after `up`. This script exports both with the legacy exporter and checks that the graphs are identical (op types,
names and wiring), then measures both inference peaks at 256 px with scripts/measure_cpu.py's profiler method
(above weights and input, 2 threads, a warm-up first). docs/memory-model.md cites its output: nnmem, which sees
only the graph, can match one of the two and not both.

    OMP_NUM_THREADS=2 nice -n 10 /work/venv/bin/python scripts/unet_code_styles.py
"""
import io
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure_cpu as M  # noqa: E402


def statements(self, x):
    skips = [self.inc(x)]
    for d in self.down:
        skips.append(d(self.pool(skips[-1])))
    x = skips.pop()
    for up, dec in zip(self.up, self.dec):
        x = up(x)
        x = torch.cat([skips.pop(), x], dim=1)
        x = dec(x)
    return self.outc(x)


def build(style):
    torch.manual_seed(M.SEED)
    m = M.build_models()["unet"]()
    if style == "statements":
        m.forward = types.MethodType(statements, m)
    return m.eval()


def graph(m, x):
    f = io.BytesIO()
    torch.onnx.export(m, (x,), f, dynamo=False, input_names=["input"], output_names=["output"])
    return [(n.op_type, n.name, tuple(n.input), tuple(n.output)) for n in onnx.load_from_string(f.getvalue()).graph.node]


def peak(m, x):
    def run():
        with torch.no_grad():
            return m(x)
    run()  # warm-up
    summary, _ = M.profiled(run, m)
    return summary["peak_bytes"], summary.get("peak_at")


if __name__ == "__main__":
    import onnx
    import torch
    torch.set_num_threads(M.THREADS)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(M.SEED + 1))
    graphs = {s: graph(build(s), x) for s in ("nested", "statements")}
    print("identical ONNX graphs:", graphs["nested"] == graphs["statements"], "(%d nodes)" % len(graphs["nested"]))
    for s in ("nested", "statements"):
        b, at = peak(build(s), x)
        print("%-10s inference peak %d B at %s" % (s, b, at))
