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
across (``--init minicnn``, the default: only the engine and the dropout masks differ),
or PyTorch's own from ``torch.manual_seed(seed)`` (``--init torch``).

Writes OUT/torch_<experiment>.json: per seed and run the validation (evaluation-set)
accuracy per epoch, the best epoch, the test accuracy and loss, and wall seconds.
PyTorch is a benchmark oracle only; minicnn never imports it.
"""

from __future__ import annotations

import argparse
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


def train_run(args, run, splits, init: str) -> dict:
    """One run as the experiment trains it (Trainer's rules: best = strictly better evaluation
    accuracy; early stopping after ``patience`` epochs without one)."""
    import torch
    import torch.nn.functional as F

    import minicnn as mc
    from benchmarks.torch_models import copy_weights
    from experiments import runs
    from minicnn import data

    started = time.perf_counter()
    torch.manual_seed(args.seed)
    net = twin(run)
    if init == "minicnn":
        mc.manual_seed(args.seed)  # the experiment's initial weights (runs.train_run does the same)
        copy_weights(run.build(), net)
    opt = optimizer(net, run.hparams)
    train_loader, eval_loader = runs.loaders(args, run, splits, backend="numpy")
    test_loader = data.DataLoader(splits.test, args.eval_batch_size, transform=run.eval_tf, backend="numpy")
    lrs = runs.lr_per_step(run.hparams, args.epochs * len(train_loader))
    rec = {"run": run.name, "seed": args.seed, "eval_split": splits.eval_name, "eval_accuracy": [],
           "test_accuracy_per_epoch": [], "epoch_seconds": []}
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
        acc = evaluate(net, eval_loader)["accuracy"]
        rec["eval_accuracy"].append(acc)
        if run.test_each_epoch and splits.val is not None:
            rec["test_accuracy_per_epoch"].append(evaluate(net, test_loader)["accuracy"])
        if best is None or acc > best["accuracy"]:
            best, best_state = {"epoch": epoch + 1, "accuracy": acc}, copy.deepcopy(net.state_dict())
        if run.patience and epoch + 1 - best["epoch"] >= run.patience:
            break
    if run.test_weights == "best" and best_state is not None:
        net.load_state_dict(best_state)
    test = evaluate(net, test_loader)
    rec.update({"best": best, "tested_weights": run.test_weights, "test_accuracy": test["accuracy"],
                "test_loss": test["loss"], "reference": run.reference, "wall_s": time.perf_counter() - started})
    return rec


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
    ap.add_argument("--json-out", default=os.environ.get("OUT", "benchmarks/results"), metavar="DIR",
                    help="where torch_<experiment>.json goes")
    a, rest = ap.parse_known_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    module = importlib.import_module(f"experiments.{a.experiment}")
    results = []
    for seed in a.seeds:
        args = module.build_parser().parse_args([*rest, "--seed", str(seed)])
        splits, todo = module.prepare(args)[:2]
        for run in todo:
            r = {"experiment": a.experiment, **train_run(args, run, splits, a.init), "init": a.init,
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
