"""task2: the deconvolutional model -- classify and reconstruct with one encoder.

DeconvNet trained on CE(logits, y) + lam * MSE(x_hat, x), x the normalised
input; the tutorial's optimiser, batch size and epochs. Writes to OUT/task2/:
model.npz (what task3 reads), reconstructions.png (3 test images beside their
reconstructions, de-normalised and clipped to [0, 1]), the loss log and
curves, per-class accuracy, confusion matrix and results.json (test accuracy,
test reconstruction MSE ...).

    python -m experiments.task2 --backend numba --lam 1    # from the repository root
    python -m minicnn.experiments.task2 --backend numba   # anywhere, once minicnn is installed

The console's '[epoch, batch] loss' lines are this objective, CE + lam * MSE
(they say so); train_log.txt keeps the tutorial's exact line format.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import viz
from minicnn.train import ClassificationReconstruction, save_model, write_json

from . import common

N_SHOW = 3


def add_task2_arguments(p):
    g = p.add_argument_group("task2")
    g.add_argument("--lam", type=common.nonneg_float, default=1.0,
                   help="weight of the reconstruction MSE in the loss CE + lam * MSE")
    g.add_argument("--show", type=int, nargs="+", default=list(range(N_SHOW)), metavar="I",
                   help="test-set indices of the images shown beside their reconstructions")
    return p


def build_parser():
    return add_task2_arguments(common.base_parser(
        "task2", "Train DeconvNet (classifier + deconvolutional decoder) on CE + lam * MSE."))


def model_path(out_root) -> Path:
    """Where task2 leaves the weights task3 reads."""
    return Path(out_root) / "task2" / "model.npz"


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    with common.run_folder(args, "task2") as out:
        return run(args, out)


def run(args, out) -> dict:
    started = time.perf_counter()
    train_ds, test_ds = common.load_cifar(args.data_dir, args.subset, args.seed, args.val_size)
    classes = train_ds.classes
    bad = [i for i in args.show if not 0 <= i < len(test_ds)]
    if bad:
        raise SystemExit(f"error: --show indices {bad} are outside the test set (0..{len(test_ds) - 1})")

    model = mc.models.DeconvNet(num_classes=len(classes))
    objective = ClassificationReconstruction(args.lam)
    trainer = common.train(args, model, objective, train_ds, test_ds, out,
                           {"task": "task2", "model": "DeconvNet", "lam": args.lam}, resume_flags=("lam",))
    done = common.results_if_complete(out, trainer)
    if done is not None:
        return done
    if not trainer.was_complete:
        print("Finished Training")
    test_eval = common.test_evaluation(args, trainer, test_ds)
    acc, mse = test_eval["accuracy"], test_eval["mse"]
    # Normalize(0.5, 0.5) maps [0, 1] to [-1, 1]: the same error on the [0, 1] pixel scale is mse * std**2.
    mse01 = mse * float(np.mean(np.square(common.NORM_STD)))
    print(f"Accuracy of the network on the {test_eval['n']} test images: {100 * acc:.2f} %")
    print(f"Test reconstruction MSE: {mse:.5f} (normalised inputs), {mse01:.5f} (pixels in [0, 1]); "
          f"test CE {test_eval['ce']:.4f}")
    common.standard_figures("DeconvNet", test_eval, classes, trainer, out,
                            f"DeconvNet training loss (CE + {args.lam:g} * MSE)")

    # Originals beside their reconstructions.
    idx = np.asarray(args.show)
    x = common.normalized(test_ds.images[idx])
    model.eval()
    logits, x_hat = model(x)
    model.train()
    per_image = mc.to_numpy(((x_hat - x) ** 2).reshape(len(idx), -1).mean(axis=1))
    pred = mc.to_numpy(logits.argmax(axis=1))
    viz.reconstructions(viz.to_display(x, common.NORM_MEAN, common.NORM_STD),
                        viz.to_display(x_hat, common.NORM_MEAN, common.NORM_STD),
                        [f"#{i} {classes[test_ds.labels[i]]}" for i in idx], out / "reconstructions.png",
                        f"DeconvNet reconstructions (test set, lambda={args.lam:g});\n"
                        f"MSE on the normalised scale, pixels in [-1, 1]",
                        [f"predicted {classes[p]}\nMSE {m:.4f} (normalised)" for p, m in zip(pred, per_image)])
    save_model(model_path(args.out), model,
               {"model": "DeconvNet", "lam": args.lam, "normalize_mean": common.NORM_MEAN,
                "normalize_std": common.NORM_STD, "test_accuracy": acc, "test_mse": mse,
                "settings": common.settings(args)})

    results = common.base_results("task2", args, trainer, test_eval, classes, started)
    results.update({"lam": args.lam, "test_mse": mse, "test_mse_pixels01": mse01, "test_ce": test_eval["ce"],
                    "checkpoint": str(model_path(args.out)),
                    "shown": {"indices": idx.tolist(), "mse": per_image.tolist(),
                              "mse_scale": "normalised inputs, pixels in [-1, 1]",
                              "true": [classes[test_ds.labels[i]] for i in idx],
                              "predicted": [classes[p] for p in pred]}})
    write_json(out / "results.json", results)
    print(f"results: {out / 'results.json'}; checkpoint for task3: {model_path(args.out)}")
    return results


if __name__ == "__main__":
    main()
