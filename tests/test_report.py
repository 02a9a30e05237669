"""experiments.report (issue 15): finished runs assembled into one PDF and a Markdown file.

Quick task1-3 runs (numpy backend, one short epoch on a small fake CIFAR-10)
are made once for the module; the report of the three must fit the
assignment's 8 pages, hold each run's numbers as its results.json has them,
and never show a number nobody published or measured. Multi-run folders,
``--torch`` files and bad inputs are checked on hand-written folders.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `experiments` lives at the top of the checkout
    sys.path.insert(0, str(ROOT))

import minicnn as mc  # noqa: E402

from conftest import table_rows  # noqa: E402
from data_fixtures import png_bytes, write_cifar_folder  # noqa: E402
from experiments import report, task1, task2, task3  # noqa: E402

DASH = "—"


@pytest.fixture(scope="module")
def out_root(tmp_path_factory):
    """OUT holding task1, task2 and task3 runs (one epoch, 200 training and 40 test images)."""
    cifar = tmp_path_factory.mktemp("cifar")
    write_cifar_folder(cifar, n_per_batch=40, n_test=40)
    out = tmp_path_factory.mktemp("runs")
    common = ["--backend", "numpy", "--data-dir", str(cifar), "--out", str(out), "--epochs", "1",
              "--batch-size", "10", "--log-every", "5", "--eval-batch-size", "20", "--no-progress"]
    prev = mc.backend_name()
    try:
        task1.main(common)
        task2.main(common)
        task3.main([*common, "--stats-images", "20"])
    finally:
        mc.set_backend(prev)
    return out


def pdf_pages(path: Path) -> int:
    """Page objects in the PDF file, counted from its bytes (not from what the writer said)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def links(md: str) -> list[str]:
    return [m.strip("<>") for m in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)]


def test_tasks_1_to_3_fit_eight_pages(out_root, tmp_path, capsys):
    pdf = tmp_path / "rep" / "report.pdf"
    res = report.main([str(out_root), "--out", str(pdf)])
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert res["pages"] == pdf_pages(pdf) <= 8
    assert res["runs"] == ["task1", "task2", "task3"]
    md_path = pdf.with_suffix(".md")
    assert res["markdown"] == md_path
    md = md_path.read_text()
    rows = table_rows(md)
    header = ["task", "model", "backend", "epochs", "test accuracy", "seed report", "PyTorch", "wall time"]
    for task in ("task1", "task2", "task3"):
        results = json.loads((out_root / task / "results.json").read_text())
        acc = results.get("test_accuracy", results.get("checkpoint_meta", {}).get("test_accuracy"))
        cells = dict(zip(header, rows[task]))
        assert cells["test accuracy"].startswith(f"{100 * acc:.2f} %"), cells
        assert cells["seed report"] == DASH and cells["PyTorch"] == DASH  # none stated, none given
        assert cells["backend"] == "numpy" and cells["epochs"] == "1"
    assert f"{results['checkpoint_meta']['test_accuracy'] * 100:.2f} % †" in md  # task3: task2's weights
    figs = links(md)
    assert figs and all((md_path.parent / f).is_file() for f in figs)
    assert {Path(f).name for f in figs} >= {"loss_curve.png", "reconstructions.png", "train_z1_channels.png"}
    assert "train_images.png" not in md  # not among the main figures
    assert "wrote" in capsys.readouterr().out


def test_all_figures_and_explicit_folders(out_root, tmp_path):
    pdf = tmp_path / "all.pdf"
    dirs = [str(out_root / t) for t in ("task1", "task2", "task3")]
    res = report.main([*dirs, "--out", str(pdf), "--figures", "all", "--title", "Coursework"])
    md = pdf.with_suffix(".md").read_text()
    assert md.startswith("# Coursework") and "train_images.png" in md
    assert res["pages"] == pdf_pages(pdf) and res["runs"] == ["task1", "task2", "task3"]


def write_run(folder: Path, results: dict, pngs=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    for name in pngs:
        (folder / name).write_bytes(png_bytes(12, 20))
    return folder


def test_multi_run_folder(tmp_path):
    multi = tmp_path / "out" / "threeblock"
    settings = {"epochs": 3, "seed": 0, "backend": "numba"}
    write_run(multi / "runs" / "base", {"task": "threeblock", "model": "report_b_base", "backend": "numba",
                                        "seed": 0, "settings": settings, "test_accuracy": 0.6512,
                                        "epochs": [{}, {}, {}], "total_wall_time_s": 75.0},
              ["loss_curve.png"])
    write_run(multi / "runs" / "net1", {"task": "threeblock", "test_accuracy": 0.7,  # few fields, own reference
                                        "reference": 0.75, "figures": ["sub/curve.png"]})
    (multi / "runs" / "net1" / "sub").mkdir()
    (multi / "runs" / "net1" / "sub" / "curve.png").write_bytes(png_bytes(10, 10))
    write_run(multi / "runs" / "odd", {"task": "threeblock", "test_accuracy": 0.5, "reference": None})
    write_run(multi, {"task": "threeblock", "runs": {"base": "runs/base", "net1": "runs/net1", "odd": "runs/odd"},
                      "table": [{"run": "base", "test_accuracy": 0.6512}, {"run": "net1", "test_accuracy": 0.7}]},
              ["comparison.png"])
    pdf = tmp_path / "multi.pdf"
    res = report.main([str(tmp_path / "out"), "--out", str(pdf)])  # the output root holds the multi-run folder
    assert res["runs"] == ["threeblock/base", "threeblock/net1", "threeblock/odd"]
    assert res["pages"] == pdf_pages(pdf) >= 4  # title, the folder, one per run
    md = pdf.with_suffix(".md").read_text()
    rows = table_rows(md)
    assert rows["threeblock/base"][4:7] == ["65.12 %", "73.4 %", DASH]  # report B's base net
    assert rows["threeblock/net1"][4:6] == ["70.00 %", "75 %"]  # results.json's "reference" wins
    assert rows["threeblock/odd"][4:6] == ["50.00 %", DASH]  # "reference": null means none
    assert rows["threeblock/base"][1:4] == ["report_b_base", "numba", "3"]
    assert rows["threeblock/net1"][1:4] == [DASH, DASH, DASH]
    names = {Path(f).as_posix().split("threeblock/", 1)[1] for f in links(md)}
    assert names == {"comparison.png", "runs/base/loss_curve.png", "runs/net1/sub/curve.png"}


def test_torch_numbers_matched_by_task_and_seed(out_root, tmp_path):
    torch_file = tmp_path / "torch_task1.json"
    torch_file.write_text(json.dumps([
        {"task": "task1", "seed": 0, "test_accuracy": 0.5432, "epoch_seconds": [1.5]},
        {"task": "task1", "seed": 1, "test_accuracy": 0.6789, "epoch_seconds": [1.6]}]))
    resnet_file = tmp_path / "torch_resnet.json"  # torch_resnet.py's form: a model, no task
    resnet_file.write_text(json.dumps({"model": "ResNet-20", "test_accuracy": 0.8758,
                                       "settings": {"seed": 0, "subset": 0.1},
                                       "epochs": [{"epoch": 1, "train_time_s": 5.0, "test_accuracy": 0.8758}]}))
    write_run(tmp_path / "more" / "resnet", {"task": "resnet", "model": "ResNet-20", "seed": 0,
                                             "test_accuracy": 0.8718, "epochs": [{}]})
    pdf = tmp_path / "t.pdf"
    report.main([str(out_root / "task1"), str(out_root / "task2"), str(tmp_path / "more"), "--out", str(pdf),
                 "--torch", str(torch_file), str(resnet_file)])
    md = pdf.with_suffix(".md").read_text()
    rows = table_rows(md)
    assert rows["task1"][6] == "54.32 %" and "67.89" not in md
    assert rows["task2"][6] == DASH
    assert rows["resnet"][4:7] == ["87.18 %", "91.25 %", "87.58 %"]  # He et al.'s ResNet-20
    resnet_section = md.split("## resnet", 1)[1]
    assert "PyTorch's run differs" in resnet_section and "subset 0.1" in resnet_section
    assert "PyTorch's run differs" not in md.split("## resnet", 1)[0]  # task1: same epochs, subset not stated


def test_twins_of_other_datasets_or_epochs_are_not_taken(tmp_path):
    """Two mnist experiments (digits, Fashion-MNIST) and their twins in one report: each run gets
    the twin whose recorded settings (dataset, epochs ...) agree with its own."""
    entries = []
    for name, dataset, epochs, acc in (("digits", "mnist", 5, 0.92), ("fashion", "fashion-mnist", 5, 0.85),
                                       ("digits20", "mnist", 20, 0.96)):
        settings = {"dataset": dataset, "epochs": epochs, "seed": 0}
        folder = tmp_path / "out" / name / "mnist"
        write_run(folder / "no_wd", {"task": "mnist", "seed": 0, "settings": settings, "test_accuracy": acc + 0.001,
                                     "epochs": [{}] * epochs})
        write_run(folder, {"task": "mnist", "runs": {"no_wd": "no_wd"}})
        entries.append({"experiment": "mnist", "run": "no_wd", "seed": 0, "test_accuracy": acc,
                        "settings": {"dataset": dataset, "epochs": epochs, "lr": 0.001}})
    torch_file = tmp_path / "torch_mnist.json"
    torch_file.write_text(json.dumps(entries))
    pdf = tmp_path / "m.pdf"
    report.main([str(tmp_path / "out" / n / "mnist") for n in ("digits", "fashion", "digits20")]
                + ["--out", str(pdf), "--torch", str(torch_file)])
    rows = table_rows(pdf.with_suffix(".md").read_text())
    assert {k: row[6] for k, row in rows.items()} == {
        "mnist/no_wd": "92.00 %", "mnist (fashion-mnist)/no_wd": "85.00 %", "mnist/no_wd (2)": "96.00 %"}


@pytest.mark.parametrize("task, name, settings, expected", [
    ("task1", None, {}, None),
    ("cifar_small", None, {}, None),
    ("mnist", None, {"weight_decay": 0.0}, 0.9656),
    ("mnist", "wd", {"weight_decay": 1e-4}, 0.9722),
    ("dropout_study", "p=0.5", {}, 0.740),
    ("dropout_study", "run3", {"dropout": 0.8}, 0.667),
    ("dropout_study", "tuned", {}, 0.8015),
    ("threeblock", "net2", {}, 0.761),
])
def test_seed_report_numbers(task, name, settings, expected):
    run = report.Run(Path("."), {"task": task, "settings": settings}, task, name)
    assert report.seed_number(run)[0] == expected


def error_of(argv, capsys) -> str:
    with pytest.raises(SystemExit) as ei:
        report.main(argv)
    code = ei.value.code
    return (code if isinstance(code, str) else "") + capsys.readouterr().err


def test_clear_errors(tmp_path, capsys):
    pdf = tmp_path / "r.pdf"
    assert "does not exist" in error_of([str(tmp_path / "nope"), "--out", str(pdf)], capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = error_of([str(empty), "--out", str(pdf)], capsys)
    assert msg.startswith("error:") and "has no results.json" in msg
    bad = write_run(tmp_path / "out" / "task1", {})
    (bad / "results.json").write_text('{"task": "task1", "test_acc')
    msg = error_of([str(bad), "--out", str(pdf)], capsys)
    assert "damaged" in msg and str(bad / "results.json") in msg
    msg = error_of([str(tmp_path / "out"), "--out", str(pdf)], capsys)  # found from the output root too
    assert "damaged" in msg
    loop = write_run(tmp_path / "loop", {"task": "x", "runs": {"a": "."}})
    assert "holds the multi-run folder itself" in error_of([str(loop), "--out", str(pdf)], capsys)
    good = write_run(tmp_path / "good" / "task1", {"task": "task1", "test_accuracy": 0.5})
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    msg = error_of([str(good), "--out", str(blocker / "r.pdf")], capsys)
    assert msg.startswith("error: --out") and "cannot create" in msg
    assert "name the PDF" in error_of([str(good), "--out", str(tmp_path / "r.txt")], capsys)
    torch_bad = tmp_path / "t.json"
    torch_bad.write_text("[{")
    assert "--torch" in error_of([str(good), "--out", str(pdf), "--torch", str(torch_bad)], capsys)
    torch_bad.write_text(json.dumps([{"seed": 0}]))
    assert "no result with a test_accuracy" in error_of([str(good), "--out", str(pdf), "--torch", str(torch_bad)],
                                                        capsys)
    assert not pdf.exists() and not pdf.with_suffix(".md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty", "good", "loop", "out", "t.json"]
