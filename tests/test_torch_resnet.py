"""benchmarks/torch_resnet.py (the PyTorch twin of experiments.resnet) resumes a run in parts:
one epoch of two (``--stop-after-epochs 1``), then ``--resume``, gives the history and weights of two epochs straight."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is the twin's engine")

from benchmarks import torch_resnet  # noqa: E402

N_PER_BATCH, N_TEST = 8, 20  # conftest's cifar fixture: 40 training images


def _argv(data_dir, out, epochs, *extra):
    return ["--depth", "20", "--schedule", "onecycle", "--epochs", str(epochs), "--batch-size", "16",
            "--eval-batch-size", "20", "--lr", "0.05", "--threads", "1", "--data-dir", str(data_dir),
            "--out", str(out), *extra]


def _history(out):
    res = json.loads((out / "torch_resnet.json").read_text())
    return [{k: e[k] for k in ("train_loss", "test_loss", "test_accuracy", "lr_next")} for e in res["epochs"]], res


def test_a_resumed_run_trains_what_one_run_trains(cifar, tmp_path, capsys):
    straight, parts = tmp_path / "straight", tmp_path / "parts"
    torch_resnet.main(_argv(cifar, straight, 2))
    torch_resnet.main(_argv(cifar, parts, 2, "--stop-after-epochs", "1"))
    torch_resnet.main(_argv(cifar, parts, 2, "--resume"))
    printed = capsys.readouterr().out
    assert "part ends before epoch 2" in printed and "resumed after epoch 1" in printed
    (want, _), (got, res) = _history(straight), _history(parts)
    assert len(want) == 2 and got == want
    assert [p["after_epoch"] for p in res["parts"]] == [1]
    a = torch.load(straight / torch_resnet.CHECKPOINT, weights_only=True)["net"]
    b = torch.load(parts / torch_resnet.CHECKPOINT, weights_only=True)["net"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_settings_or_no_checkpoint(cifar, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="no checkpoint"):
        torch_resnet.main(_argv(cifar, out, 1, "--resume"))
    torch_resnet.main(_argv(cifar, out, 1))
    with pytest.raises(SystemExit, match=r"--epochs 1 there, 3 now.*--lr 0.05 there, 0.1 now"):
        torch_resnet.main(_argv(cifar, out, 3, "--resume", "--lr", "0.1"))
