"""mnist: report C's MNIST experiment -- PyTorch's MNIST example net, without and with weight decay.

``MNISTNet`` (conv 1->10->20 k5, Dropout2d, fc 320->50->10), Adam(lr 0.001), batch 100,
5 epochs, inputs normalised with the dataset's mean and std (MNIST: 0.1307, 0.3081), a
55,000/5,000 train/validation split (``--val-size``; by default 10 % of the training images,
at most 5,000: mnist-5k's 4,000 give 3,600/400), the validation and the test accuracy
measured after every epoch. Two runs from the same initial weights and batches:

* ``no_wd`` -- Adam without weight decay (the report: 96.56 % test accuracy on full MNIST);
* ``wd``    -- Adam with weight decay 1e-4, L2 added to the gradient as PyTorch's
  ``Adam(weight_decay=...)`` does (the report: 97.22 %).

The report's numbers are for full MNIST (60,000 training images); on another dataset, a
``--subset`` or mnist-5k the runs have no reference. Writes OUT/mnist/<run>/ (results.json,
figures: experiments/figures.py), OUT/mnist/results.json, comparison.md and comparison.png.

    python -m experiments.mnist --backend numba                                     # full MNIST (downloads it)
    python -m experiments.mnist --backend numba --data-dir ../shared/data/mnist-5k  # offline, 5,000 real digits
    python -m experiments.mnist --dataset fashion-mnist --data-dir ../shared/data/fashion-mnist
"""

from __future__ import annotations

from minicnn import data

from . import common, runs

TASK = "mnist"
REFERENCE = {"no_wd": 0.9656, "wd": 0.9722}  # report C, full MNIST
FULL_MNIST = 60_000
NOTE = "report C's numbers are test accuracies on full MNIST (55,000/5,000/10,000 images) after 5 epochs"
NORMALISE = {"mnist": (data.MNIST_MEAN, data.MNIST_STD),
             "fashion-mnist": (data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD)}


def build_parser():
    p = common.report_parser(TASK, "Report C: PyTorch's MNIST example net trained with Adam, without and with "
                                   "weight decay, on minicnn.", momentum=False)
    p.set_defaults(epochs=5, batch_size=100, lr=0.001)
    g = p.add_argument_group(TASK)
    g.add_argument("--dataset", choices=tuple(NORMALISE), default="mnist",
                   help="the digits or Fashion-MNIST (same files, same network); offline: --data-dir "
                        "../shared/data/mnist-5k or ../shared/data/fashion-mnist")
    runs.add_weight_decay_arguments(p)
    return p


def transform(dataset: str):
    """uint8 -> [0, 1] -> Normalize(the dataset's mean, std)."""
    return data.Compose([data.ToFloat(), data.Normalize(*NORMALISE[dataset])])


def prepare(args):
    """``(splits, runs)`` of the command line (also what the PyTorch twin trains)."""
    train, test = common.load_mnist(args.dataset, args.data_dir, args.subset, args.seed)
    full = args.dataset == "mnist" and len(train) == FULL_MNIST
    splits = runs.make_splits(args, train, test, args.dataset)
    tf = transform(args.dataset)
    note = NOTE + ("" if full else "; this dataset differs, so the run has no reference")
    return splits, runs.weight_decay_runs(
        args, {"optimizer": "adam", "lr": args.lr}, REFERENCE if full else {}, model="MNISTNet",
        model_key="mnist", torch_model="mnist", train_tf=tf, eval_tf=tf, test_weights=args.test_weights,
        test_each_epoch=True, note=note)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    with common.run_folder(args, TASK) as out:
        splits, todo = prepare(args)
        return runs.run_all(args, TASK, todo, splits, out, extra={"reference_note": todo[0].note})


if __name__ == "__main__":
    main()
