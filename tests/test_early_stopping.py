"""Early stopping (``TrainConfig.patience``) and ``Trainer.load_best()``."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import data
from minicnn.train import Classification, TrainConfig, Trainer

from data_fixtures import cifar_arrays

pytestmark = pytest.mark.usefixtures("numpy_backend")

N_TRAIN, N_EVAL, BATCH = 48, 16, 8  # 6 steps per epoch


def make_trainer(out_dir, *, lr, epochs=10, patience=2, callbacks=()):
    mc.manual_seed(0)
    model = mc.models.TutorialNet()
    tf = data.Compose([data.ToFloat(), data.Normalize((0.5,) * 3, (0.5,) * 3)])
    train = data.DataLoader(cifar_arrays(N_TRAIN, 1), BATCH, shuffle=True, seed=7, transform=tf)
    ev = data.DataLoader(cifar_arrays(N_EVAL, 2), 8, transform=tf)
    opt = mc.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    config = TrainConfig(epochs=epochs, progress=False, patience=patience, log_every=100)
    return Trainer(model, opt, Classification(), train, ev, num_classes=10, out_dir=out_dir, config=config,
                   callbacks=callbacks, log=lambda s: None)


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(epochs=1, patience=0)


def test_run_stops_after_patience_epochs_without_a_better_accuracy(tmp_path):
    # lr 0: the weights never move, so every evaluation equals epoch 1's -- never better.
    t = make_trainer(tmp_path, lr=0.0, patience=2)
    t.fit()
    assert t.epoch == 3 and len(t.history["epochs"]) == 3  # epochs 2 and 3 did not beat epoch 1
    assert t.best["epoch"] == 1 and t.stopped_early() and t.status == "finished"
    again = make_trainer(tmp_path, lr=0.0, patience=2)
    again.fit(resume=True)  # the run is complete: nothing trained
    assert again.was_complete and again.epoch == 3
    longer = make_trainer(tmp_path / "p5", lr=0.0, patience=5, epochs=4)
    longer.fit()
    assert longer.epoch == 4 and not longer.stopped_early()  # patience not used up within the epochs


def test_resumed_run_stops_where_the_uninterrupted_one_did(tmp_path):
    whole = make_trainer(tmp_path / "a", lr=0.0, patience=2)
    whole.fit()

    def stop(trainer):
        if trainer.step == 2 * 6 + 1:  # inside epoch 3
            raise KeyboardInterrupt

    cut = make_trainer(tmp_path / "b", lr=0.0, patience=2, callbacks=[stop])
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    rest = make_trainer(tmp_path / "b", lr=0.0, patience=2)
    rest.fit(resume=True)
    assert (rest.epoch, rest.best) == (whole.epoch, whole.best)


def test_load_best_puts_the_best_epochs_weights_back(tmp_path):
    snapshots = {}

    def snapshot(trainer):
        if trainer.batch == len(trainer.train_loader):  # last step of an epoch: what its evaluation sees
            snapshots[trainer.epoch + 1] = {k: np.array(v) for k, v in trainer.model.state_dict().items()}

    t = make_trainer(tmp_path, lr=0.05, epochs=4, patience=None, callbacks=[snapshot])
    t.fit()
    final = {k: np.array(v) for k, v in t.model.state_dict().items()}
    best = t.load_best()
    assert best == t.best and set(snapshots) == {1, 2, 3, 4}
    got = t.model.state_dict()
    for k, v in snapshots[best["epoch"]].items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    if best["epoch"] != 4:  # the weights did change back
        assert any(not np.array_equal(got[k], final[k]) for k in final)


def test_load_best_without_an_evaluation_leaves_the_model(tmp_path):
    t = make_trainer(tmp_path, lr=0.05, epochs=0, patience=None)
    t.fit()
    assert t.load_best() is None
