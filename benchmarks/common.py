"""Shared pieces of the benchmarks: the nets and their inputs, one training or
inference step per implementation (minicnn backend or PyTorch), timing, MAC
counts and a description of the machine.

A *runner* owns one model, one batch and (for training) one loss and one
optimiser, and exposes ``run(k)``: k steps followed by a device
synchronisation, so that timing a call to ``run`` times finished work.

Training step (both libraries): forward, loss (cross-entropy; for the deconv
net cross-entropy + MSE(x_hat, x)), zero_grad, backward, SGD step with
momentum 0.9 (lr 1e-3, the CIFAR-10 tutorial's settings); minicnn's loss and
backward are the training objectives of ``minicnn.train``. Inference step:
``model.eval()`` and forward only (PyTorch under ``torch.no_grad()``).

The machine's description and thread settings are in ``benchmarks.machine``,
the fair timing of runners in ``benchmarks.timing``.

Result files are strict JSON (``minicnn.train.write_json``): a number that is
NaN or infinite (a failed or meaningless measurement) is written as ``null``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

from minicnn.train import Classification, ClassificationReconstruction
from minicnn.train import write_json as write_strict_json

REPO = Path(__file__).resolve().parents[1]

#: What ``throughput`` runs by default: the seed nets and ResNet-20.
DEFAULT_NETS = ("tutorial", "deconv", "net2", "mnist", "resnet20")
#: Every net a benchmark accepts (``--nets``): the defaults plus the report experiments' nets.
NETS = (*DEFAULT_NETS, "small_cifar", "report_b_net1", "dropout_study")
NET_TITLES = {
    "tutorial": "CIFAR-10 tutorial net",
    "deconv": "deconv net (classifier + decoder)",
    "net2": "Net2 (conv 32-64-128 k5)",
    "mnist": "MNIST example net",
    "resnet20": "ResNet-20 (He et al., CIFAR-10; BatchNorm, option-A shortcuts)",
    "small_cifar": "report C's CIFAR-10 net (conv 3->12->24 k5)",
    "report_b_net1": "report B's Net1 (conv 32-64-128 k5 + BatchNorm)",
    "dropout_study": "report D's net (2 x conv3x3 pairs 32, 64; dropout 0)",
}
MODES = ("train", "infer")
TORCH_LABELS = {"cpu": "torch-cpu", "cuda": "torch-cuda"}
#: Implementations that run on the GPU (the rest run on the CPU).
GPU_IMPLS = ("cupy", "cupy-graph", "torch-cuda", "torch-cuda-graph")
LR, MOMENTUM = 1e-3, 0.9


# --- paths, arguments and result files --------------------------------------------

def default_out_dir() -> Path:
    """``$OUT`` when set, else ``benchmarks/results/`` (git-ignored)."""
    env = os.environ.get("OUT", "").strip()
    return Path(env) if env else REPO / "benchmarks" / "results"


def split_list(values, cast=str):
    """argparse helper: ``--x a b``, ``--x a,b`` and mixtures -> [cast(a), cast(b)]."""
    out = []
    for v in values or []:
        out.extend(cast(p) for p in str(v).split(",") if p.strip())
    return out


def run_json_child(module: str, args: list[str], impl: str, timeout: float) -> dict:
    """``python -m module *args`` in a fresh process from the repository root; its last
    stdout line that starts with ``{`` as a dict, or ``{"impl": impl, "error": ...}``."""
    import json
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        p = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "error": f"timed out after {timeout} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"impl": impl, "error": f"exit {p.returncode}: {p.stderr.strip()[-800:]}"}
    return json.loads(lines[-1])


def write_json(path: Path, obj) -> Path:
    """``obj`` as strict JSON (see :func:`json_ready`), written atomically."""
    return write_strict_json(path, json_ready(obj))


def json_ready(obj):
    """``obj`` with NumPy scalars and arrays as Python numbers and lists, paths as
    strings, and NaN or infinite floats as None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_ready(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --- nets, inputs and MAC counts -------------------------------------------------

def input_shape(net: str) -> tuple:
    """Per-image input shape: (1, 28, 28) for the MNIST net, (3, 32, 32) for the CIFAR nets."""
    check_net(net)
    return (1, 28, 28) if net == "mnist" else (3, 32, 32)


def check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"unknown net {net!r}; expected one of {list(NETS)}")


def make_batch(net: str, batch_size: int, seed: int = 0):
    """A float32 batch of standard-normal images and int64 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *input_shape(net))).astype(np.float32)
    y = rng.integers(0, 10, batch_size).astype(np.int64)
    return x, y


def count_macs(net: str) -> dict:
    """Multiply-accumulates of one forward pass, per image, counted from the module tree.

    conv: O*OH*OW*C*kh*kw;  conv-transpose: Cin*H*W*Cout*kh*kw;  linear: in*out.
    Spatial sizes come from tracing one batch-1 forward pass (on the numpy
    backend) through wrappers around the Conv2d / ConvTranspose2d / Linear
    modules. Pooling, activations, losses and the optimiser are not counted.
    A training step is counted as 3x the forward MACs (forward, grad-input and
    grad-weight GEMMs; the first layer's grad-input is counted although unused).
    """
    import minicnn as mc
    from minicnn import backend, nn
    from minicnn.models import MODELS

    check_net(net)
    prev = backend.current().name
    mc.set_backend("numpy")
    try:
        model = MODELS[net]()
        model.eval()
        layers = []

        def wrap(name, m):
            orig = m.forward

            def traced(x, *args, **kwargs):
                out = orig(x, *args, **kwargs)
                if isinstance(m, nn.Conv2d):
                    o, c, (kh, kw) = m.out_channels, m.in_channels, m.kernel_size
                    macs = o * out.shape[2] * out.shape[3] * c * kh * kw
                elif isinstance(m, nn.ConvTranspose2d):
                    ci, co, (kh, kw) = m.in_channels, m.out_channels, m.kernel_size
                    macs = ci * x.shape[2] * x.shape[3] * co * kh * kw
                else:
                    macs = math.prod(x.shape[1:-1]) * m.in_features * m.out_features
                layer = {"name": name, "type": type(m).__name__, "in_shape": list(x.shape[1:]),
                         "out_shape": list(out.shape[1:]), "macs": int(macs)}
                if not isinstance(m, nn.Linear):  # the window's geometry (benchmarks.conv_layers_gpu)
                    layer.update(kernel=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding))
                layers.append(layer)
                return out

            m.forward = traced  # instance attribute; Module.__call__ finds it first

        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                wrap(name, m)
        x, _ = make_batch(net, 1)
        model(mc.asarray(x))
    finally:
        mc.set_backend(prev)
    fwd = sum(layer["macs"] for layer in layers)
    return {"forward_per_image": fwd, "train_per_image": 3 * fwd, "layers": layers}


# --- runners -------------------------------------------------------------------

class Runner:
    """One model + batch; ``run(k)`` does k steps and synchronises the device."""

    label = "?"
    kind = "?"
    device = "cpu"

    def activate(self) -> None:
        """Make this runner's library state current (minicnn's global backend)."""

    def step(self) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (GPU runners)."""

    def run(self, k: int) -> None:
        self.activate()
        for _ in range(k):
            self.step()
        self.sync()


class MinicnnRunner(Runner):
    kind = "minicnn"

    def __init__(self, net: str, backend_name: str, batch_size: int, mode: str = "train", seed: int = 0,
                 cuda_graph: bool = False):
        import minicnn as mc
        from minicnn.models import MODELS

        check_net(net)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mc = mc
        self.net, self.mode, self.batch_size = net, mode, batch_size
        self.be = mc.set_backend(backend_name)
        if cuda_graph and not self.be.is_gpu:
            raise ValueError(f"CUDA graphs need a GPU backend, not {self.be.name!r}")
        if cuda_graph and mode != "train":
            raise ValueError("the CUDA-graph runner times training steps only")
        self.label = self.be.name + ("-graph" if cuda_graph else "")
        self.device = "cuda" if self.be.is_gpu else "cpu"
        mc.manual_seed(seed)
        self.model = MODELS[net]().requires_input_grad_(False)  # like a torch input without requires_grad
        x, y = make_batch(net, batch_size, seed)
        self.x, self.y = mc.asarray(x), mc.asarray(y)
        if mode == "train":
            self.model.train()
            # CE, and for the deconv net CE + 1.0 * MSE(x_hat, x), as the training tasks use them
            self.objective = ClassificationReconstruction(1.0) if net == "deconv" else Classification()
            self.ce, self.mse = self.objective.ce, getattr(self.objective, "mse", None)  # timed by layer_profile
            self.opt = mc.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        else:
            self.model.eval()
        self.graph_step = None
        if cuda_graph:
            from minicnn.cuda_graph import GraphedTrainStep

            self.graph_step = GraphedTrainStep(self.model, self.objective)
        self.last = None

    def activate(self):
        self.mc.set_backend(self.be.name)

    def step(self):
        if self.mode == "infer":
            self.last = self.model(self.x)
            return
        if self.graph_step is not None:  # the same forward, zero_grad and backward, replayed; then SGD
            self.last = self.graph_step(self.x, self.y)[0]
            self.opt.step()
            return
        loss, _, _ = self.objective.forward(self.model, self.x, self.y)
        self.opt.zero_grad()
        self.objective.backward(self.model)
        self.opt.step()
        self.last = loss

    def sync(self):
        if self.be.is_gpu:
            self.be.xp.cuda.get_current_stream().synchronize()


class TorchRunner(Runner):
    kind = "torch"

    def __init__(self, net: str, device: str, batch_size: int, mode: str = "train", seed: int = 0,
                 threads: int | None = None, cuda_graph: bool = False):
        import torch
        import torch.nn.functional as F

        from benchmarks.torch_models import TORCH_MODELS

        check_net(net)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if cuda_graph and (device != "cuda" or mode != "train"):
            raise ValueError("the PyTorch CUDA-graph runner times training steps on cuda only")
        self.torch, self.F = torch, F
        if threads:
            torch.set_num_threads(int(threads))
        self.net, self.mode, self.batch_size, self.device = net, mode, batch_size, device
        self.label = TORCH_LABELS[device] + ("-graph" if cuda_graph else "")
        self.cuda_graph, self.graph = cuda_graph, None
        torch.manual_seed(seed)
        self.model = TORCH_MODELS[net]().to(device)
        x, y = make_batch(net, batch_size, seed)
        self.x, self.y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        self.deconv = net == "deconv"
        if mode == "train":
            self.model.train()
            self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        else:
            self.model.eval()
        self.last = None

    def step(self):
        if self.mode == "infer":
            with self.torch.no_grad():
                self.last = self.model(self.x)
            return
        if self.cuda_graph:
            if self.graph is None:
                self._capture()
            self.static_x.copy_(self.x)  # as minicnn's graph copies the batch into its fixed buffers
            self.static_y.copy_(self.y)
            self.graph.replay()
            self.last = self.static_loss
            return
        self.opt.zero_grad(set_to_none=True)
        self.last = self._loss_backward_step(self.x, self.y)

    def _loss_backward_step(self, x, y):
        F = self.F
        out = self.model(x)
        if self.deconv:
            logits, xhat = out
            loss = F.cross_entropy(logits, y) + F.mse_loss(xhat, x)
        else:
            loss = F.cross_entropy(out, y)
        loss.backward()
        self.opt.step()
        return loss

    def _capture(self):
        """The whole training step (forward, loss, backward, ``optimizer.step()``) as one CUDA
        graph, as PyTorch's CUDA-graphs documentation shows ("whole-network capture"): three
        warm-up steps on a side stream, gradients set to None, then the recording."""
        torch = self.torch
        self.static_x, self.static_y = self.x.clone(), self.y.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.opt.zero_grad(set_to_none=True)
                self._loss_backward_step(self.static_x, self.static_y)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.static_loss = self._loss_backward_step(self.static_x, self.static_y)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def make_runner(impl: str, net: str, batch_size: int, mode: str, seed: int = 0, threads: int | None = None):
    """``impl``: a minicnn backend name, ``cupy-graph`` (cupy, training step replayed from a
    CUDA graph, see ``minicnn.cuda_graph``), ``torch-cpu`` / ``torch-cuda``, or
    ``torch-cuda-graph`` (PyTorch's whole training step, optimiser included, as one CUDA graph)."""
    if impl == "torch-cuda-graph":
        return TorchRunner(net, "cuda", batch_size, mode, seed, threads, cuda_graph=True)
    if impl.startswith("torch-"):
        return TorchRunner(net, impl.split("-", 1)[1], batch_size, mode, seed, threads)
    if impl.endswith("-graph"):
        return MinicnnRunner(net, impl[:-len("-graph")], batch_size, mode, seed, cuda_graph=True)
    return MinicnnRunner(net, impl, batch_size, mode, seed)



def fmt_num(v, digits=3) -> str:
    """Compact number for tables: 3 significant digits, no exponent for usual sizes."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if mag >= digits - 1:
        return f"{v:,.0f}"
    return f"{v:.{digits - 1 - mag}f}"
