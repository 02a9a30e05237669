"""The shared training loop: history, checkpoints, bitwise-identical resume, NaN stop, objectives.

Also what a resume refuses (other settings) and skips (a complete run), a
divergence first seen in evaluation, the numba compile notice and the
objective's label on the console lines.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import time

import numpy as np
import pytest

import minicnn as mc
from minicnn import data, nn
from minicnn.train import (
    Classification,
    ClassificationReconstruction,
    NonFiniteLossError,
    ResumeError,
    TrainConfig,
    Trainer,
    evaluate,
    load_model,
    strip_timing,
    tutorial_line,
)

from data_fixtures import cifar_arrays

pytestmark = pytest.mark.usefixtures("numpy_backend")

N_TRAIN, N_EVAL, BATCH = 48, 16, 8  # 6 steps per epoch


class DropoutNet(nn.Module):
    """A tiny classifier whose dropout draws from minicnn.random: resume must restore the generator."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.MaxPool2d(4), nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(),
                                  nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)

    def backward(self, g):
        return self.body.backward(g)


MODELS = {
    "tutorial": (lambda: mc.models.TutorialNet(), Classification),
    "deconv": (lambda: mc.models.DeconvNet(), lambda: ClassificationReconstruction(0.5)),
    "dropout": (DropoutNet, Classification),
}


def make_trainer(out_dir, kind="tutorial", *, seed=0, epochs=2, callbacks=(), checkpoint_every=0,
                 batch_size=BATCH, lr=0.01, log_every=2, resume_settings=None, log=None):
    mc.manual_seed(seed)
    build, objective = MODELS[kind]
    model = build()
    tf = data.Compose([data.ToFloat(), data.Normalize((0.5,) * 3, (0.5,) * 3)])
    train = data.DataLoader(cifar_arrays(N_TRAIN, 1), batch_size, shuffle=True, seed=7, transform=tf)
    ev = data.DataLoader(cifar_arrays(N_EVAL, 2), 8, transform=tf)
    opt = mc.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    config = TrainConfig(epochs=epochs, log_every=log_every, progress=False, checkpoint_every=checkpoint_every)
    return Trainer(model, opt, objective(), train, ev, num_classes=10, out_dir=out_dir, config=config,
                   callbacks=callbacks, run_info={"test": True}, resume_settings=resume_settings,
                   log=log or (lambda s: None))


def stop_at(step, exc=KeyboardInterrupt):
    def cb(trainer):
        if trainer.step == step:
            raise exc()
    return cb


def assert_same_state(a: Trainer, b: Trainer):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), f"weights differ at {k}"
    oa, ob = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert oa.keys() == ob.keys()
    for i in oa:
        for k in oa[i]:
            assert np.array_equal(oa[i][k], ob[i][k]), f"optimiser state {i}.{k} differs"
    assert (a.epoch, a.batch, a.step) == (b.epoch, b.batch, b.step)
    assert strip_timing(a.history) == strip_timing(b.history)
    assert a.best == b.best


def test_tutorial_line_format():
    assert tutorial_line(1, 2000, 2.25) == "[1,  2000] loss: 2.250"
    assert tutorial_line(2, 12000, 1.0) == "[2, 12000] loss: 1.000"


@pytest.mark.parametrize("bad", [{"epochs": -1}, {"log_every": 0}, {"progress_every": 0}, {"checkpoint_every": -1}])
def test_train_config_refuses_bad_settings(bad):
    with pytest.raises(ValueError, match="epochs >= 0, log_every >= 1"):
        TrainConfig(**{"epochs": 1, **bad})


def test_trainer_wants_a_train_config(tmp_path):
    tr = make_trainer(tmp_path)
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(tr.model, tr.optimizer, tr.objective, tr.train_loader, num_classes=10, out_dir=tmp_path,
                config={"epochs": 1})


def test_fit_writes_history_logs_and_checkpoints(tmp_path):
    losses = []
    tr = make_trainer(tmp_path, callbacks=[lambda t: losses.append(t.last_loss)])
    hist = tr.fit()
    assert tr.status == "finished" and (tr.epoch, tr.batch, tr.step) == (2, 0, 12)
    # log windows: every 2 batches, the mean of those 2 losses, epoch/batch 1-based like the tutorial
    assert [(r["epoch"], r["batch"], r["step"]) for r in hist["log"]] == [
        (e, b, (e - 1) * 6 + b) for e in (1, 2) for b in (2, 4, 6)]
    for r in hist["log"]:
        s = r["step"]
        assert r["loss"] == pytest.approx((losses[s - 2] + losses[s - 1]) / 2, rel=1e-12)
    assert len(hist["epochs"]) == 2
    for e in hist["epochs"]:
        assert e["steps"] == 6 and e["samples"] == N_TRAIN
        assert e["train_loss"] == pytest.approx(np.mean(losses[(e["epoch"] - 1) * 6: e["epoch"] * 6]))
        ev = e["eval"]
        assert ev["n"] == N_EVAL and 0 <= ev["accuracy"] <= 1
        assert np.asarray(ev["confusion_matrix"]).shape == (10, 10)
        assert np.asarray(ev["confusion_matrix"]).sum() == N_EVAL
        assert len(ev["per_class_accuracy"]) == 10
        assert e["timing"]["train_time_s"] > 0
    # files
    on_disk = json.loads((tmp_path / "history.json").read_text())
    assert on_disk["status"] == "finished" and on_disk["log"] == hist["log"]
    lines = (tmp_path / "train_log.txt").read_text().splitlines()
    assert len(lines) == 6 and all(re.fullmatch(r"\[\d, +\d+\] loss: \d+\.\d{3}", ln) for ln in lines)
    rows = list(csv.DictReader(open(tmp_path / "epochs.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "test_accuracy" in rows[0]
    assert len(list(csv.DictReader(open(tmp_path / "log.csv")))) == 6
    ck = mc.load(tmp_path / "last.npz")
    assert ck["status"] == "finished" and ck["position"] == {"epoch": 2, "batch": 0, "step": 12}
    # best.npz loads into a fresh model and holds the best epoch's weights
    best_epoch = max(hist["epochs"], key=lambda e: e["eval"]["accuracy"])
    fresh = mc.models.TutorialNet()
    meta = load_model(tmp_path / "best.npz", fresh)
    assert meta["epoch"] == tr.best["epoch"] and meta["eval"]["accuracy"] == best_epoch["eval"]["accuracy"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted 2-epoch runs (one per model kind), computed once: ``(trainer, final rng state)``."""
    cache = {}

    def get(kind):
        if kind not in cache:
            prev = mc.backend_name()
            mc.set_backend("numpy")
            tr = make_trainer(tmp_path_factory.mktemp(f"ref-{kind}"), kind)
            tr.fit()
            cache[kind] = (tr, mc.default_generator().bit_generator.state)
            mc.set_backend(prev)
        return cache[kind]

    return get


@pytest.mark.parametrize("kind", ["tutorial", "deconv", "dropout"])
@pytest.mark.parametrize("stop", [3, 6, 9])  # mid epoch 1, end of epoch 1 (before its evaluation), mid epoch 2
def test_resume_after_interrupt_is_bitwise_identical(tmp_path, reference, kind, stop):
    ref, ref_rng = reference(kind)

    run = make_trainer(tmp_path / "run", kind, callbacks=[stop_at(stop)])
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    ck = mc.load(tmp_path / "run" / "last.npz")
    assert ck["status"] == "interrupted" and ck["position"]["step"] == stop
    assert json.loads((tmp_path / "run" / "history.json").read_text())["status"] == "interrupted"

    # A new process would build a model from another seed; everything must come from the checkpoint.
    resumed = make_trainer(tmp_path / "run", kind, seed=123)
    resumed.fit(resume=True)
    assert_same_state(ref, resumed)
    assert mc.default_generator().bit_generator.state == ref_rng


def test_periodic_checkpoint_survives_a_crash(tmp_path, reference):
    ref, _ = reference("deconv")
    run = make_trainer(tmp_path / "run", "deconv", checkpoint_every=4, callbacks=[stop_at(5, RuntimeError)])
    with pytest.raises(RuntimeError):
        run.fit()
    assert mc.load(tmp_path / "run" / "last.npz")["position"] == {"epoch": 0, "batch": 4, "step": 4}
    resumed = make_trainer(tmp_path / "run", "deconv", seed=5, checkpoint_every=4)
    resumed.fit(resume=True)
    assert_same_state(ref, resumed)


@pytest.fixture
def sigint_default():
    """Python's own SIGINT handler for the test: a shell that starts pytest in the background
    sets SIGINT to SIG_IGN, and the Trainer (rightly) leaves an ignored SIGINT alone."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_signal_stops_after_the_step_and_saves(tmp_path, reference, sigint_default):
    def press_ctrl_c(trainer):
        if trainer.step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    run = make_trainer(tmp_path / "run", callbacks=[press_ctrl_c])
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    assert mc.load(tmp_path / "run" / "last.npz")["position"]["step"] == 4
    ref, _ = reference("tutorial")
    resumed = make_trainer(tmp_path / "run")
    resumed.fit(resume=True)
    assert_same_state(ref, resumed)


def test_resume_can_extend_a_finished_run(tmp_path, reference):
    ref, _ = reference("tutorial")
    short = make_trainer(tmp_path / "run", epochs=1)
    short.fit()
    longer = make_trainer(tmp_path / "run", epochs=2, seed=9)
    longer.fit(resume=True)
    assert_same_state(ref, longer)


def test_resume_refuses_different_batch_size(tmp_path):
    make_trainer(tmp_path, epochs=1).fit()
    other = make_trainer(tmp_path, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        other.fit(resume=True)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    a = make_trainer(tmp_path / "a", epochs=1)
    a.fit(resume=True)
    b = make_trainer(tmp_path / "b", epochs=1)
    b.fit()
    assert_same_state(a, b)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def poison(trainer):
        if trainer.step == 4:
            trainer.model.fc3.weight.data[...] = np.nan

    tr = make_trainer(tmp_path, checkpoint_every=3, callbacks=[poison])
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 1, batch 5 \(step 5\)") as ei:
        tr.fit()
    assert str(tmp_path / "last.npz") in str(ei.value)
    ck = mc.load(tmp_path / "last.npz")
    assert ck["position"]["step"] == 3  # the last good one, not overwritten
    assert all(np.isfinite(v).all() for v in ck["model"].values())
    assert json.loads((tmp_path / "history.json").read_text())["status"] == "diverged"
    fresh = mc.models.TutorialNet()
    load_model(tmp_path / "last.npz", fresh)  # and it loads


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_inf_loss_from_huge_lr_stops(tmp_path):
    tr = make_trainer(tmp_path, lr=1e12, epochs=1)
    with pytest.raises(NonFiniteLossError, match="smaller --lr"):
        tr.fit()
    ck = mc.load(tmp_path / "last.npz")
    assert all(np.isfinite(v).all() for v in ck["model"].values())


def test_evaluate_counts():
    mc.manual_seed(0)
    model = mc.models.TutorialNet()
    x, y = cifar_arrays(20, 3)
    tf = data.Compose([data.ToFloat(), data.Normalize((0.5,) * 3, (0.5,) * 3)])
    ev = evaluate(model, Classification(), data.DataLoader((x, y), 6, transform=tf), 10)
    pred = mc.to_numpy(model(mc.asarray(tf(x))).argmax(axis=1))
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (y, pred), 1)
    assert ev["confusion_matrix"] == cm.tolist()
    assert ev["accuracy"] == pytest.approx((pred == y).mean())
    for k in range(10):
        assert ev["per_class_accuracy"][k] == pytest.approx(cm[k, k] / cm[k].sum())
    assert model.training  # evaluate restores the mode


def test_reconstruction_objective_weights_the_decoder_gradient():
    rng = np.random.default_rng(0)
    x = mc.asarray(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    y = mc.asarray(np.array([0, 1, 2, 3]))
    grads, losses = {}, {}
    for lam in (0.0, 1.0, 2.5):
        mc.manual_seed(0)
        model = mc.models.DeconvNet()
        obj = ClassificationReconstruction(lam)
        loss, logits, parts = obj.forward(model, x, y)
        assert float(loss) == pytest.approx(float(parts["ce"]) + lam * float(parts["mse"]), rel=1e-6)
        model.zero_grad()
        obj.backward(model)
        grads[lam] = {k: mc.to_numpy(p.grad).copy() for k, p in model.named_parameters()}
        losses[lam] = parts
    # the decoder's last layer only sees the MSE term: its gradient scales with lambda (zero at 0)
    assert np.all(grads[0.0]["deconv1.weight"] == 0)
    g1 = grads[1.0]["deconv1.weight"]
    np.testing.assert_allclose(grads[2.5]["deconv1.weight"], 2.5 * g1, rtol=1e-4, atol=1e-6 * np.abs(g1).max())
    # the classifier head only sees CE: independent of lambda
    np.testing.assert_allclose(grads[2.5]["fc3.weight"], grads[0.0]["fc3.weight"], rtol=1e-6)
    with pytest.raises(ValueError):
        ClassificationReconstruction(float("nan"))


def file_states(folder) -> dict:
    """Every file's bytes and mtime: what "nothing was written" compares."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


def test_resume_refuses_other_settings_and_names_each(tmp_path):
    make_trainer(tmp_path, epochs=1, resume_settings={"--lr": 0.01, "--momentum": 0.9, "--lam": 1.0}).fit()
    before = file_states(tmp_path)
    other = make_trainer(tmp_path, epochs=2, resume_settings={"--lr": 0.1, "--momentum": 0.0, "--lam": 1.0})
    with pytest.raises(ResumeError) as ei:
        other.fit(resume=True)
    msg = str(ei.value)
    assert "--lr: the run has 0.01, this one 0.1" in msg and "--momentum: the run has 0.9, this one 0.0" in msg
    assert "--lam" not in msg and "without --resume" in msg
    assert file_states(tmp_path) == before  # refused before anything was touched
    # the same settings (and more epochs) resume; a setting the checkpoint never recorded does not
    make_trainer(tmp_path, epochs=2, resume_settings={"--lr": 0.01, "--momentum": 0.9, "--lam": 1.0}).fit(resume=True)
    with pytest.raises(ResumeError, match="--new: not recorded in the checkpoint"):
        make_trainer(tmp_path, epochs=3, resume_settings={"--lr": 0.01, "--momentum": 0.9, "--lam": 1.0,
                                                          "--new": 1}).fit(resume=True)


def test_resume_of_a_complete_run_trains_and_writes_nothing(tmp_path):
    first = make_trainer(tmp_path, epochs=2)
    first.fit()
    before = file_states(tmp_path)
    lines = []
    again = make_trainer(tmp_path, epochs=2, seed=3, log=lines.append)
    hist = again.fit(resume=True)
    assert again.was_complete and again.status == "finished" and again.step == first.step
    assert strip_timing(hist) == strip_timing(first.history)
    assert any("already complete: 2 epoch(s) trained (2 asked for)" in ln for ln in lines)
    assert not any(ln.startswith("resuming from") or ln.startswith("[") for ln in lines)
    assert file_states(tmp_path) == before
    # fewer epochs than trained: complete as well
    assert make_trainer(tmp_path, epochs=1).fit(resume=True) is not None
    assert file_states(tmp_path) == before


def test_resume_inside_an_epoch_beyond_the_asked_epochs_is_refused(tmp_path):
    run = make_trainer(tmp_path, epochs=3, callbacks=[stop_at(9)])  # epoch 2, batch 3
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    with pytest.raises(ResumeError, match=r"stopped in epoch 2 \(batch 3\).*--epochs 2"):
        make_trainer(tmp_path, epochs=1).fit(resume=True)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_non_finite_evaluation_stops_the_run_cleanly(tmp_path):
    """Training loss finite, evaluation NaN (divergence first seen in evaluation): the usual clean stop."""
    def poison_after_last_step(trainer):
        if trainer.step == 6:  # after epoch 1's last step (its checkpoint is written), before its evaluation
            trainer.model.fc3.bias.data[...] = np.inf

    tr = make_trainer(tmp_path, checkpoint_every=3, callbacks=[poison_after_last_step])
    with pytest.raises(NonFiniteLossError, match=r"test loss nan after epoch 1 \(step 6; train loss") as ei:
        tr.fit()
    assert str(tmp_path / "last.npz") in str(ei.value) and "smaller --lr" in str(ei.value)
    hist = json.loads((tmp_path / "history.json").read_text())  # strict JSON: written, no NaN in it
    assert hist["status"] == "diverged" and hist["epochs"] == [] and len(hist["log"]) == 3
    ck = mc.load(tmp_path / "last.npz")
    assert ck["position"]["step"] == 6 and all(np.isfinite(v).all() for v in ck["model"].values())
    assert not (tmp_path / "best.npz").exists()


def _slow_first_steps(trainer, seconds):
    """Make ``trainer``'s first two steps, and the first step of every epoch, sleep ``seconds``
    (a stand-in for compiling)."""
    step = trainer.train_step
    calls = []

    def slow(x, y):
        calls.append(1)
        if len(calls) <= 2 or trainer.batch == 0:
            time.sleep(seconds)
        return step(x, y)

    trainer.train_step = slow


@pytest.mark.parametrize("backend_name", ["numba", "numpy"])
def test_compile_notice_when_the_first_step_is_slow(tmp_path, monkeypatch, backend_name):
    """The notice goes out once a fit, during its first step, and only on numba; a second fit
    (a resume) gets its own; a fast first step gets none."""
    from minicnn.train import progress
    from minicnn.train.progress import COMPILE_NOTICE

    if backend_name not in mc.available_backends():
        pytest.skip(f"{backend_name} backend not available")
    mc.set_backend(backend_name)  # (the numpy_backend fixture restores numpy)
    monkeypatch.setattr(progress, "COMPILE_NOTICE_AFTER_S", 0.05)
    lines = []
    tr = make_trainer(tmp_path / "slow", epochs=2, log=lines.append)
    _slow_first_steps(tr, 1.0)  # steps 1, 2 and epoch 2's first: only the fit's first may give a notice
    tr.fit()
    expected = 1 if backend_name == "numba" else 0
    assert lines.count(COMPILE_NOTICE) == expected
    if expected:
        assert lines.index(COMPILE_NOTICE) < min(i for i, ln in enumerate(lines) if ln.startswith("[1,"))
    tr2 = make_trainer(tmp_path / "slow", epochs=3, log=lines.append)  # resumed: a fit of its own
    _slow_first_steps(tr2, 1.0)
    tr2.fit(resume=True)
    assert lines.count(COMPILE_NOTICE) == 2 * expected

    monkeypatch.setattr(progress, "COMPILE_NOTICE_AFTER_S", 60.0)
    fast = []
    make_trainer(tmp_path / "fast", epochs=1, log=fast.append).fit()
    assert COMPILE_NOTICE not in fast
    assert "compiling kernels (first run only" in COMPILE_NOTICE


def test_console_lines_name_a_combined_loss(tmp_path):
    lines = []
    make_trainer(tmp_path / "d", "deconv", epochs=1, log=lines.append).fit()
    windows = [ln for ln in lines if ln.startswith("[1,")]
    assert windows and all(ln.endswith("  (CE + 0.5 * MSE)") for ln in windows)
    assert any(ln.startswith("epoch 1: train loss (CE + 0.5 * MSE) ") for ln in lines)
    # train_log.txt keeps the tutorial's format; the plain classifier's console lines are the tutorial's
    assert all(re.fullmatch(r"\[1, +\d+\] loss: \d+\.\d{3}", ln)
               for ln in (tmp_path / "d" / "train_log.txt").read_text().splitlines())
    lines.clear()
    make_trainer(tmp_path / "t", epochs=1, log=lines.append).fit()
    assert all(re.fullmatch(r"\[1, +\d+\] loss: \d+\.\d{3}", ln) for ln in lines if ln.startswith("[1,"))
