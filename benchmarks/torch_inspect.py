"""``minicnn.inspect`` side by side with PyTorch autograd: saliency, guided backprop, Grad-CAM.

    python -m benchmarks.torch_inspect [--models tutorial deconv net2 mnist] [--backends numpy numba]
        [--n-images 4] [--seed 0]

For each seed net with random weights in float64, the same weights go into an
equivalent ``torch.nn.Sequential`` (same layer names, so the state_dict keys
match: ``{k: torch.from_numpy(v) for k, v in model.state_dict().items()}``;
DeconvNet's decoder weights are left out, it is not on the classifier path).
PyTorch's maps come from autograd alone:

* saliency: ``torch.autograd.grad(score, x)``;
* guided backprop: a backward hook on every ``nn.ReLU`` clamps its input
  gradient (already masked by the forward pass) to >= 0;
* Grad-CAM: the gradient of the score with respect to the cam layer's output,
  its spatial mean weighting the channels, ReLU; upsampled with
  ``F.interpolate(mode="bilinear", align_corners=False)``.

Prints the largest absolute difference of each map, and that relative to the
map's largest value; exits with status 1 when either is 1e-5 or more (the
target of issue 16). Needs PyTorch.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np

import minicnn as mc
from minicnn import inspect, nn
from minicnn.models import MODELS

TOLERANCE = 1e-5
NETS = ("tutorial", "deconv", "net2", "mnist")  # the seed nets: chains of layers with PyTorch twins


def torch_twin(model):
    """A torch ``nn.Sequential`` of the classifier path of ``model``, same names, weights copied."""
    import torch
    from torch import nn as tnn

    def twin(m):
        if isinstance(m, nn.Conv2d):
            return tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                              bias=m.bias is not None)
        if isinstance(m, nn.Linear):
            return tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        if isinstance(m, nn.MaxPool2d):
            return tnn.MaxPool2d(m.kernel_size, m.stride, m.padding)
        if isinstance(m, nn.Flatten):
            return tnn.Flatten(m.start_dim, m.end_dim)
        if isinstance(m, nn.ReLU):
            return tnn.ReLU()
        if isinstance(m, (nn.Dropout, nn.Dropout2d)):
            return (tnn.Dropout2d if isinstance(m, nn.Dropout2d) else tnn.Dropout)(m.p)
        raise TypeError(f"torch_inspect: no PyTorch twin for {type(m).__name__}")

    net = tnn.Sequential(OrderedDict((name, twin(m)) for name, m in inspect.layers(model))).double().eval()
    wanted = net.state_dict().keys()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items() if k in wanted})
    return net


def torch_maps(net, x: np.ndarray, target: np.ndarray, cam_layer: str) -> dict:
    """Saliency, guided backprop, Grad-CAM (raw and upsampled) by PyTorch autograd."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(target).reshape(-1, 1)

    def input_grad():
        xt = torch.from_numpy(x).requires_grad_(True)
        return torch.autograd.grad(net(xt).gather(1, t).sum(), xt)[0].numpy()

    out = {"saliency": input_grad()}
    hooks = [m.register_full_backward_hook(lambda mod, gin, gout: (gin[0].clamp(min=0),))
             for m in net if isinstance(m, torch.nn.ReLU)]
    try:
        out["guided"] = input_grad()
    finally:
        for h in hooks:
            h.remove()
    names = [n for n, _ in net.named_children()]
    k = names.index(cam_layer) + 1
    a = net[:k](torch.from_numpy(x))
    g = torch.autograd.grad(net[k:](a).gather(1, t).sum(), a)[0]
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))
    out["gradcam"] = cam.detach().numpy()
    out["gradcam_upsampled"] = F.interpolate(cam[:, None], size=x.shape[2:], mode="bilinear",
                                             align_corners=False)[:, 0].detach().numpy()
    return out


def compare(net_name: str = "tutorial", backend: str = "numpy", n_images: int = 4, seed: int = 0) -> dict:
    """Per map, (largest |minicnn - PyTorch|, that divided by the largest |PyTorch| value), for a
    random float64 ``net_name`` on ``backend``."""
    prev = mc.backend_name()
    mc.set_backend(backend)
    try:
        mc.manual_seed(seed)
        model = MODELS[net_name]().double()
        channels, size = (1, 28) if net_name == "mnist" else (3, 32)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n_images, channels, size, size))
        target = rng.integers(0, 10, size=n_images)
        layer = inspect.default_cam_layer(model)
        theirs = torch_maps(torch_twin(model), x, target, layer)
        xm = mc.asarray(x)
        cam = inspect.grad_cam(model, xm, target, layer)
        ours = {"saliency": inspect.saliency(model, xm, target), "guided": inspect.guided_backprop(model, xm, target),
                "gradcam": cam, "gradcam_upsampled": inspect.upsample(cam, x.shape[2:])}
        diff = {k: float(np.abs(mc.to_numpy(ours[k]) - theirs[k]).max()) for k in theirs}
        return {k: (d, d / max(float(np.abs(theirs[k]).max()), 1e-300)) for k, d in diff.items()}
    finally:
        mc.set_backend(prev)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.torch_inspect", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", choices=NETS, default=list(NETS))
    p.add_argument("--backends", nargs="+", choices=mc.available_backends(), default=mc.available_backends())
    p.add_argument("--n-images", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    worst = 0.0
    print(f"max |minicnn - PyTorch autograd| (float64, {args.n_images} images, random weights; target < {TOLERANCE:g})")
    print("each cell: absolute difference / relative to the largest PyTorch value")
    maps = ("saliency", "guided", "gradcam", "gradcam_upsampled")
    print(f"{'net':9s} {'backend':8s}" + "".join(f"{k:>20s}" for k in maps))
    for net in args.models:
        for be in args.backends:
            d = compare(net, be, args.n_images, args.seed)
            worst = max(worst, *(max(v) for v in d.values()))
            print(f"{net:9s} {be:8s}" + "".join(f"{d[k][0]:11.1e} /{d[k][1]:8.1e}" for k in maps))
    print("all within tolerance" if worst < TOLERANCE else f"FAILED: {worst:.3e} >= {TOLERANCE:g}")
    return 0 if worst < TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
