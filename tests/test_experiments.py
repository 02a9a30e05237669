"""The three tasks end to end on a small fake CIFAR-10 written in the official format.

Each task's ``main(argv)`` runs in-process (numpy backend, one short epoch)
and the artefacts are checked: PNG sizes, JSON fields, CSV/Markdown tables,
checkpoints that load into the models. task3's channel isolation is checked
against the decoder applied to a hand-masked latent.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `experiments` lives at the top of the checkout
    sys.path.insert(0, str(ROOT))

import minicnn as mc  # noqa: E402
from minicnn.train import load_model  # noqa: E402

from conftest import experiment_argv  # noqa: E402
from data_fixtures import CIFAR_CLASSES  # noqa: E402
from experiments import common, task1, task2, task3  # noqa: E402

pytestmark = pytest.mark.usefixtures("restore_backend")

# the fake CIFAR-10 that the `cifar` fixture (conftest.py) writes for this module
N_PER_BATCH, N_TEST = 40, 40  # 200 training images, 40 test images
BATCH, LOG_EVERY = 10, 5      # 20 steps, 4 log lines

argv = partial(experiment_argv, batch_size=BATCH, log_every=LOG_EVERY)


@pytest.fixture(scope="module")
def task2_run(cifar, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return out, task2.main(argv(cifar, out, "--lam", "0.5"))


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def check_training_outputs(d: Path, res: dict):
    assert res["n_train"] == 5 * N_PER_BATCH and res["n_test"] == N_TEST
    assert 0.0 <= res["test_accuracy"] <= 1.0 and np.isfinite(res["test_loss"])
    assert list(res["per_class_accuracy"]) == CIFAR_CLASSES
    assert np.asarray(res["confusion_matrix"]).sum() == N_TEST
    assert len(res["wall_time_per_epoch_s"]) == 1 and res["wall_time_per_epoch_s"][0] > 0
    assert res["backend"] == "numpy" and res["seed"] == 0 and res["settings"]["batch_size"] == BATCH
    on_disk = json.loads((d / "results.json").read_text())
    assert on_disk["test_accuracy"] == res["test_accuracy"]
    lines = (d / "train_log.txt").read_text().splitlines()
    assert len(lines) == (5 * N_PER_BATCH // BATCH) // LOG_EVERY
    assert all(re.fullmatch(r"\[1, +\d+\] loss: \d+\.\d{3}", ln) for ln in lines)
    rows = json.loads((d / "per_class_accuracy.json").read_text())
    assert [r["class"] for r in rows] == CIFAR_CLASSES and sum(r["total"] for r in rows) == N_TEST
    table = list(csv.DictReader(open(d / "per_class_accuracy.csv")))
    assert len(table) == 10 and table[0]["class"] == "airplane"
    md = (d / "per_class_accuracy.md").read_text().splitlines()
    assert md[0].startswith("| class |") and len(md) == 12
    for name in ("loss_curve", "confusion_matrix", "per_class_accuracy"):
        w, h = png_size(d / f"{name}.png")
        assert w >= 400 and h >= 300
    for name in ("last.npz", "best.npz", "history.json", "epochs.csv", "log.csv"):
        assert (d / name).is_file()


def test_task1_end_to_end(cifar, tmp_path, capsys):
    res = task1.main(argv(cifar, tmp_path))
    d = tmp_path / "task1"
    check_training_outputs(d, res)
    printed = capsys.readouterr().out
    assert "Accuracy of the network on the 40 test images:" in printed
    assert "Accuracy for class: plane" not in printed and "Accuracy for class: truck is" in printed
    assert re.search(r"\[1, +5\] loss: \d\.\d{3}", printed)
    w, h = png_size(d / "train_images.png")
    assert w > h > 200  # a 2 x 8 grid
    w, h = png_size(d / "test_predictions.png")
    assert w > 2 * h
    assert len(res["test_images"]["predicted"]) == 4
    assert all(p in CIFAR_CLASSES for p in res["test_images"]["predicted"])
    model = mc.models.TutorialNet()
    meta = load_model(d / "model.npz", model)
    assert meta["model"] == "TutorialNet" and meta["test_accuracy"] == res["test_accuracy"]


def test_task2_end_to_end(task2_run):
    out, res = task2_run
    d = out / "task2"
    check_training_outputs(d, res)
    assert res["lam"] == 0.5 and res["test_mse"] > 0 and np.isfinite(res["test_mse"])
    assert res["test_mse_pixels01"] == pytest.approx(res["test_mse"] / 4)
    ep = res["epochs"][0]
    assert ep["train_loss"] == pytest.approx(ep["train_ce"] + 0.5 * ep["train_mse"], rel=1e-5)
    w, h = png_size(d / "reconstructions.png")
    assert h > w  # three rows of (original | reconstruction)
    assert len(res["shown"]["mse"]) == 3
    assert Path(res["checkpoint"]) == out / "task2" / "model.npz"
    model = mc.models.DeconvNet()
    meta = load_model(res["checkpoint"], model)
    assert meta["lam"] == 0.5 and tuple(meta["normalize_std"]) == common.NORM_STD


def test_task3_end_to_end(cifar, task2_run, capsys):
    out, _ = task2_run
    res = task3.main(argv(cifar, out, "--z2-channels", "1", "4", "15", "--test-index", "3",
                          "--stats-images", "30", "--no-train"))
    d = out / "task3"
    assert res["z2_channels"] == [1, 4, 15] and res["images"]["test"]["index"] == 3
    for split in ("train", "test"):
        w1, h1 = png_size(d / f"{split}_z1_channels.png")
        w2, h2 = png_size(d / f"{split}_z2_channels.png")
        assert w1 > w2 > h2 and h1 == h2  # 2 + 6 panels vs 2 + 3 panels, two rows each
    stats = json.loads((d / "activation_stats.json").read_text())
    assert set(stats) == {"train", "test", "test_set"} and stats["test_set"]["images"] == 30
    for part in ("train", "test", "test_set"):
        assert len(stats[part]["z1"]) == 6 and len(stats[part]["z2"]) == 16
        for row in stats[part]["z1"] + stats[part]["z2"]:
            assert set(row) == {"channel", "mean", "std", "max", "frac_nonzero"}
            assert 0 <= row["frac_nonzero"] <= 1 and row["max"] >= row["mean"] >= 0 and row["std"] >= 0
    printed = capsys.readouterr().out
    assert "z1 channels:" in printed and "nonzero" in printed


def test_task3_all_channels(cifar, task2_run):
    out, _ = task2_run
    res = task3.main(argv(cifar, out, "--all", "--stats-images", "0", "--stretch", "--no-train"))
    assert res["z2_channels"] == list(range(16))
    w, _ = png_size(out / "task3" / "test_z2_channels.png")
    w1, _ = png_size(out / "task3" / "test_z1_channels.png")
    assert w > w1
    assert "test_set" not in res["activation_stats"]


def test_task3_trains_task2_when_the_checkpoint_is_missing(cifar, tmp_path, capsys):
    res = task3.main(argv(cifar, tmp_path, "--stats-images", "0"))
    printed = capsys.readouterr().out
    assert "No task2 checkpoint at" in printed and "training task2 first" in printed
    assert (tmp_path / "task2" / "model.npz").is_file()
    assert Path(res["checkpoint"]) == tmp_path / "task2" / "model.npz"
    with pytest.raises(SystemExit, match="no checkpoint at"):
        task3.main(argv(cifar, tmp_path, "--checkpoint", str(tmp_path / "elsewhere.npz")))
    with pytest.raises(SystemExit, match="--no-train"):
        task3.main(argv(cifar, tmp_path / "empty", "--no-train"))


def test_channel_isolation_zeroes_every_other_channel(task2_run):
    mc.set_backend("numpy")
    out, res = task2_run
    model = mc.models.DeconvNet()
    load_model(res["checkpoint"], model)
    model.eval()
    x = mc.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32))
    z1, z2 = model.encode(x)
    switches = (model.indices1.copy(), model.indices2.copy())
    assert z1.shape == (2, 6, 14, 14) and z2.shape == (2, 16, 5, 5)
    for z, decode, n in ((z1, task3.from_z1_channel, 6), (z2, task3.from_z2_channel, 16)):
        for c in range(n):
            masked, recon = decode(model, z, c)
            others = [k for k in range(n) if k != c]
            assert np.all(masked[:, others] == 0)
            assert np.array_equal(masked[:, c], z[:, c])
            by_hand = np.zeros_like(z)
            by_hand[:, c] = z[:, c]
            expected = model.decode_z1(by_hand) if n == 6 else model.decode_z1(model.decode_z2(by_hand))
            assert np.array_equal(recon, expected)
            assert recon.shape == x.shape
    # decoding neither changes the latent nor the switches it decodes with
    assert np.array_equal(model.indices1, switches[0]) and np.array_equal(model.indices2, switches[1])
    z1b, z2b = model.encode(x)
    assert np.array_equal(z1b, z1) and np.array_equal(z2b, z2)
    # a channel that is zero everywhere decodes to what an all-zero latent decodes to (the biases)
    zero_c = np.zeros_like(z1)
    masked, recon = task3.from_z1_channel(model, zero_c, 2)
    assert np.array_equal(recon, model.decode_z1(np.zeros_like(z1)))


def test_resume_flag_continues_a_task_to_the_same_result(cifar, tmp_path):
    one = task1.main(argv(cifar, tmp_path / "a") + ["--checkpoint-every", "7"])
    assert one["epochs"][0]["epoch"] == 1
    cont = task1.main(argv(cifar, tmp_path / "a", "--resume") + ["--epochs", "2"])
    straight = task1.main(argv(cifar, tmp_path / "b") + ["--epochs", "2"])
    strip = [{k: v for k, v in e.items() if not k.endswith(("_time_s", "images_per_s"))} for e in cont["epochs"]]
    ref = [{k: v for k, v in e.items() if not k.endswith(("_time_s", "images_per_s"))} for e in straight["epochs"]]
    assert strip == ref and cont["loss_log"] == straight["loss_log"]
    a, b = mc.load(tmp_path / "a" / "task1" / "model.npz"), mc.load(tmp_path / "b" / "task1" / "model.npz")
    assert all(np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_nan_exits_with_a_clear_message(cifar, tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        task1.main(argv(cifar, tmp_path, "--lr", "1e12"))
    assert ei.value.code == 1
    err = capsys.readouterr().err
    assert "training stopped" in err and "last good checkpoint" in err
    ck = mc.load(tmp_path / "task1" / "last.npz")
    assert all(np.isfinite(v).all() for v in ck["model"].values())


def test_cli_help_and_bad_flags(capsys):
    for mod in (task1, task2, task3):
        with pytest.raises(SystemExit) as ei:
            mod.main(["--help"])
        assert ei.value.code == 0
        text = capsys.readouterr().out
        for flag in ("--backend", "--data-dir", "--epochs", "--batch-size", "--lr", "--seed", "--subset", "--out",
                     "--resume", "--log-every"):
            assert flag in text
    with pytest.raises(SystemExit):
        task1.main(["--subset", "1.5"])
    with pytest.raises(SystemExit):
        task1.main(["--backend", "tensorflow"])
    assert "--z2-channels" in task3.build_parser().format_help()


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "experiments.task3", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "usage: python -m experiments.task3" in r.stdout
