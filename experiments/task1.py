"""task1: the PyTorch CIFAR-10 tutorial, reproduced on minicnn.

TutorialNet, Normalize((0.5,)*3, (0.5,)*3), SGD(lr=0.001, momentum=0.9),
batch 4, 2 epochs, shuffled. Writes to OUT/task1/: train_images.png,
train_log.txt (the '[epoch, batch] loss' lines), loss_curve.png,
test_predictions.png (4 test images, true and predicted), per-class accuracy
(.csv/.json/.md/.png), confusion_matrix.png, model.npz and results.json.

    python -m experiments.task1 --backend numba     # from the repository root
    python -m minicnn.experiments.task1 --backend numba    # anywhere, once minicnn is installed
"""

from __future__ import annotations

import time

import minicnn as mc
from minicnn import viz
from minicnn.train import Classification, save_model, write_json

from . import common

N_GRID = 16
N_SHOW = 4


def build_parser():
    return common.base_parser("task1", "Train the PyTorch CIFAR-10 tutorial's network with minicnn.")


def predict(model, images_uint8):
    """Class indices for a few uint8 images (eval mode)."""
    model.eval()
    logits = model(common.normalized(images_uint8))
    model.train()
    return mc.to_numpy(logits.argmax(axis=1))


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    with common.run_folder(args, "task1") as out:
        return run(args, out)


def run(args, out) -> dict:
    started = time.perf_counter()
    train_ds, test_ds = common.load_cifar(args.data_dir, args.subset, args.seed, args.val_size)
    classes = train_ds.classes

    # What the network sees first: the start of epoch 1's shuffled order.
    first = mc.data.DataLoader(train_ds, args.batch_size, shuffle=True, seed=args.seed).order(0)[:N_GRID]
    viz.image_grid(train_ds.images[first], [classes[k] for k in train_ds.labels[first]], out / "train_images.png",
                   f"CIFAR-10 training images (the first {len(first)} of epoch 1, with their labels)")

    model = mc.models.TutorialNet(num_classes=len(classes))
    trainer = common.train(args, model, Classification(), train_ds, test_ds, out,
                           {"task": "task1", "model": "TutorialNet"})
    done = common.results_if_complete(out, trainer)
    if done is not None:
        return done
    if not trainer.was_complete:
        print("Finished Training")
    test_eval = common.test_evaluation(args, trainer, test_ds)

    imgs, labels = test_ds.images[:N_SHOW], test_ds.labels[:N_SHOW]
    pred = predict(model, imgs)
    print("GroundTruth: ", " ".join(f"{classes[k]:5s}" for k in labels))
    print("Predicted:   ", " ".join(f"{classes[k]:5s}" for k in pred))
    viz.predictions(imgs, [classes[k] for k in labels], [classes[k] for k in pred], out / "test_predictions.png",
                    f"TutorialNet on the first {N_SHOW} test images (red: wrong)")

    acc = test_eval["accuracy"]
    print(f"Accuracy of the network on the {test_eval['n']} test images: {100 * acc:.2f} %")
    common.standard_figures("TutorialNet", test_eval, classes, trainer, out, "TutorialNet training loss")
    save_model(out / "model.npz", model, {"model": "TutorialNet", "normalize_mean": common.NORM_MEAN,
                                          "normalize_std": common.NORM_STD, "test_accuracy": acc,
                                          "settings": common.settings(args)})

    results = common.base_results("task1", args, trainer, test_eval, classes, started)
    results["test_images"] = {"indices": list(range(N_SHOW)), "true": [classes[k] for k in labels],
                              "predicted": [classes[k] for k in pred]}
    results["train_grid_indices"] = [int(i) for i in first]
    write_json(out / "results.json", results)
    print(f"results: {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
