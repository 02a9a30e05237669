"""dropout_study: report D -- how the dropout rate changes a small CNN on CIFAR-10.

``DropoutStudyNet(p)`` (two blocks of two 3x3 convs, 32 then 64 channels, max pool and
Dropout(p) after each block, fc 4096->512 -> Dropout(p) -> 10; ReLU), SGD(lr 0.001,
momentum 0.9), batch 64 (report D does not give its batch size), 20 epochs, a random
45,000/5,000 train/validation split (``--val-size``). Inputs are normalised with the
per-channel mean and std of these 45,000 training images themselves, as the report did;
the normalised training set's mean and std (about 0 and 1) are printed and saved
(``normalisation.json``). One run per rate (``--rates``, default 0 0.2 0.5 0.8; the
report: 70.4 / 70.7 / 74.0 / 66.7 % test accuracy), each with its training and
validation loss and accuracy per epoch, its best validation epoch and its test
accuracy (the last epoch's weights; ``--test-weights best`` for the best epoch's).
``--tuned`` adds the report's tuned run: lr 0.01, momentum 0.85, dropout 0.55, GELU
(the report: 80.15 %).

Besides the figures of every report run (experiments/figures.py), each run draws its
softmax table twice: ``softmax_table.png`` with the normalised inputs it was trained on and
``softmax_table_raw.png`` with raw inputs (pixels scaled to [0, 1], not normalised), to
show what forgetting the normalisation does. Writes OUT/dropout_study/<run>/,
OUT/dropout_study/results.json, normalisation.json, comparison.md and comparison.png.

    python -m experiments.dropout_study --backend numba
    python -m experiments.dropout_study --backend numba --rates 0.5 --tuned
"""

from __future__ import annotations

import numpy as np

from minicnn import data

from . import common, figures, runs

TASK = "dropout_study"
RATES = (0.0, 0.2, 0.5, 0.8)
REFERENCE = {0.0: 0.704, 0.2: 0.707, 0.5: 0.740, 0.8: 0.667, "tuned": 0.8015}  # report D's test accuracies
#: Report D's tuned run.
TUNED = {"lr": 0.01, "momentum": 0.85, "dropout": 0.55, "activation": "gelu"}
NOTE = "report D's test accuracy for this dropout rate (its batch size is not given)"


def build_parser():
    p = common.report_parser(TASK, "Report D: a small CNN on CIFAR-10 trained with several dropout rates.")
    p.set_defaults(epochs=20, batch_size=64, lr=0.001, momentum=0.9, log_every=200)
    g = p.add_argument_group(TASK)
    g.add_argument("--rates", type=common.probability, nargs="*", default=list(RATES), metavar="P",
                   help="dropout rates, one run each into OUT/dropout_study/p<rate>/ (default: 0 0.2 0.5 0.8; "
                        "none with --tuned: the tuned run alone)")
    g.add_argument("--tuned", action="store_true",
                   help="also train the report's tuned run into OUT/dropout_study/tuned/: lr 0.01, momentum 0.85, "
                        "dropout 0.55, GELU")
    return p


def normalisation(train) -> tuple[np.ndarray, np.ndarray]:
    """The training images' own per-channel mean and std on the [0, 1] scale."""
    return train.stats()


def normalised_stats(ds, tf, chunk: int = 2000) -> tuple[list, list]:
    """Per-channel mean and std of every image of ``ds`` after ``tf`` (chunk by chunk, float64 sums)."""
    s1 = s2 = 0.0
    n = 0
    for start in range(0, len(ds), chunk):
        x = np.asarray(tf(ds.images[start:start + chunk]), dtype=np.float64)
        s1 = s1 + x.sum(axis=(0, 2, 3))
        s2 = s2 + np.square(x).sum(axis=(0, 2, 3))
        n += x.size // x.shape[1]
    mean = s1 / n
    return mean.tolist(), np.sqrt(np.maximum(s2 / n - mean ** 2, 0.0)).tolist()


def make_run(args, name: str, label: str, p: float, activation: str, lr: float, momentum: float, tf, ref):
    net = {"p": p, "activation": activation}  # DropoutStudyNet's arguments, the same for its twin
    return runs.Run(name=name, label=label, model="DropoutStudyNet", model_key="dropout_study", model_kwargs=net,
                    torch_model="dropout_study", torch_kwargs=dict(net),
                    hparams={"optimizer": "sgd", "lr": lr, "momentum": momentum, "weight_decay": 0.0,
                             "dropout": p, "activation": activation},
                    train_tf=tf, eval_tf=tf, reference=ref, test_weights=args.test_weights, note=NOTE)


def prepare(args):
    """``(splits, runs, normalisation facts)`` of the command line (also what the PyTorch twin trains)."""
    train, test = common.load_cifar(args.data_dir, args.subset, args.seed)
    splits = runs.make_splits(args, train, test, "cifar10")
    mean, std = normalisation(splits.train)
    tf = data.Compose([data.ToFloat(), data.Normalize(tuple(mean), tuple(std))])
    todo = [make_run(args, f"p{r:g}", f"dropout {r:g}", r, "relu", args.lr, args.momentum, tf, REFERENCE.get(r))
            for r in dict.fromkeys(args.rates)]
    if args.tuned:
        todo.append(make_run(args, "tuned", f"tuned (dropout {TUNED['dropout']:g}, GELU)", TUNED["dropout"],
                             TUNED["activation"], TUNED["lr"], TUNED["momentum"], tf, REFERENCE["tuned"]))
    facts = {"train_mean": mean.tolist(), "train_std": std.tolist(), "n_images": len(splits.train)}
    return splits, todo, facts


def raw_softmax(model, run, splits, out) -> dict:
    """The softmax table of the same images as raw inputs (ToFloat only: pixels in [0, 1], not normalised)."""
    figures.softmax_figure(model, splits.eval_set, data.ToFloat(), splits.classes, out / "softmax_table_raw.png",
                           f"{run.label}: softmax probabilities of the first {figures.N_SOFTMAX} {splits.eval_name} "
                           f"images\ngiven RAW inputs (pixels in [0, 1], not normalised as in training)")
    return {"softmax_table_raw": "softmax_table_raw.png"}


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.rates and not args.tuned:
        parser.error("nothing to train: give --rates P [P ...], or --tuned")
    with common.run_folder(args, TASK) as out:
        splits, todo, facts = prepare(args)
        facts["normalised_mean"], facts["normalised_std"] = normalised_stats(splits.train, todo[0].eval_tf)
        print(f"normalisation: the {facts['n_images']} training images' own per-channel mean "
              f"{np.round(facts['train_mean'], 4).tolist()} and std {np.round(facts['train_std'], 4).tolist()}; "
              f"after it the training set has mean {np.round(facts['normalised_mean'], 4).tolist()} and std "
              f"{np.round(facts['normalised_std'], 4).tolist()} (expected about 0 and 1)")
        runs.write_if_changed(out / "normalisation.json", runs.json_text(facts))
        return runs.run_all(args, TASK, todo, splits, out, more_figures=raw_softmax,
                            extra={"reference_note": NOTE, "tuned": TUNED, "normalisation": facts})


if __name__ == "__main__":
    main()
