"""The experiments' command line as a user meets it (issue 14, items 4, 7, 8, 12, 15, 16, 18-20).

Bad flags and data end with one clear ``error:`` before anything is created or
deleted; ``--resume`` refuses other training settings and does not train a
complete run again; ``--help`` shows each default once; the tasks run from
any folder once installed; the figures and console lines say what they show.
Runs are in-process on a small fake CIFAR-10 (numpy backend, one short epoch).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `experiments` lives at the top of the checkout
    sys.path.insert(0, str(ROOT))

from minicnn import viz  # noqa: E402

from conftest import experiment_argv  # noqa: E402
from data_fixtures import write_cifar_folder  # noqa: E402
from experiments import cli, task1, task2, task3  # noqa: E402

pytestmark = pytest.mark.usefixtures("restore_backend")

# the fake CIFAR-10 that the `cifar` fixture (conftest.py) writes for this module
N_PER_BATCH, N_TEST = 40, 40  # 200 training images, 40 test images

argv = partial(experiment_argv, batch_size=10, log_every=5)


def exit_message(capsys, fn, *args) -> tuple[object, str]:
    """Run ``fn(*args)``, expecting SystemExit: ``(exit code, everything printed to stderr + the exit text)``."""
    with pytest.raises(SystemExit) as ei:
        fn(*args)
    code = ei.value.code
    text = capsys.readouterr().err + (code if isinstance(code, str) else "")
    return code, text


# -- item 12: --help --------------------------------------------------------------------

@pytest.mark.parametrize("mod", [task1, task2, task3])
def test_help_shows_each_default_once(mod):
    parser = mod.build_parser()
    fmt = parser.formatter_class(prog=parser.prog)
    helps = {}
    for action in parser._actions:
        text = " ".join(fmt._format_action(action).split())
        assert text.count("default") <= 1, text
        helps[action.option_strings[0] if action.option_strings else action.dest] = text
    for flag, default in (("--epochs", "2"), ("--batch-size", "4"), ("--eval-batch-size", "500"),
                          ("--seed", "0"), ("--lr", "0.001"), ("--val-size", "0")):
        assert helps[flag].endswith(f"(default: {default})"), helps[flag]
    help_text = " ".join(parser.format_help().split())
    assert "$MINICNN_BACKEND if set, else numpy)" in help_text and "(default: numpy)" not in help_text


def test_resume_rule_is_in_the_help():
    text = " ".join(task2.build_parser().format_help().split())
    assert "a resume with any other value is refused, naming each difference" in text
    assert "--epochs may be raised" in text


# -- item 7: non-finite numbers ------------------------------------------------------------

@pytest.mark.parametrize("flag,value", [("--lr", "nan"), ("--lr", "inf"), ("--momentum", "nan"),
                                        ("--lr", "-0.1"), ("--lam", "nan")])
def test_non_finite_flags_are_refused_by_argparse(cifar, tmp_path, capsys, flag, value):
    (tmp_path / "task2").mkdir()
    (tmp_path / "task2" / "best.npz").write_bytes(b"an earlier run's")
    code, err = exit_message(capsys, task2.main, argv(cifar, tmp_path, flag, value))
    assert code == 2 and f"argument {flag}: expected a finite number >= 0, got '{value}'" in err
    assert sorted(p.name for p in (tmp_path / "task2").iterdir()) == ["best.npz"]  # nothing made or deleted


# -- item 8: empty sets -----------------------------------------------------------------------

@pytest.mark.parametrize("extra,expected", [
    (("--subset", "1e-9"), "--subset 1e-09 leaves 0 of 200 training and 0 of 40 test images"),
    (("--subset", "0.01"), "--subset 0.01 leaves 2 of 200 training and 0 of 40 test images"),
    (("--val-size", "200"), "--val-size 200 holds out every one of the 200 training images"),
])
def test_empty_sets_stop_before_training(cifar, tmp_path, capsys, extra, expected):
    code, err = exit_message(capsys, task1.main, argv(cifar, tmp_path, *extra))
    assert code != 0 and expected in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "task1").iterdir()) == []  # no checkpoint, no figure


# -- item 19: missing and damaged data --------------------------------------------------------

def test_missing_data_says_what_to_do_on_the_command_line(tmp_path, capsys, monkeypatch):
    from minicnn.data import cifar as cifar_module
    from minicnn.data import DatasetError

    def offline(url, path, md5, progress=True):
        raise DatasetError(f"could not download {url}: no network (test)")

    monkeypatch.setattr(cifar_module, "download_url", offline)
    code, err = exit_message(capsys, task1.main, ["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert code != 0 and "CIFAR-10 (train split) not found" in err
    assert "download=True" not in err
    assert "run the command again with network access" in err and "--data-dir DIR" in err


def test_a_damaged_data_file_is_a_clear_error(cifar, tmp_path, capsys):
    bad = tmp_path / "cifar"
    write_cifar_folder(bad, n_per_batch=N_PER_BATCH, n_test=N_TEST)
    (bad / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle at all")
    code, err = exit_message(capsys, task1.main, argv(bad, tmp_path / "runs"))
    assert code != 0 and "test_batch" in err and "could not be used" in err and "Traceback" not in err


# -- items 4 and 15: --resume ------------------------------------------------------------------

def test_resume_with_other_settings_is_refused_naming_each(cifar, tmp_path, capsys):
    task2.main(argv(cifar, tmp_path, "--lam", "0.5"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "task2").iterdir()}
    capsys.readouterr()
    code, err = exit_message(capsys, task2.main, argv(cifar, tmp_path, "--resume", "--epochs", "2", "--lr", "0.1",
                                                      "--momentum", "0", "--lam", "0.5"))
    assert code == 2 and "--resume refused" in err
    assert "--lr: the run has 0.001, this one 0.1" in err and "--momentum: the run has 0.9, this one 0.0" in err
    assert "--lam" not in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "task2").iterdir()} == before


def test_resume_of_a_complete_run_says_so_and_does_not_train_again(cifar, tmp_path, capsys):
    first = task1.main(argv(cifar, tmp_path))
    results = tmp_path / "task1" / "results.json"
    stamp = (results.read_bytes(), results.stat().st_mtime_ns)
    capsys.readouterr()
    again = task1.main(argv(cifar, tmp_path, "--resume"))
    printed = capsys.readouterr().out
    assert "is already complete: 1 epoch(s) trained (1 asked for); nothing to train" in printed
    assert "Finished Training" not in printed and "epoch 2" not in printed and "[1," not in printed
    assert again == {**first, "total_wall_time_s": again["total_wall_time_s"]}
    assert (results.read_bytes(), results.stat().st_mtime_ns) == stamp
    # results.json gone: the complete run's results are written again, without training
    results.unlink()
    again = task1.main(argv(cifar, tmp_path, "--resume"))
    printed = capsys.readouterr().out
    assert "training is complete; writing its results" in printed and "[1," not in printed
    assert again["test_accuracy"] == first["test_accuracy"] and results.is_file()


# -- item 20: figures and console lines --------------------------------------------------------

def test_task2_and_task3_say_what_their_numbers_are(cifar, tmp_path, capsys, monkeypatch):
    calls = {}

    def recorder(name):
        real = getattr(viz, name)

        def wrapped(*args, **kw):
            calls.setdefault(name, []).append(args)
            return real(*args, **kw)
        return wrapped

    for name in ("reconstructions", "channel_reconstructions"):
        monkeypatch.setattr(viz, name, recorder(name))
    res = task2.main(argv(cifar, tmp_path, "--lam", "0.5"))
    printed = capsys.readouterr().out
    assert re.search(r"^\[1, +5\] loss: \d\.\d{3}  \(CE \+ 0\.5 \* MSE\)$", printed, re.M)
    assert "train loss (CE + 0.5 * MSE)" in printed
    original_caps, path, title, recon_caps = calls["reconstructions"][0][2:6]
    assert "normalised scale, pixels in [-1, 1]" in title
    assert all(re.fullmatch(r"predicted \w+\nMSE \d\.\d{4} \(normalised\)", c) for c in recon_caps)
    assert res["shown"]["mse_scale"] == "normalised inputs, pixels in [-1, 1]"

    task3.main(argv(cifar, tmp_path, "--all", "--stats-images", "0", "--no-train"))
    titles = [args[6] for args in calls["channel_reconstructions"]]
    assert len(titles) == 4 and all(re.search(r"\(\w+, predicted \w+\)", t) for t in titles)
    d = tmp_path / "task3"
    with Image.open(d / "test_z2_channels.png") as z2, Image.open(d / "test_z1_channels.png") as z1:
        assert z2.width <= 1600 and z2.height > 1.8 * z1.height  # 16 channels wrap into two rows of 8


# -- item 16: the experiments from any folder ----------------------------------------------------

def test_installed_experiments_run_from_another_folder(tmp_path):
    r = subprocess.run([sys.executable, "-m", "minicnn.experiments.task2", "--help"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: python -m minicnn.experiments.task2" in r.stdout and "--lam" in r.stdout
    r = subprocess.run([sys.executable, "-m", "experiments.task1", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "usage: python -m experiments.task1" in r.stdout


# -- item 18: what the package depends on ----------------------------------------------------------

def test_pytest_is_a_dev_dependency_only():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in meta["dependencies"]]
    assert "pytest" not in names and "numpy" in names
    assert any(d.startswith("pytest") for d in meta["optional-dependencies"]["dev"])


def test_cli_types():
    assert cli.nonneg_float("0.5") == 0.5 and cli.nonneg_float("0") == 0.0
    for bad in ("nan", "-inf", "inf", "x", "-1"):
        with pytest.raises(Exception, match="expected a"):
            cli.nonneg_float(bad)
    with pytest.raises(Exception, match="integer >= 0"):
        cli.nonneg_int("two")
    assert np.isclose(cli.fraction("1e-3"), 1e-3)


# -- damaged checkpoints met by the commands ----------------------------------------------------------

def test_damaged_checkpoints_are_clear_errors(cifar, tmp_path, capsys):
    (tmp_path / "task1").mkdir()
    (tmp_path / "task1" / "last.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code, err = exit_message(capsys, task1.main, argv(cifar, tmp_path, "--resume"))
    assert code != 0 and err.startswith("error: --resume: ") and "last.npz" in err and "without --resume" in err
    (tmp_path / "task2").mkdir()
    (tmp_path / "task2" / "model.npz").write_bytes(b"garbage")
    code, err = exit_message(capsys, task3.main, argv(cifar, tmp_path, "--no-train", "--stats-images", "0"))
    assert code != 0 and "cannot use" in err and "model.npz" in err and "Traceback" not in err


def test_out_naming_a_file_is_a_clear_error(cifar, tmp_path, capsys):
    (tmp_path / "f").write_text("a file")
    code, err = exit_message(capsys, task1.main, argv(cifar, tmp_path / "f"))
    assert code != 0 and "is a file, not a folder" in err and "Traceback" not in err
