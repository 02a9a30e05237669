"""cifar_small: report C's CIFAR-10 experiment -- the tutorial net with twice the channels, without and with
weight decay.

``SmallCifarNet`` (conv 3->12->24 k5, pool after each, fc 600->120->84->10), the
tutorial's Normalize((0.5,)*3, (0.5,)*3), SGD(lr 0.001, momentum 0.9), batch 32,
35 epochs, trained on all 50,000 training images as the report did (``--val-size 0``:
the per-epoch evaluation is on the test set; ``--val-size 5000`` holds a validation
set out instead). Two runs from the same initial weights and batches:

* ``no_wd`` -- no weight decay;
* ``wd``    -- weight decay 1e-4 (``--weight-decay``), L2 added to the gradient.

The report's mistake, put right here: report C measured these two networks on the
*training* set and called that their accuracy. These runs are measured on the real
CIFAR-10 test set (10,000 images never trained on), so the report gives no number to
compare with (``reference`` is null) and results.json says why.

Writes OUT/cifar_small/<run>/ (results.json, figures: experiments/figures.py),
OUT/cifar_small/results.json, comparison.md and comparison.png.

    python -m experiments.cifar_small --backend numba
    python -m experiments.cifar_small --epochs 1 --subset 0.02 --out /tmp/c    # a quick check
"""

from __future__ import annotations

from . import common, runs

TASK = "cifar_small"
NOTE = ("report C evaluated these networks on the CIFAR-10 training set by mistake (its numbers are training "
        "accuracies); here every test accuracy is on the real test set, so no run has a reference")


def build_parser():
    p = common.report_parser(TASK, "Report C: the tutorial net with twice its channels on CIFAR-10, without and "
                                   "with weight decay, tested on the real test set.", val_size=0)
    p.set_defaults(epochs=35, batch_size=32, lr=0.001, momentum=0.9, log_every=500)
    runs.add_weight_decay_arguments(p)
    return p


def prepare(args):
    """``(splits, runs)`` of the command line (also what the PyTorch twin trains)."""
    train, test = common.load_cifar(args.data_dir, args.subset, args.seed)
    splits = runs.make_splits(args, train, test, "cifar10")
    tf = common.transform()
    return splits, runs.weight_decay_runs(
        args, {"optimizer": "sgd", "lr": args.lr, "momentum": args.momentum}, {}, model="SmallCifarNet",
        model_key="small_cifar", torch_model="small_cifar", train_tf=tf, eval_tf=tf,
        test_weights=args.test_weights, note=NOTE)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    with common.run_folder(args, TASK) as out:
        splits, todo = prepare(args)
        return runs.run_all(args, TASK, todo, splits, out, extra={"reference_note": NOTE})


if __name__ == "__main__":
    main()
