"""visualize: see inside a trained classifier with ``minicnn.inspect`` (issue 16).

    python -m experiments.visualize --checkpoint runs/task1/model.npz --backend numba
    python -m experiments.visualize --checkpoint runs/task2/model.npz --method deconv --layer conv2 --channel 3

Writes titled PNG figures into ``--out`` (default: ``visualize/`` beside the
checkpoint), one method at a time (``--method all`` runs every one):

* ``deconv_<layer>_ch<k>.png`` -- Zeiler & Fergus 2014: the top-9 images of
  the first ``--n-images`` of the split for channel k, each strongest
  activation projected to pixels (3x3) beside its receptive-field patch (3x3);
* ``saliency.png``, ``guided_backprop.png``, ``gradcam.png`` -- for one image
  (``--image-index``) and class (``--class``, default: the predicted one);
* ``occlusion.png`` -- Zeiler & Fergus Fig. 7: a grey square slid over the image;
* ``actmax_<layer>.png``, ``actmax_classes.png`` -- synthetic inputs that
  maximise each channel of conv1 and conv2 (or ``--layer``) and each class.

The model is read from the checkpoint's metadata (task1/task2 write it) or,
failing that, from its weights' names and shapes; ``--model`` must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import data, inspect, viz
from minicnn.backend import AVAILABLE, BackendError
from minicnn.models import MODELS

from .cli import HelpFormatter, nonneg_int, positive_int
from .common import NORM_MEAN, NORM_STD, _missing_data_message, fail

METHODS = ("deconv", "saliency", "guided", "gradcam", "occlusion", "actmax")
CLASS_NAMES = {cls.__name__: key for key, cls in MODELS.items()}  # "TutorialNet" -> "tutorial"


def build_parser():
    p = argparse.ArgumentParser(prog=f"python -m {__package__}.visualize", formatter_class=HelpFormatter,
                                description="Figures of what a trained minicnn classifier responds to.")
    p.add_argument("--checkpoint", type=Path, required=True, metavar="FILE",
                   help="model.npz (task1/task2), best.npz or last.npz")
    p.add_argument("--model", choices=sorted(MODELS), help="the network (default: read from the checkpoint)")
    p.add_argument("--method", nargs="+", choices=("all", *METHODS), default=["all"], metavar="METHOD",
                   help=f"what to draw: all (the default) or any of {', '.join(METHODS)}")
    p.add_argument("--layer", help="layer for deconv and actmax (default: the last conv layer for deconv, conv1 "
                                   "and conv2 for actmax) or for gradcam (default: the last conv's ReLU)")
    p.add_argument("--channel", type=nonneg_int, help="one channel of --layer (default: every channel)")
    p.add_argument("--image-index", type=nonneg_int, default=0, metavar="I",
                   help="the image of the split for saliency, guided, gradcam and occlusion")
    p.add_argument("--class", dest="cls", metavar="C", help="class index or name (default: the predicted class)")
    p.add_argument("--n-images", type=positive_int, default=1000, metavar="N",
                   help="search the first N images of the split for deconv's top 9")
    p.add_argument("--split", choices=("test", "train"), default="test", help="where the images come from")
    data.add_data_dir_argument(p)
    p.add_argument("--backend", choices=AVAILABLE, default=os.environ.get("MINICNN_BACKEND") or "numpy",
                   help="array backend (default: $MINICNN_BACKEND if set, else numpy)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: CHECKPOINT_FOLDER/visualize)")
    p.add_argument("--batch-size", type=positive_int, default=500, metavar="N", help="images per forward pass")
    p.add_argument("--occlusion-size", type=nonneg_int, default=8, metavar="PX", help="side of the grey square")
    p.add_argument("--occlusion-stride", type=positive_int, default=2, metavar="PX", help="its step")
    p.add_argument("--occlusion-fill", type=float, default=0.0, metavar="V",
                   help="its value on the network's input scale (0: mid-grey after Normalize(0.5, 0.5))")
    p.add_argument("--steps", type=nonneg_int, default=200, help="activation maximisation: gradient steps")
    p.add_argument("--seed", type=nonneg_int, default=0, help="activation maximisation: start and jitter")
    return p


# --- checkpoint, model and data ------------------------------------------------------

def read_meta(ck: dict) -> dict:
    """The facts a checkpoint carries: save_model's ``meta``, a trainer checkpoint's ``config``
    (and best.npz's ``meta.config``), merged."""
    meta = {}
    for key in ("config", "meta"):
        v = ck.get(key)
        try:
            v = json.loads(v) if isinstance(v, str) else v
        except ValueError:
            continue
        if isinstance(v, dict):
            meta.update(v.get("config") if isinstance(v.get("config"), dict) else {})
            meta.update(v)
    return meta


def _fits(model, sd: dict) -> bool:
    own = model.state_dict()
    return own.keys() == sd.keys() and all(tuple(own[k].shape) == tuple(np.shape(sd[k])) for k in own)


def load_model(path: Path, model_flag: str | None):
    """(model, key, meta) from a checkpoint; every problem ends the command with a clear error."""
    if not path.is_file():
        fail(f"--checkpoint {path}: no such file. Train a model first, e.g. python -m experiments.task1 "
             f"--backend numba (writes runs/task1/model.npz), or python -m experiments.task2 (runs/task2/model.npz)")
    try:
        ck = mc.load(path)
    except mc.CheckpointError as e:
        fail(f"--checkpoint {path}: {e}")
    sd = ck["model"] if isinstance(ck.get("model"), dict) else ck
    meta = read_meta(ck)
    # a report run's checkpoint names its MODELS key and arguments; the tasks' name the class
    named = meta.get("model_key") if meta.get("model_key") in MODELS else CLASS_NAMES.get(str(meta.get("model")))
    if named and model_flag and named != model_flag:
        fail(f"--model {model_flag} does not match the checkpoint: {path} holds a {meta['model']} "
             f"(--model {named}); drop --model or pass --model {named}")
    key = model_flag or named
    if key is None:  # no metadata: the model whose weights have exactly these names and shapes
        fitting = [k for k, cls in MODELS.items() if _fits(cls(), sd)]
        if not fitting:
            fail(f"--checkpoint {path}: its weights fit none of the models ({', '.join(MODELS)}); "
                 f"is it a minicnn classifier checkpoint?")
        key = fitting[0]
    kwargs = meta.get("model_kwargs") if key == named and isinstance(meta.get("model_kwargs"), dict) else {}
    try:
        model = MODELS[key](**kwargs)
    except (TypeError, ValueError) as e:
        fail(f"--checkpoint {path}: its model_kwargs {kwargs} do not build --model {key}: {e}")
    try:
        model.load_state_dict(sd)
    except ValueError as e:
        fail(f"--checkpoint {path} does not fit --model {key}: {e}")
    return model, key, meta


DATASETS = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST, "cifar10": data.CIFAR10}


def load_split(key: str, args, meta: dict | None = None):
    """The dataset split the model was trained for: the checkpoint's ``dataset`` (report runs
    record it), else MNIST for ``mnist`` and CIFAR-10 for the rest."""
    train = args.split == "train"
    name = (meta or {}).get("dataset")
    name = name if name in DATASETS else "mnist" if key == "mnist" else "cifar10"
    try:
        return DATASETS[name](args.data_dir, train=train, download=True)
    except data.DatasetNotFoundError as e:
        fail(_missing_data_message(e, args.data_dir) if name == "cifar10" else str(e))
    except data.DatasetError as e:
        fail(f"{e}\nReplace the damaged file, or pass --data-dir for another copy.")


def norm_stats(key: str, meta: dict):
    """Normalize(mean, std) as stored by the task, else the tasks' (0.5, 0.5) / MNIST's."""
    if "normalize_mean" in meta and "normalize_std" in meta:
        return tuple(meta["normalize_mean"]), tuple(meta["normalize_std"])
    return ((data.MNIST_MEAN, data.MNIST_STD) if key == "mnist" else (NORM_MEAN, NORM_STD))


def parse_class(text, classes) -> int | None:
    if text is None:
        return None
    if text in classes:
        return classes.index(text)
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    fail(f"--class {text!r}: expected 0..{len(classes) - 1} or one of {', '.join(classes)}")


def check_layer(model, layer):
    try:
        inspect.layer_index(model, layer)
    except ValueError as e:
        fail(f"--layer: {e}")
    return layer


# --- the methods: each draws its figures and returns their paths -----------------------

class Run:
    """What every method needs: the model, the data, how to prepare and show images."""

    def __init__(self, args, model, key, meta, ds):
        self.args, self.model, self.key, self.ds = args, model, key, ds
        self.title = type(model).__name__
        self.classes = list(ds.classes)
        self.mean, self.std = norm_stats(key, meta)
        self.tf = data.Compose([data.ToFloat(), data.Normalize(self.mean, self.std)])
        self.n = min(args.n_images, len(ds))
        i = args.image_index
        if i >= len(ds):
            fail(f"--image-index {i} is outside the {args.split} split (0..{len(ds) - 1})")
        self.x = self.prepare(ds.images[i:i + 1])
        self.label = int(ds.labels[i])
        self.probs = mc.to_numpy(inspect.probabilities(model, self.x))[0]
        self.pred = int(self.probs.argmax())
        self.cls = parse_class(args.cls, self.classes)
        self.cls = self.pred if self.cls is None else self.cls
        self.image = self.show(self.x)[0]
        self.about = (f"{args.split} image #{i}, true: {self.classes[self.label]}, predicted: "
                      f"{self.classes[self.pred]} (p={self.probs[self.pred]:.2f})")

    def prepare(self, images):
        return mc.asarray(self.tf(np.asarray(images)))

    def show(self, x):
        return viz.to_display(x, self.mean, self.std)

    def out(self, name: str) -> Path:
        return self.args.out / name


def run_deconv(r: Run) -> list:
    model, args = r.model, r.args
    layer = check_layer(model, args.layer) if args.layer else inspect.conv_layers(model)[-1]
    images = r.ds.images[:r.n]
    top = inspect.top_activations(model, images, layer, 9, args.batch_size, r.prepare)
    n_ch = len(top["values"])
    if args.channel is not None and args.channel >= n_ch:
        fail(f"--channel {args.channel}: layer {layer} has channels 0..{n_ch - 1}")
    paths = []
    for ch in ([args.channel] if args.channel is not None else range(n_ch)):
        idx, where = top["indices"][ch], top["where"][ch]
        x = r.prepare(images[idx])
        proj = mc.to_numpy(inspect.deconv_projection(model, x, layer, ch, where)).transpose(0, 2, 3, 1)
        shown = r.show(x)
        projs, patches = [], []
        for k in range(len(idx)):
            pos = divmod(int(where[k]), top["map_shape"][1]) if len(top["map_shape"]) == 2 else (0, 0)
            y0, y1, x0, x1 = inspect.receptive_field(model, layer, pos, shown.shape[1:3])
            projs.append(viz.stretch(proj[k, y0:y1, x0:x1]))  # contrast-normalised, as in the paper
            patches.append(shown[k, y0:y1, x0:x1])
        captions = [f"#{i} {r.classes[r.ds.labels[i]]}\nact {v:.2f}" for i, v in zip(idx, top["values"][ch])]
        paths.append(viz.deconv_projections(
            projs, patches, captions, r.out(f"deconv_{layer}_ch{ch}.png"),
            f"{r.title} {layer}, channel {ch}: top {len(idx)} of {r.n} {args.split} images"))
    return paths


def run_saliency(r: Run) -> list:
    g = mc.to_numpy(inspect.saliency(r.model, r.x, r.cls))[0]
    m = np.abs(g).max(axis=0)
    return [viz.attribution(r.image, [("|d score / d x|, max over RGB", m, "heat"), ("over the image", m, "overlay")],
                            r.out("saliency.png"),
                            f"{r.title} gradient saliency for class '{r.classes[r.cls]}'\n({r.about})")]


def run_guided(r: Run) -> list:
    g = mc.to_numpy(inspect.guided_backprop(r.model, r.x, r.cls))[0].transpose(1, 2, 0)
    return [viz.attribution(r.image, [("guided backprop (0 = grey)", viz.signed_display(g), "image"),
                                      ("|guided backprop|, max over RGB", np.abs(g).max(axis=-1), "heat")],
                            r.out("guided_backprop.png"),
                            f"{r.title} guided backpropagation for class '{r.classes[r.cls]}'\n({r.about})")]


def run_gradcam(r: Run) -> list:
    layer = check_layer(r.model, r.args.layer) if r.args.layer else inspect.default_cam_layer(r.model)
    cam = inspect.grad_cam(r.model, r.x, r.cls, layer)
    big = mc.to_numpy(inspect.upsample(cam, r.x.shape[2:]))[0]
    guided = mc.to_numpy(inspect.guided_backprop(r.model, r.x, r.cls))[0].transpose(1, 2, 0) * big[..., None]
    return [viz.attribution(r.image, [(f"Grad-CAM on {layer} {tuple(cam.shape[1:])}", mc.to_numpy(cam)[0], "heat"),
                                      ("upsampled, over the image", big, "overlay"),
                                      ("guided Grad-CAM (0 = grey)", viz.signed_display(guided), "image")],
                            r.out("gradcam.png"), f"{r.title} Grad-CAM for class '{r.classes[r.cls]}'\n({r.about})")]


def run_occlusion(r: Run) -> list:
    a = r.args
    p = mc.to_numpy(inspect.occlusion(r.model, r.x[0], a.occlusion_size, a.occlusion_stride, a.occlusion_fill,
                                      a.batch_size))
    t = r.classes[r.label]
    return [viz.occlusion_maps(r.image, p[..., r.label], p.argmax(-1), p.max(-1), r.classes, t,
                               a.occlusion_size, a.occlusion_stride, r.out("occlusion.png"),
                               f"{r.title} occlusion sensitivity ({r.about}; unoccluded p({t}) = "
                               f"{r.probs[r.label]:.2f})")]


def run_actmax(r: Run) -> list:
    model, a = r.model, r.args
    shape = tuple(r.x.shape[1:])
    m, s = np.asarray(r.mean), np.asarray(r.std)
    clip = (float(np.min(-m / s)), float(np.max((1 - m) / s)))  # the range of real, normalised pixels
    common = dict(steps=a.steps, lr=0.05, l2=1e-3, jitter=2, blur_every=4, blur_sigma=0.5, clip=clip, seed=a.seed)
    paths = []
    for layer in ([check_layer(model, a.layer)] if a.layer else inspect.conv_layers(model)[:2]):
        n_ch = inspect.forward_to(model, r.x, layer).shape[1]
        if a.channel is not None and a.channel >= n_ch:
            fail(f"--channel {a.channel}: layer {layer} has channels 0..{n_ch - 1}")
        chans = [a.channel] if a.channel is not None else list(range(n_ch))
        x, hist = inspect.activation_maximisation(model, shape, chans, layer, **common)
        imgs = [viz.stretch(im) for im in mc.to_numpy(x).transpose(0, 2, 3, 1)]
        paths.append(viz.image_grid(np.stack(imgs), [f"ch {c}: {v:.2f}" for c, v in zip(chans, hist[-1])],
                                    r.out(f"actmax_{layer}.png"),
                                    f"{r.title}: inputs maximising each channel of {layer} "
                                    f"(caption: mean activation - L2 term), {a.steps} steps", ncols=8))
    x, hist = inspect.activation_maximisation(model, shape, list(range(len(r.classes))), None, **common)
    imgs = [viz.stretch(im) for im in mc.to_numpy(x).transpose(0, 2, 3, 1)]
    paths.append(viz.image_grid(np.stack(imgs), [f"{c}: {v:.1f}" for c, v in zip(r.classes, hist[-1])],
                                r.out("actmax_classes.png"),
                                f"{r.title}: inputs maximising each class score (caption: score - L2 term)", ncols=5))
    return paths


RUNNERS = {"deconv": run_deconv, "saliency": run_saliency, "guided": run_guided, "gradcam": run_gradcam,
           "occlusion": run_occlusion, "actmax": run_actmax}


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    try:
        mc.set_backend(args.backend)
    except BackendError as e:
        fail(str(e))
    model, key, meta = load_model(args.checkpoint, args.model)
    if args.layer:
        check_layer(model, args.layer)  # before any data is read or folder made
    args.out = args.out or args.checkpoint.parent / "visualize"
    if args.out.exists() and not args.out.is_dir():
        fail(f"--out {args.out} is a file, not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    r = Run(args, model, key, meta, load_split(key, args, meta))
    print(f"[visualize] {r.title} from {args.checkpoint}, backend {args.backend}, writing to {args.out}")
    methods = METHODS if "all" in args.method else tuple(dict.fromkeys(args.method))
    written, times = {}, {}
    for name in methods:
        t0 = time.perf_counter()
        written[name] = [str(p) for p in RUNNERS[name](r)]
        times[name] = time.perf_counter() - t0
        names = [Path(f).name for f in written[name]]
        print(f"[{name}] {len(names)} figure(s) in {times[name]:.1f} s: {', '.join(names[:3])}"
              + (" ..." if len(names) > 3 else ""))
    return {"figures": written, "times_s": times, "model": key}


if __name__ == "__main__":
    main()
