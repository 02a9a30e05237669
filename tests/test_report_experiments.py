"""The report experiments (``experiments.mnist``, ``cifar_small``, ``threeblock``, ``dropout_study``)
in quick mode on tiny synthetic MNIST / CIFAR-10 files (tests/data_fixtures.py), numpy backend,
one short epoch: the files each writes (results.json with the report assembler's fields, the
figures), a ``--resume`` of a finished set that does nothing again, the report's settings as
defaults, and clear refusals of bad flags and missing data."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `experiments` lives at the top of the checkout
    sys.path.insert(0, str(ROOT))

import minicnn as mc  # noqa: E402

from conftest import table_rows  # noqa: E402
from data_fixtures import write_cifar_folder, write_mnist_folder  # noqa: E402
from experiments import cifar_small, common, dropout_study, mnist, runs, threeblock  # noqa: E402

RUN_FIELDS = {"task", "backend", "seed", "settings", "test_accuracy", "epochs", "best", "total_wall_time_s",
              "model", "parameters", "reference", "figures"}
FIGURES = {"learning_curves", "weight_histograms", "correct", "wrong", "feature_maps", "filters",
           "confusion_matrix", "softmax_table"}


pytestmark = pytest.mark.usefixtures("restore_backend")  # tests/conftest.py


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_mnist_folder(root, n_train=60, n_test=30)
    return root


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_folder(root, n_per_batch=8, n_test=20)  # 40 training images
    return root


def argv(data_dir, out, *extra):
    return ["--backend", "numpy", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "1",
            "--batch-size", "10", "--log-every", "2", "--eval-batch-size", "16", "--no-progress", *extra]


def check_run(folder: Path, figures=FIGURES) -> dict:
    """A run folder's results.json has the contracted fields, and every figure it names is a real PNG."""
    res = json.loads((folder / "results.json").read_text())
    assert RUN_FIELDS <= set(res), RUN_FIELDS - set(res)
    assert set(res["figures"]) == set(figures)
    for name in res["figures"].values():
        png = (folder / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
    assert 0.0 <= res["test_accuracy"] <= 1.0 and res["best"]["epoch"] == 1
    return res


def check_top(folder: Path, names) -> dict:
    top = json.loads((folder / "results.json").read_text())
    assert top["runs"] == {n: n for n in names}
    assert [r["run"] for r in top["table"]] == list(names)
    for row in top["table"]:
        assert {"run", "test_accuracy", "best_epoch", "reference"} <= set(row)
        assert row["test_accuracy"] == json.loads((folder / row["run"] / "results.json").read_text())["test_accuracy"]
    assert (folder / top["table_file"]).read_text().startswith("| run | test accuracy (%)")
    assert (folder / "comparison.png").stat().st_size > 5000
    return top


def stamps(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_mnist_two_runs_then_a_resume_that_does_nothing(mnist_dir, tmp_path, capsys):
    alone = mnist.main(argv(mnist_dir, tmp_path / "alone", "--runs", "wd", "--no-figures"))
    assert alone["figures"] == {} and check_run(tmp_path / "alone" / "mnist" / "wd", figures=())["figures"] == {}
    top = mnist.main(argv(mnist_dir, tmp_path))
    d = tmp_path / "mnist"
    # every run starts from --seed's weights and batches, whatever runs before it
    assert top["table"][1] == alone["table"][0]
    pair_wd, alone_wd = (json.loads((t / "mnist" / "wd" / "results.json").read_text())
                         for t in (tmp_path, tmp_path / "alone"))
    assert pair_wd["loss_log"] == alone_wd["loss_log"] and pair_wd["test_loss"] == alone_wd["test_loss"]
    assert top["task"] == "mnist" and top["dataset"] == "mnist" and top["eval_split"] == "val"
    check_top(d, ["no_wd", "wd"])
    no_wd, wd = check_run(d / "no_wd"), check_run(d / "wd")
    assert no_wd["model"] == "MNISTNet" and no_wd["parameters"] == 21_840
    assert (no_wd["hparams"], wd["hparams"]) == ({"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0},
                                                  {"optimizer": "adam", "lr": 0.001, "weight_decay": 1e-4})
    assert no_wd["n_train"] == 54 and no_wd["n_val"] == 6 and no_wd["n_test"] == 30  # 10 % held out
    assert no_wd["reference"] is None and "full MNIST" in no_wd["reference_note"]  # not the report's data
    # validation and test accuracy after every epoch
    assert {"eval_accuracy", "test_accuracy"} <= set(no_wd["epochs"][0])
    assert "epoch 1: test loss" in capsys.readouterr().out

    before = stamps(d)
    again = mnist.main(argv(mnist_dir, tmp_path, "--resume"))
    printed = capsys.readouterr().out
    assert printed.count("nothing to do:") == 2 and "[1," not in printed
    assert again == top and stamps(d) == before
    with pytest.raises(SystemExit) as ei:  # a resume must train what the run trained
        mnist.main(argv(mnist_dir, tmp_path, "--resume", "--lr", "0.01"))
    assert ei.value.code == 2 and "lr: the run has 0.001, this one 0.01" in capsys.readouterr().err
    assert stamps(d) == before
    # a set resumed with one more run: the finished run is kept, the new one trained
    more = mnist.main(argv(mnist_dir, tmp_path / "alone", "--resume", "--no-figures"))
    printed = capsys.readouterr().out
    assert "nothing to do:" in printed and "no checkpoint at" in printed
    assert more["table"] == top["table"]


def test_mnist_reference_only_for_the_reports_data(mnist_dir, monkeypatch):
    args = mnist.build_parser().parse_args(argv(mnist_dir, "/unused"))
    assert [r.reference for r in mnist.prepare(args)[1]] == [None, None]
    monkeypatch.setattr(mnist, "FULL_MNIST", 60)  # pretend the fixture is full MNIST
    args = mnist.build_parser().parse_args(argv(mnist_dir, "/unused"))
    assert [r.reference for r in mnist.prepare(args)[1]] == [0.9656, 0.9722]
    args = mnist.build_parser().parse_args(argv(mnist_dir, "/unused", "--weight-decay", "5e-4"))
    assert [r.reference for r in mnist.prepare(args)[1]] == [0.9656, None]  # not the report's decay


def test_cifar_small_is_tested_on_the_test_set(cifar_dir, tmp_path):
    top = cifar_small.main(argv(cifar_dir, tmp_path, "--runs", "wd", "--weight-decay", "1e-3", "--no-figures"))
    d = tmp_path / "cifar_small"
    assert top["runs"] == {"wd": "wd"} and not (d / "comparison.png").exists()
    res = check_run(d / "wd", figures=())
    assert top["eval_split"] == "test" and res["n_train"] == 40 and res["n_val"] == 0  # all training images
    assert res["model"] == "SmallCifarNet" and res["parameters"] == 91_270
    assert res["hparams"] == {"optimizer": "sgd", "lr": 0.001, "momentum": 0.9, "weight_decay": 1e-3}
    assert res["reference"] is None and "training set" in res["reference_note"] and "training set" in top[
        "reference_note"]


def test_threeblock_variants(cifar_dir, tmp_path, capsys):
    threeblock.main(argv(cifar_dir, tmp_path, "--variants", "base", "--val-size", "10", "--patience", "2"))
    printed = capsys.readouterr().out
    d = tmp_path / "threeblock"
    check_top(d, ["base"])
    base = check_run(d / "base")
    assert base["parameters"] == 390_410 and "Total params: 390,410" in printed
    assert base["tested_weights"] == "best" and base["patience"] == 2 and base["reference"] == 0.734
    args = threeblock.build_parser().parse_args(argv(cifar_dir, tmp_path, "--variants", "net2", "tuned"))
    net2, tuned = threeblock.prepare(args)[1]
    assert net2.build().dropout == 0.05 and tuned.patience is None and tuned.reference == 0.803
    assert tuned.hparams["schedule"] == "cosine" and tuned.hparams["momentum"] == 0.9
    assert [type(t).__name__ for t in tuned.train_tf.transforms][:2] == ["RandomCrop", "RandomHorizontalFlip"]


def test_dropout_study_normalises_with_its_own_statistics(cifar_dir, tmp_path, capsys):
    top = dropout_study.main(argv(cifar_dir, tmp_path, "--rates", "0.2", "--val-size", "10"))
    d = tmp_path / "dropout_study"
    check_top(d, ["p0.2"])
    res = check_run(d / "p0.2", FIGURES | {"softmax_table_raw"})
    assert res["hparams"]["dropout"] == 0.2 and res["reference"] == 0.707
    facts = json.loads((d / "normalisation.json").read_text())
    assert facts == top["normalisation"] and facts["n_images"] == 30
    assert np.allclose(facts["normalised_mean"], 0, atol=1e-5) and np.allclose(facts["normalised_std"], 1, atol=1e-5)
    assert not np.allclose(facts["train_mean"], 0.0, atol=0.1)  # the raw images were not centred already
    assert "expected about 0 and 1" in capsys.readouterr().out


def test_checkpoints_rebuild_the_very_network(cifar_dir, tmp_path):
    """model.npz names the MODELS key, its arguments, the dataset and the normalisation, so
    experiments.visualize rebuilds the tuned GELU net (same weights as ReLU's) and the BatchNorm
    net, not the class's defaults."""
    from experiments import visualize

    dropout_study.main(argv(cifar_dir, tmp_path, "--rates", "0.2", "--tuned", "--val-size", "10", "--no-figures"))
    threeblock.main(argv(cifar_dir, tmp_path, "--variants", "tuned", "--val-size", "10", "--no-figures"))
    model, key, meta = visualize.load_model(tmp_path / "dropout_study" / "tuned" / "model.npz", None)
    acts = {type(m).__name__ for _, m in model.named_modules()}
    assert key == "dropout_study" and "GELU" in acts and "ReLU" not in acts
    assert meta["model_kwargs"] == {"p": 0.55, "activation": "gelu"} and meta["dataset"] == "cifar10"
    facts = json.loads((tmp_path / "dropout_study" / "normalisation.json").read_text())
    assert visualize.norm_stats(key, meta) == (tuple(facts["train_mean"]), tuple(facts["train_std"]))
    model, key, meta = visualize.load_model(tmp_path / "threeblock" / "tuned" / "model.npz", None)
    assert key == "threeblock" and any(type(m).__name__ == "BatchNorm2d" for _, m in model.named_modules())
    ck = mc.load(tmp_path / "threeblock" / "tuned" / "model.npz")
    for k, v in model.state_dict().items():
        assert np.array_equal(mc.to_numpy(v), ck["model"][k]), k


def test_defaults_are_the_reports_settings(mnist_dir, cifar_dir):
    a = mnist.build_parser().parse_args([])
    assert (a.epochs, a.batch_size, a.lr, a.momentum, a.val_size, a.dataset, a.runs, a.weight_decay) == \
        (5, 100, 0.001, None, None, "mnist", ["no_wd", "wd"], 1e-4)
    a = cifar_small.build_parser().parse_args([])
    assert (a.epochs, a.batch_size, a.lr, a.momentum, a.val_size, a.test_weights) == (35, 32, 0.001, 0.9, 0, "last")
    a = threeblock.build_parser().parse_args(["--data-dir", str(cifar_dir)])
    assert (a.batch_size, a.lr, a.momentum, a.patience, a.variants, a.test_weights) == \
        (64, 0.05, 0.0, 5, ["base", "net1", "net2"], "best")
    splits, todo = threeblock.prepare(a)
    assert len(splits.val) == 4 and len(splits.train) == 36  # 10 % held out
    assert [type(t).__name__ for t in todo[1].train_tf.transforms][0] == "RandomHorizontalFlip"
    assert [t.patience for t in todo] == [5, 5, 5]
    a = dropout_study.build_parser().parse_args(["--data-dir", str(cifar_dir), "--tuned"])
    assert (a.epochs, a.lr, a.momentum, a.rates) == (20, 0.001, 0.9, [0.0, 0.2, 0.5, 0.8])
    _, todo, _ = dropout_study.prepare(a)
    assert [t.name for t in todo] == ["p0", "p0.2", "p0.5", "p0.8", "tuned"]
    assert [t.reference for t in todo] == [0.704, 0.707, 0.740, 0.667, 0.8015]
    assert {k: todo[-1].hparams[k] for k in ("lr", "momentum", "dropout", "activation")} == \
        {"lr": 0.01, "momentum": 0.85, "dropout": 0.55, "activation": "gelu"}


def test_the_validation_rule():
    class Args:
        val_size = None

    for n, expected in ((60_000, 5000), (50_000, 5000), (4000, 400), (60, 6)):
        a = Args()
        assert common.resolve_val_size(a, n) == expected == a.val_size
    a = Args()
    a.val_size = 0
    assert common.resolve_val_size(a, 100) == 0
    a.val_size = 100
    with pytest.raises(SystemExit, match="holds out every one of the 100 training images"):
        common.resolve_val_size(a, 100)


def test_cosine_schedule_of_the_tuned_run():
    lrs = runs.lr_per_step({"lr": 0.05, "schedule": "cosine"}, 10)
    assert lrs[0] == pytest.approx(0.05) and lrs[5] == pytest.approx(0.025) and lrs[-1] < 0.002
    assert runs.lr_per_step({"lr": 0.05}, 10) is None


@pytest.mark.parametrize("mod,extra,expected", [
    (dropout_study, ["--rates", "1.0"], "expected a probability in [0, 1)"),
    (dropout_study, ["--rates"], "nothing to train"),
    (threeblock, ["--variants", "net3"], "invalid choice: 'net3'"),
    (mnist, ["--dataset", "cifar"], "invalid choice: 'cifar'"),
    (mnist, ["--epochs", "0"], "expected a positive integer"),
    (cifar_small, ["--test-weights", "worst"], "invalid choice: 'worst'"),
    (mnist, ["--momentum", "0.9"], "unrecognized arguments: --momentum"),  # Adam has no momentum flag
])
def test_bad_flags_are_refused_before_anything_runs(mod, extra, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        mod.main(["--out", str(tmp_path), *extra])
    assert ei.value.code == 2 and expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_data_is_a_clear_error(mnist_dir, tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as ei:
        mnist.main(argv(mnist_dir, tmp_path, "--val-size", "60"))
    assert "--val-size 60 holds out every one of the 60 training images" in str(ei.value.code)

    from minicnn.data import DatasetError
    from minicnn.data import mnist as mnist_module

    def offline(urls, path, md5, progress=True):
        raise DatasetError("no network (test)")

    monkeypatch.setattr(mnist_module, "download_first", offline)
    with pytest.raises(SystemExit) as ei:
        mnist.main(argv(tmp_path / "none", tmp_path))
    text = str(ei.value.code)
    assert "MNIST (train split) not found" in text and "../shared/data/mnist-5k" in text
    assert "--data-dir" in text and "Traceback" not in text


def test_the_report_assembles_the_quick_runs(mnist_dir, cifar_dir, tmp_path):
    """python -m experiments.report on the quick outputs of all four experiments (and the mnist
    twin's file where PyTorch is installed): one row per run with minicnn's number, the seed
    report's where it has one, PyTorch's where its twin ran; the figures in the PDF."""
    from experiments import report

    out = tmp_path / "runs"
    mnist.main(argv(mnist_dir, out))
    cifar_small.main(argv(cifar_dir, out, "--runs", "wd", "--no-figures"))
    threeblock.main(argv(cifar_dir, out, "--variants", "base", "--val-size", "10", "--no-figures"))
    dropout_study.main(argv(cifar_dir, out, "--rates", "0.5", "--val-size", "10", "--no-figures"))
    torch_files = []
    if importlib.util.find_spec("torch") is not None:
        from benchmarks import torch_reports

        torch_reports.main(["--experiment", "mnist", "--threads", "1", "--json-out", str(tmp_path),
                            *argv(mnist_dir, out)[2:]])  # the experiment's flags, without --backend
        torch_files = ["--torch", str(tmp_path / "torch_mnist.json")]
    pdf = tmp_path / "report.pdf"
    res = report.main([str(out), "--out", str(pdf), *torch_files])
    assert res["runs"] == ["cifar_small/wd", "dropout_study/p0.5", "mnist/no_wd", "mnist/wd", "threeblock/base"]
    rows = table_rows(pdf.with_suffix(".md").read_text())
    for name in res["runs"]:
        task, run = name.split("/")
        mine = json.loads((out / task / run / "results.json").read_text())["test_accuracy"]
        assert rows[name][4] == f"{100 * mine:.2f} %", name
    assert rows["threeblock/base"][5] == "73.4 %" and rows["dropout_study/p0.5"][5] == "74 %"
    if torch_files:
        theirs = {r["run"]: r["test_accuracy"] for r in json.loads((tmp_path / "torch_mnist.json").read_text())}
        assert [rows[f"mnist/{r}"][6] for r in ("no_wd", "wd")] == [f"{100 * theirs[r]:.2f} %" for r in ("no_wd", "wd")]
    assert res["pages"] >= 4 and pdf.stat().st_size > 50_000  # title, the runs' pages, mnist's figures
