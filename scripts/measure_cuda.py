#!/usr/bin/env python3
"""Measure what PyTorch really allocates on a CUDA GPU, for nnmem's backend profiles.

Run on a machine with a CUDA GPU and torch + torchvision (random weights, nothing is downloaded):
    python3 scripts/measure_cuda.py OUT.json

Every peak is torch.cuda.max_memory_allocated() above what was allocated before the
measured window (weights and input resident), in bytes, f32.
Cases:
  * inference / training (SGD step, grads born in backward) of torchvision classifiers, batch 1, 224 px;
  * Gatys style transfer on VGG-19 features up to relu5_1 (style relu1_1..relu5_1, content relu4_2),
    frozen weights, the image optimised with Adam or L-BFGS, at several sizes, cuDNN on.
"""
import json
import sys
import time

import torch
import torchvision

DEV = torch.device("cuda")
MODELS = ["vgg16", "vgg19", "resnet50", "mobilenet_v2", "googlenet", "squeezenet1_1", "densenet121", "efficientnet_b0"]


def build(name):
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=False)
    return getattr(torchvision.models, name)(**kwargs).to(DEV)


def window(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def classifier_cases(out):
    for name in MODELS:
        model = build(name)
        x = torch.randn(1, 3, 224, 224, device=DEV)
        model.eval()
        with torch.no_grad():
            model(x)  # warm-up: cuDNN algorithm choice and workspace
            inf = window(lambda: model(x))
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            y = model(x)
            y = y.logits if hasattr(y, "logits") else y
            y.sum().backward()
            opt.step()

        step()
        for p in model.parameters():
            p.grad = None
        train = window(step)
        params = sum(p.numel() for p in model.parameters())
        out["cases"]["%s/inference/b1/224" % name] = {"peak_bytes": inf, "param_count": params}
        out["cases"]["%s/training/b1/224" % name] = {"peak_bytes": train, "param_count": params,
                                                     "grad_bytes": 4 * params}
        del model, opt
        torch.cuda.empty_cache()


STYLE = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
CONTENT = {"relu4_2": 22}


def gram(f):
    b, c, h, w = f.shape
    f = f.view(b * c, h * w)
    return f @ f.t() / (c * h * w)


def style_cases(out):
    feats = torchvision.models.vgg19(weights=None).features[:30].to(DEV).eval()
    for m in feats.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    for p in feats.parameters():
        p.requires_grad_(False)

    def features(img):
        taps = {}
        x = img
        for i, layer in enumerate(feats):
            x = layer(x)
            for name, idx in list(STYLE.items()) + list(CONTENT.items()):
                if idx == i:
                    taps[name] = x
        return taps

    for size in (256, 512, 1024):
        with torch.no_grad():
            ref = features(torch.randn(1, 3, size, size, device=DEV))
            targets = {k: gram(v) for k, v in ref.items() if k in STYLE}
            targets.update({k: ref[k].clone() for k in CONTENT})
            del ref
        for opt_name in ("adam", "lbfgs5", "lbfgs100"):
            img = torch.randn(1, 3, size, size, device=DEV, requires_grad=True)
            if opt_name == "adam":
                opt = torch.optim.Adam([img], lr=1e-2)
                iters = 3
            else:
                hist = int(opt_name[5:])
                opt = torch.optim.LBFGS([img], lr=1, max_iter=hist + 2, history_size=hist)
                iters = 1

            def closure():
                opt.zero_grad(set_to_none=True)
                taps = features(img)
                loss = sum(((gram(taps[k]) - targets[k]) ** 2).sum() for k in STYLE)
                loss = loss + sum(((taps[k] - targets[k]) ** 2).sum() for k in CONTENT)
                loss.backward()
                return loss

            def run():
                for _ in range(iters):
                    opt.step(closure)

            closure()  # warm-up
            img.grad = None
            t = time.time()
            peak = window(run)
            out["cases"]["vgg19_style/%s/b1/%d" % (opt_name, size)] = {
                "peak_bytes": peak, "image_bytes": 4 * 3 * size * size, "seconds": round(time.time() - t, 2)}
            del opt, img
            torch.cuda.empty_cache()


def main():
    torch.backends.cudnn.benchmark = False
    out = {"meta": {"torch": torch.__version__, "device": torch.cuda.get_device_name(0),
                    "cudnn": torch.backends.cudnn.version(), "units": "bytes",
                    "method": "torch.cuda.max_memory_allocated() - memory_allocated() before the window"},
           "cases": {}}
    torch.zeros(1, device=DEV)
    classifier_cases(out)
    style_cases(out)
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
    for k, v in out["cases"].items():
        print("%-40s %10.1f MiB" % (k, v["peak_bytes"] / 2**20))


if __name__ == "__main__":
    main()
