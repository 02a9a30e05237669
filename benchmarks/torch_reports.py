"""PyTorch twins of the report experiments: same networks, same data, same split, same batches.

    python -m benchmarks.torch_reports --experiment mnist --seeds 0 1 2 --data-dir ../shared/data/mnist-5k
    python -m benchmarks.torch_reports --experiment threeblock --variants base tuned --epochs 30
    python -m benchmarks.torch_reports --experiment dropout_study --rates 0.5 --tuned --threads 16

Every flag this module does not know is the experiment's own (``--epochs``, ``--subset``,
``--data-dir``, ``--val-size``, ``--rates`` ...; ``--seed`` comes from ``--seeds``): the
experiment's parser reads them and its ``prepare(args)`` gives the split and the runs, so
each run here has the experiment's model (its PyTorch twin from
``benchmarks.torch_models.TORCH_MODELS``), optimiser settings, lr schedule, transforms,
early stopping and tested weights, and trains on the mini-batches minicnn's
``DataLoader`` yields for the seed. Initial weights: minicnn's for the seed, copied
across (``--init minicnn``, the default), or PyTorch's own from ``torch.manual_seed(seed)``
(``--init torch``). Dropout masks: minicnn's for the seed (``--masks minicnn``, the
default with ``--init minicnn``: the twin draws from minicnn's generator in the order
minicnn's run does, so it drops the same units and only the engine differs), or
PyTorch's own (``--masks torch``; the default with ``--init torch``).

Writes OUT/torch_<experiment>.json: per seed and run the validation (evaluation-set)
accuracy per epoch, the best epoch, the test accuracy and loss, and wall seconds.
PyTorch is a benchmark oracle only; minicnn never imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import os
import time
from pathlib import Path

import numpy as np

from minicnn.atomic import write_text_atomic

EXPERIMENTS = ("mnist", "cifar_small", "threeblock", "dropout_study")


def twin(run):
    """The PyTorch twin of ``run``'s network: a ``TORCH_MODELS`` key, or a class of ``benchmarks.torch_models``."""
    from benchmarks import torch_models

    factory = torch_models.TORCH_MODELS.get(run.torch_model) or getattr(torch_models, run.torch_model)
    return factory(**run.torch_kwargs)


def optimizer(net, hp: dict):
    import torch

    if hp["optimizer"] == "adam":
        return torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp.get("weight_decay", 0.0))
    return torch.optim.SGD(net.parameters(), lr=hp["lr"], momentum=hp.get("momentum", 0.0),
                           weight_decay=hp.get("weight_decay", 0.0))


def evaluate(net, loader) -> dict:
    """Mean cross-entropy and accuracy over one pass of ``loader`` (eval mode)."""
    import torch
    import torch.nn.functional as F

    net.eval()
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader.iter_epoch(0):
            logits = net(torch.from_numpy(x))
            y = torch.from_numpy(y)
            loss += float(F.cross_entropy(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    net.train()
    return {"loss": loss / n, "accuracy": correct / n}


def train_run(args, run, splits, init: str, masks: str) -> dict:
    """One run as the experiment trains it (Trainer's rules: best = strictly better evaluation
    accuracy; early stopping after ``patience`` epochs without one). ``masks="minicnn"``: the
    dropout masks come from minicnn's generator, which goes through the same draws as in
    ``experiments.runs.train_run`` (seed, weights, the loaders' seeds), so they are its masks."""
    import torch

    import minicnn as mc
    from benchmarks.torch_models import copy_weights, minicnn_masks
    from experiments import runs
    from minicnn import data

    started = time.perf_counter()
    torch.manual_seed(args.seed)
    net = twin(run)
    if init == "minicnn" or masks == "minicnn":
        mc.manual_seed(args.seed)  # runs.train_run does the same, then builds the model from it
        model = run.build()
        if init == "minicnn":
            copy_weights(model, net)
    opt = optimizer(net, run.hparams)
    train_loader, eval_loader = runs.loaders(args, run, splits, backend="numpy")

    def test_loader():  # made when runs.train_run makes it, so that it draws its seed at the same point
        return data.DataLoader(splits.test, args.eval_batch_size, transform=run.eval_tf, backend="numpy")

    per_epoch_test = test_loader() if run.test_each_epoch and splits.val is not None else None
    lrs = runs.lr_per_step(run.hparams, args.epochs * len(train_loader))
    rec = {"run": run.name, "seed": args.seed, "eval_split": splits.eval_name, "masks": masks,
           "eval_accuracy": [], "eval_loss": [], "test_accuracy_per_epoch": [], "epoch_seconds": []}
    with minicnn_masks() if masks == "minicnn" else contextlib.nullcontext():
        best, best_state = _train_epochs(args, run, net, opt, train_loader, eval_loader, per_epoch_test, lrs, rec)
    if run.test_weights == "best" and best_state is not None:
        net.load_state_dict(best_state)
    test = evaluate(net, per_epoch_test if per_epoch_test is not None else test_loader())
    rec.update({"best": best, "tested_weights": run.test_weights, "test_accuracy": test["accuracy"],
                "test_loss": test["loss"], "reference": run.reference, "wall_s": time.perf_counter() - started})
    return rec


def _train_epochs(args, run, net, opt, train_loader, eval_loader, test_loader, lrs, rec):
    """The epochs of :func:`train_run`; appends to ``rec``'s per-epoch lists and returns
    (best epoch and accuracy, the best epoch's state_dict)."""
    import torch
    import torch.nn.functional as F

    best, best_state, step = None, None, 0
    net.train()
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        for x, y in train_loader.iter_epoch(epoch):
            if lrs is not None:
                for g in opt.param_groups:
                    g["lr"] = lrs[step]
            opt.zero_grad()
            F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            opt.step()
            step += 1
        rec["epoch_seconds"].append(time.perf_counter() - t0)
        ev = evaluate(net, eval_loader)
        acc = ev["accuracy"]
        rec["eval_accuracy"].append(acc)
        rec["eval_loss"].append(ev["loss"])
        if test_loader is not None:
            rec["test_accuracy_per_epoch"].append(evaluate(net, test_loader)["accuracy"])
        if best is None or acc > best["accuracy"]:
            best, best_state = {"epoch": epoch + 1, "accuracy": acc}, copy.deepcopy(net.state_dict())
        if run.patience and epoch + 1 - best["epoch"] >= run.patience:
            break
    return best, best_state


def match_settings(args) -> dict:
    """The experiment's flags that ``experiments.report`` compares with a run's before taking this
    result as its twin (``experiments.report.sources.MATCH_SETTINGS``), as the run records them."""
    from experiments.report.sources import MATCH_SETTINGS

    return {k: getattr(args, k) for k in MATCH_SETTINGS if hasattr(args, k)}


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch twins of the report experiments (other flags: the "
                                             "experiment's own, e.g. --epochs, --subset, --data-dir)")
    ap.add_argument("--experiment", choices=EXPERIMENTS, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--init", choices=("minicnn", "torch"), default="minicnn",
                    help="initial weights: minicnn's for the seed, copied across, or torch.manual_seed(seed)'s")
    ap.add_argument("--masks", choices=("minicnn", "torch"), default=None,
                    help="dropout masks: minicnn's for the seed (the same units dropped) or PyTorch's own "
                         "(default: minicnn's with --init minicnn, PyTorch's with --init torch)")
    ap.add_argument("--json-out", default=os.environ.get("OUT", "benchmarks/results"), metavar="DIR",
                    help="where torch_<experiment>.json goes")
    a, rest = ap.parse_known_args(argv)
    masks = a.masks or a.init
    import torch

    torch.set_num_threads(a.threads)
    module = importlib.import_module(f"experiments.{a.experiment}")
    results = []
    for seed in a.seeds:
        args = module.build_parser().parse_args([*rest, "--seed", str(seed)])
        splits, todo = module.prepare(args)[:2]
        for run in todo:
            r = {"experiment": a.experiment, **train_run(args, run, splits, a.init, masks), "init": a.init,
                 "torch": torch.__version__, "threads": a.threads, "settings": match_settings(args)}
            print(json.dumps({k: v for k, v in r.items() if k != "epoch_seconds"}))
            results.append(r)
    for name in dict.fromkeys(r["run"] for r in results):
        accs = [r["test_accuracy"] for r in results if r["run"] == name]
        print(f"{a.experiment}/{name}: PyTorch test accuracy mean {100 * np.mean(accs):.2f} % over seeds "
              f"{a.seeds}: " + ", ".join(f"{100 * x:.2f}" for x in accs))
    path = Path(a.json_out) / f"torch_{a.experiment}.json"
    write_text_atomic(path, json.dumps(results, indent=2, allow_nan=False) + "\n")
    print(f"written: {path}")
    return results


if __name__ == "__main__":
    main()
