"""benchmarks/torch_reports.py: the PyTorch twin of a report experiment trains the same network
from the same initial weights on the same batches (and, by default, with the same dropout
masks), so its run ends where minicnn's does (tiny synthetic CIFAR-10 and MNIST, two epochs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from conftest import torch_or_skip  # noqa: E402
from data_fixtures import write_cifar_folder, write_mnist_folder  # noqa: E402
from experiments import cifar_small, dropout_study, mnist  # noqa: E402


pytestmark = pytest.mark.usefixtures("restore_backend")  # tests/conftest.py


def test_twin_matches_minicnn_on_the_same_batches(tmp_path):
    torch_or_skip()
    from benchmarks import torch_reports

    write_cifar_folder(tmp_path / "cifar", n_per_batch=8, n_test=20)
    # a large lr and weight decay: the run's batches and settings leave a clear mark on the weights
    flags = ["--data-dir", str(tmp_path / "cifar"), "--epochs", "2", "--batch-size", "10", "--lr", "0.05",
             "--runs", "wd", "--weight-decay", "0.01", "--eval-batch-size", "16"]
    ours = cifar_small.main(["--backend", "numpy", "--out", str(tmp_path / "runs"), "--no-progress", "--no-figures",
                             *flags])
    mine = json.loads((tmp_path / "runs" / "cifar_small" / "wd" / "results.json").read_text())
    theirs = torch_reports.main(["--experiment", "cifar_small", "--threads", "1", "--json-out", str(tmp_path),
                                 *flags])
    assert len(theirs) == 1 and theirs[0]["run"] == "wd" and ours["runs"] == {"wd": "wd"}
    t = theirs[0]
    assert t["test_loss"] == pytest.approx(mine["test_loss"], rel=1e-5)
    assert t["eval_accuracy"] == [e["eval_accuracy"] for e in mine["epochs"]]
    assert t["best"]["epoch"] == mine["best"]["epoch"]
    saved = json.loads((tmp_path / "torch_cifar_small.json").read_text())
    assert saved[0]["test_loss"] == t["test_loss"] and len(saved[0]["epoch_seconds"]) == 2

    # PyTorch's own initial weights: a different start, so a different end
    other = torch_reports.main(["--experiment", "cifar_small", "--threads", "1", "--json-out", str(tmp_path),
                                "--init", "torch", *flags])
    assert other[0]["test_loss"] != pytest.approx(mine["test_loss"], rel=1e-5)


@pytest.mark.parametrize("experiment", ["dropout_study", "mnist"])
def test_twin_drops_the_units_minicnn_drops(tmp_path, experiment):
    """Dropout 0.5 (dropout_study: Dropout after both blocks and fc1; mnist: Dropout2d and
    Dropout): with minicnn's masks the twin's evaluation losses follow minicnn's to float32
    rounding; with PyTorch's own masks they do not."""
    torch_or_skip()
    from benchmarks import torch_reports

    if experiment == "mnist":
        write_mnist_folder(tmp_path / "data", n_train=60, n_test=20)
        module, extra = mnist, ["--lr", "0.01", "--val-size", "10", "--runs", "no_wd"]
    else:
        write_cifar_folder(tmp_path / "data", n_per_batch=8, n_test=20)
        module, extra = dropout_study, ["--rates", "0.5", "--lr", "0.05", "--val-size", "8"]
    flags = ["--data-dir", str(tmp_path / "data"), "--epochs", "2", "--batch-size", "10",
             "--eval-batch-size", "16", *extra]
    module.main(["--backend", "numpy", "--out", str(tmp_path / "minicnn-seed0"), "--no-progress", "--no-figures",
                 *flags])
    theirs = {masks: torch_reports.main(["--experiment", experiment, "--threads", "1", "--masks", masks,
                                         "--json-out", str(tmp_path if masks == "minicnn" else tmp_path / "own"),
                                         *flags])
              for masks in ("minicnn", "torch")}
    assert [r["masks"] for r in theirs["minicnn"]] == ["minicnn"] and len(theirs["torch"]) == 1
    run = theirs["minicnn"][0]["run"]
    mine = json.loads((tmp_path / "minicnn-seed0" / experiment / run / "results.json").read_text())
    ours = [e["eval_loss"] for e in mine["epochs"]]
    same, own = theirs["minicnn"][0], theirs["torch"][0]
    assert same["eval_loss"] == pytest.approx(ours, rel=1e-5)
    assert same["test_loss"] == pytest.approx(mine["test_loss"], rel=1e-5)
    assert own["eval_loss"] != pytest.approx(ours, rel=1e-3)  # other masks, another run

    # benchmarks.report_table (cpu_reports.sh's summary.md) reads this folder's layout
    from benchmarks import report_table

    table = report_table.table(tmp_path).splitlines()
    assert len(table) == 5 and table[2].startswith(f"| {mine['label']} | 0 | ")
    assert f"| {100 * mine['test_accuracy']:.2f} |" in table[2] and "| +0.00 |" in table[2]
    assert table[4] == "The twin's dropout masks: minicnn's (the same units dropped)."


def test_report_table_merges_the_seeds_of_several_folders(tmp_path):
    """Seeds of one experiment measured into two folders make one row (means over all three);
    a seed given twice is refused, naming it."""
    from benchmarks import report_table

    def put(folder, seed, mine, theirs):
        d = tmp_path / folder / f"minicnn-seed{seed}" / "threeblock" / "base"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps({
            "run": "base", "seed": seed, "label": "base net", "test_accuracy": mine, "best": {"epoch": seed + 1},
            "wall_time_per_epoch_s": [10.0, 10.0], "total_wall_time_s": 25.0}))
        t = tmp_path / folder / "torch_threeblock.json"
        old = json.loads(t.read_text()) if t.exists() else []
        t.write_text(json.dumps(old + [{"run": "base", "seed": seed, "test_accuracy": theirs, "best": {"epoch": 2},
                                        "epoch_seconds": [5.0], "wall_s": 6.0, "masks": "minicnn"}]))

    put("a", 0, 0.70, 0.60)
    put("b", 1, 0.72, 0.75)
    put("b", 2, 0.74, 0.72)
    rows = report_table.table([tmp_path / "a", tmp_path / "b"]).splitlines()
    assert rows[2].startswith("| base net | 0, 1, 2 | 70.00 / 72.00 / 74.00 | 72.00 | 60.00 / 75.00 / 72.00 | 69.00 "
                              "| +3.00 | 1, 2, 3 / 2, 2, 2 |")
    assert "| base net | 0 | 70.00 | 70.00 | 60.00 | 60.00 | +10.00 |" in report_table.table(tmp_path / "a")
    put("c", 1, 0.5, 0.5)
    with pytest.raises(SystemExit, match="run 'base' seed 1 is also in another folder"):
        report_table.table([tmp_path / "b", tmp_path / "c"])
