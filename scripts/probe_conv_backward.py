#!/usr/bin/env python3
"""Allocations of one convolution's backward on CPU (the rule behind `conv_backward_workspace`).

Each argument is `C_in,C_out,HW[,k,stride,groups,bias,batch,input_grad,weight_grad]` (square maps and kernels,
padding k//2, f32, 2 threads). For each, prints the sizes and every allocation (+) and free (-) that
ConvolutionBackward0 makes, replayed from torch.profiler (profile_memory=True) by scripts/measure_cpu.py's `replay`,
after a warm-up run, and the peak beyond the gradients it returns.

    /work/venv/bin/python scripts/probe_conv_backward.py 512,1000,13 64,256,56 64,64,64,3,1,1,1,1,1,0
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def probe(cin, cout, hw, k=1, stride=1, groups=1, bias=1, batch=1, input_grad=1, weight_grad=1):
    import torch
    from torch.profiler import ProfilerActivity, profile
    from measure_cpu import replay
    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bool(bias))
    conv.requires_grad_(bool(weight_grad))
    x = torch.randn(batch, cin, hw, hw, requires_grad=bool(input_grad))
    for _ in range(2):  # the first run warms oneDNN's caches; the second is reported
        x.grad = None
        conv.zero_grad(set_to_none=True)
        y = conv(x)
        g = torch.randn_like(y)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            y.backward(g)
    summary, rows = replay(prof)
    events = [r[0] for r in rows if r[4] and "Convolution" in r[4]]
    in_b = 4 * batch * cin * hw * hw
    out_hw = (hw + 2 * (k // 2) - k) // stride + 1
    out_b = 4 * batch * cout * out_hw * out_hw
    w_b = 4 * cout * (cin // groups) * k * k
    returned = (in_b if input_grad else 0) + ((w_b + (4 * cout if bias else 0)) if weight_grad else 0)
    print(f"C_in={cin} C_out={cout} HW={hw} k={k} stride={stride} groups={groups} batch={batch} "
          f"in={in_b} out={out_b} w={w_b} peak={summary['peak_bytes']} beyond_gradients={summary['peak_bytes'] - returned}")
    print("  ", events)


def main():
    import torch
    torch.set_num_threads(2)
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    for arg in sys.argv[1:]:
        probe(*[int(v) for v in arg.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
