"""``python -m experiments.resnet`` in quick mode on the tiny synthetic CIFAR-10
(tests/data_fixtures.py): the files it writes, its recipe (weight decay, schedule,
augmentation), an interrupted run resumed to exactly the straight run's result,
and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn.train import load_model

from conftest import experiment_argv
from data_fixtures import CIFAR_CLASSES
from experiments import resnet

pytestmark = pytest.mark.usefixtures("restore_backend")

ROOT = Path(__file__).resolve().parents[1]
# the fake CIFAR-10 that the `cifar` fixture (conftest.py) writes for this module
N_PER_BATCH, N_TEST = 20, 20  # 100 training images, 20 test images
BATCH = 25                    # 4 steps per epoch

argv = partial(experiment_argv, batch_size=BATCH, log_every=2)


def test_quick_run_writes_everything(cifar, tmp_path, capsys):
    res = resnet.main(argv(cifar, tmp_path, "--schedule", "onecycle", "--weight-decay", "5e-4", "--depth", "20"))
    d = tmp_path / "resnet"
    assert res["n_train"] == 5 * N_PER_BATCH and res["n_test"] == N_TEST
    assert res["model"] == "ResNet-20" and res["parameters"] == 269_722 and res["shortcut"] == "A"
    assert res["schedule"] == "onecycle" and res["weight_decay"] == 5e-4
    assert res["settings"]["batch_size"] == BATCH and res["settings"]["momentum"] == 0.9
    assert 0.0 <= res["test_accuracy"] <= 1.0 and np.isfinite(res["test_loss"])
    assert list(res["per_class_accuracy"]) == CIFAR_CLASSES
    # one-cycle over 4 steps: starts at max_lr / 25, ends near max_lr / 25e4
    assert res["lr_at_epoch_start"] == [pytest.approx(0.1 / 25)] and res["final_lr"] < 1e-3
    assert json.loads((d / "results.json").read_text())["test_accuracy"] == res["test_accuracy"]
    for name in ("train_images", "loss_curve", "lr_schedule", "confusion_matrix", "per_class_accuracy"):
        assert (d / f"{name}.png").stat().st_size > 5000
    for name in ("last.npz", "best.npz", "history.json", "epochs.csv", "per_class_accuracy.csv", "model.npz"):
        assert (d / name).is_file()
    model = mc.models.resnet20()
    meta = load_model(d / "model.npz", model)
    assert meta["model"] == "ResNet-20" and tuple(meta["normalize_mean"]) == mc.data.CIFAR10_MEAN
    printed = capsys.readouterr().out
    assert "269,722 parameters" in printed and "Accuracy of ResNet-20 on the 20 test images" in printed


def _strip(res):
    return [{k: v for k, v in e.items() if not k.endswith(("_time_s", "images_per_s"))} for e in res["epochs"]]


def test_interrupted_run_resumes_to_the_straight_result(cifar, tmp_path):
    """One-cycle sets lr and momentum every step: after a Ctrl-C in the middle of epoch 2 and
    --resume, the run ends bitwise where an uninterrupted one does."""
    flags = ["--epochs", "2", "--schedule", "onecycle", "--subset", "0.5", "--checkpoint-every", "1"]

    def stop_at_step_3(trainer):  # 2 steps per epoch: the first batch of epoch 2
        if trainer.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(SystemExit) as ei:
        resnet.main(argv(cifar, tmp_path / "a", *flags), callbacks=[stop_at_step_3])
    assert ei.value.code == 130
    resumed = resnet.main(argv(cifar, tmp_path / "a", "--resume", *flags))
    straight = resnet.main(argv(cifar, tmp_path / "b", *flags))
    assert [e["steps"] for e in straight["epochs"]] == [2, 2]
    assert _strip(resumed) == _strip(straight) and resumed["loss_log"] == straight["loss_log"]
    a, b = mc.load(tmp_path / "a" / "resnet" / "model.npz"), mc.load(tmp_path / "b" / "resnet" / "model.npz")
    assert all(np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])
    # the schedule's length is the run's: a resume with other --epochs is refused
    with pytest.raises(SystemExit) as ei:
        resnet.main(argv(cifar, tmp_path / "a", "--resume", *flags[:1], "3", *flags[2:]))
    assert ei.value.code == 2


def test_schedules_follow_the_recipe(cifar):
    args = resnet.build_parser().parse_args(["--lr", "0.1", "--epochs", "4"])
    assert (args.batch_size, args.weight_decay, args.momentum, args.schedule) == (128, 1e-4, 0.9, "step")
    lrs = resnet.lr_curve(args, 40, 10)  # step: /10 at 50 % and 75 % of the steps
    assert lrs[:20] == [0.1] * 20 and lrs[20:30] == [pytest.approx(0.01)] * 10 and lrs[30] == pytest.approx(1e-3)
    args.schedule, args.warmup_epochs = "cosine", 1.0
    lrs = resnet.lr_curve(args, 40, 10)  # warm-up from lr/10 over one epoch, then cosine to 0
    assert lrs[0] == pytest.approx(0.01) and lrs[10] == pytest.approx(0.1) and lrs[-1] < 1e-3
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11])) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_augmentation_crops_and_flips(cifar):
    train_tf, eval_tf = resnet.transforms()
    x = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
    a = train_tf(x, np.random.default_rng(1))
    e = eval_tf(x)
    assert a.shape == e.shape == (64, 3, 32, 32) and a.dtype == np.float32
    assert not np.allclose(a, e)  # the training images moved
    assert np.allclose(e.mean(axis=(0, 2, 3)), (127.5 / 255 - np.array(mc.data.CIFAR10_MEAN))
                       / np.array(mc.data.CIFAR10_STD), atol=0.05)


def test_refusals_and_help(cifar, tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        resnet.main(argv(cifar, tmp_path, "--schedule", "cosine", "--warmup-epochs", "1"))
    assert ei.value.code != 0 and "--warmup-epochs" in str(ei.value.code)
    with pytest.raises(SystemExit):
        resnet.main(["--depth", "21"])
    with pytest.raises(SystemExit):
        resnet.main(["--schedule", "exp"])
    with pytest.raises(SystemExit) as ei:
        resnet.main(["--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--backend", "--epochs", "--batch-size", "--lr", "--subset", "--resume", "--out", "--schedule",
                 "--weight-decay", "--depth", "--shortcut", "--warmup-epochs"):
        assert flag in text


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "experiments.resnet", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "usage: python -m experiments.resnet" in r.stdout
