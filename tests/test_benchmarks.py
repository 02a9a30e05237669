"""Smoke tests of the benchmark scripts (tiny configurations, no timing assertions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import common, layer_profile, throughput  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_backend():
    import minicnn as mc

    prev = mc.backend_name()
    yield
    mc.set_backend(prev)


def test_count_macs_tutorial():
    macs = common.count_macs("tutorial")
    # conv1 6*28*28*3*5*5, conv2 16*10*10*6*5*5, fc 400*120 + 120*84 + 84*10
    assert macs["forward_per_image"] == 352_800 + 240_000 + 48_000 + 10_080 + 840
    assert macs["train_per_image"] == 3 * macs["forward_per_image"]
    assert [layer["name"] for layer in macs["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]


def test_count_macs_deconv_counts_transposed_convs():
    layers = {layer["name"]: layer for layer in common.count_macs("deconv")["layers"]}
    # Cin*H*W*Cout*kh*kw on the unpooled maps (16, 10, 10) and (6, 28, 28): the mirrors of conv2 and conv1
    assert layers["deconv2"]["macs"] == 16 * 10 * 10 * 6 * 5 * 5 == layers["conv2"]["macs"]
    assert layers["deconv1"]["macs"] == 6 * 28 * 28 * 3 * 5 * 5 == layers["conv1"]["macs"]
    assert layers["deconv1"]["out_shape"] == [3, 32, 32]


def test_throughput_quick_smoke(tmp_path):
    report = throughput.main(["--quick", "--backends", "numpy", "--nets", "tutorial", "--batch-sizes", "4",
                              "--repeats", "1", "--no-torch", "--out", str(tmp_path)])
    path = tmp_path / "throughput.json"
    assert path.exists() and (tmp_path / "throughput.png").stat().st_size > 0
    data = json.loads(path.read_text())
    assert data["results"] == json.loads(json.dumps(report["results"]))
    meta = data["meta"]
    for key in ("date", "numpy", "threads", "cpu_count", "impls", "repeats", "min_time_s", "command"):
        assert key in meta, key
    assert meta["impls"] == ["numpy"]
    rows = data["results"]
    assert {(r["net"], r["batch_size"], r["mode"], r["impl"]) for r in rows} == {
        ("tutorial", 4, "train", "numpy"), ("tutorial", 4, "infer", "numpy")}
    for r in rows:
        assert r["error"] is None
        for key in ("median_step_s", "min_step_s", "first_call_s", "images_per_s", "gflops", "macs_per_step"):
            assert isinstance(r[key], (int, float)) and r[key] > 0, key
        assert r["repeats"] == 1 and len(r["step_times_s"]) == 1 and r["steps_per_repeat"] >= 1
        assert r["time_ratio_vs_torch"] is None and r["torch_ref"] is None
        assert r["speedup_vs_numpy"] == pytest.approx(1.0)
    assert data["macs"]["tutorial"]["forward_per_image"] == 651_720


def test_throughput_with_torch_smoke(tmp_path):
    pytest.importorskip("torch")
    data = throughput.main(["--quick", "--backends", "numpy", "--modes", "infer", "--out", str(tmp_path),
                            "--no-plot"])
    rows = {r["impl"]: r for r in data["results"]}
    assert set(rows) == {"numpy", "torch-cpu"}
    assert rows["numpy"]["torch_ref"] == "torch-cpu" and rows["numpy"]["time_ratio_vs_torch"] > 0
    assert data["meta"]["torch_threads"] == data["meta"]["threads"]


def test_layer_profile_smoke(tmp_path):
    rep = layer_profile.main(["--net", "deconv", "--batch-size", "2", "--backend", "numpy", "--steps", "2",
                              "--min-time", "0", "--warmup", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "layer_profile_deconv_numpy_b2.json").read_text())
    keys = {e["key"] for e in saved["entries"]}
    assert {"conv1.forward", "conv1.backward", "deconv1.backward", "loss.ce.forward", "loss.mse.backward",
            "optimizer.step", "other"} <= keys
    assert rep["step_median_s"] > 0
    assert abs(sum(e["share"] for e in saved["entries"]) - 1) < 0.5  # medians, so only roughly 1


def test_memory_smoke(tmp_path):
    from benchmarks import memory

    rep = memory.main(["--impls", "numpy", "--net", "tutorial", "--batch-size", "2", "--steps", "1",
                       "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "memory.json").read_text())
    (r,) = saved["results"]
    assert "error" not in r, r.get("error")
    assert r["impl"] == "numpy" and r["peak_mb"] >= r["baseline_mb"] > 0 and r["increment_mb"] >= 0
    assert rep["results"][0]["peak_mb"] == r["peak_mb"]


def test_each_gpu_run_is_compared_with_its_like():
    labels = ["cupy", "cupy-graph", "torch-cuda", "torch-cuda-graph", "numba", "torch-cpu"]
    assert throughput.reference_for("cupy", labels) == "torch-cuda"
    assert throughput.reference_for("cupy-graph", labels) == "torch-cuda-graph"  # graph with graph
    assert throughput.reference_for("cupy-graph", labels[:3]) == "torch-cuda"    # no PyTorch graph timed
    assert throughput.reference_for("numba", labels) == "torch-cpu"
    assert throughput.reference_for("torch-cuda-graph", labels) is None


def test_pytorch_whole_step_graph_joins_cupy_graph_only(monkeypatch):
    from types import SimpleNamespace

    args = SimpleNamespace(backends=["cupy", "cupy-graph"], torch_devices=["cuda"], torch_graph=None)
    assert throughput.impl_labels(args) == ["cupy", "cupy-graph", "torch-cuda", "torch-cuda-graph"]
    args.torch_graph = False
    assert "torch-cuda-graph" not in throughput.impl_labels(args)
    args = SimpleNamespace(backends=["cupy"], torch_devices=["cuda"], torch_graph=None)
    assert throughput.impl_labels(args) == ["cupy", "torch-cuda"]


def test_pytorch_graph_runner_refuses_what_it_cannot_time():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="training steps on cuda only"):
        common.TorchRunner("tutorial", "cpu", 2, "train", cuda_graph=True)
    with pytest.raises(ValueError, match="training steps on cuda only"):
        common.TorchRunner("tutorial", "cuda", 2, "infer", cuda_graph=True)


def test_torch_tf32_switch_needs_cuda(capsys):
    with pytest.raises(SystemExit):
        throughput.parse_args(["--quick", "--torch-tf32", "on"])
    assert "--torch-tf32 needs --device cuda" in capsys.readouterr().err


def test_every_benchmark_net_has_a_model_a_twin_and_a_mac_count():
    from minicnn.models import MODELS

    assert set(common.DEFAULT_NETS) <= set(common.NETS) and set(common.NETS) <= set(common.NET_TITLES)
    for net in common.NETS:
        assert net in MODELS, net
        assert common.count_macs(net)["forward_per_image"] > 0, net
    torch_models = pytest.importorskip("benchmarks.torch_models")
    assert set(common.NETS) <= set(torch_models.TORCH_MODELS)


def test_fusion_ab_smoke(capsys):
    from benchmarks import fusion_ab
    from minicnn import fusion

    fusion_ab.main(["--nets", "tutorial", "--batch-sizes", "2", "--rounds", "2", "--min-time", "0.01"])
    out = capsys.readouterr().out
    assert "tutorial b2 train:" in out and "fused/unfused" in out
    assert out.count("kernels (2, ") == 2  # the tutorial net's two ReLU -> MaxPool2d inputs
    assert fusion.enabled()  # left on


def test_gemm_ceiling_smoke(capsys):
    from benchmarks import gemm_ceiling

    layers = gemm_ceiling.conv_layers("net2")
    assert [(r["in"], r["out"][0]) for r in layers] == [((3, 32, 32), 32), ((32, 16, 16), 64), ((64, 8, 8), 128)]
    gemm_ceiling.main(["--net", "tutorial", "--batch-size", "2", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.count("| conv") == 2 and "the products alone" in out and "1024^3 SGEMM" in out


def test_throughput_sets_minicnn_tf32_switches():
    from benchmarks import throughput
    from minicnn.backend import tf32

    before = (tf32.conv, tf32.matmul)
    try:
        for mode, want in (("conv", (True, False)), ("on", (True, True)), ("off", (False, False))):
            throughput._set_minicnn_tf32(mode)
            assert (tf32.conv, tf32.matmul) == want, mode
        throughput._set_minicnn_tf32("on")
        throughput._set_minicnn_tf32("default")  # leaves them as they are
        assert (tf32.conv, tf32.matmul) == (True, True)
    finally:
        tf32.conv, tf32.matmul = before


def test_ab_of_the_transposed_weight_gradient_smoke(capsys):
    from benchmarks import fusion_ab
    from minicnn.kernels.cpu import CONV_SCHEDULE

    fusion_ab.main(["--switch", "dw-transposed", "--nets", "tutorial", "--batch-sizes", "2", "--rounds", "2",
                    "--min-time", "0.01"])
    out = capsys.readouterr().out
    assert "tutorial b2 train:" in out and "dW^T/dW" in out and "kernels (" not in out
    assert CONV_SCHEDULE.dw_transposed  # left on


def test_ab_of_the_cpu_split_rule_smoke(capsys, monkeypatch):
    from benchmarks import fusion_ab
    from minicnn.kernels.cpu import CONV_SCHEDULE
    from minicnn.kernels.cpu.split_chooser import SplitChooser

    monkeypatch.setattr(CONV_SCHEDULE, "split", CONV_SCHEDULE.split)  # restored after the test
    fusion_ab.main(["--switch", "cpu-split", "--nets", "net2", "--batch-sizes", "4", "--rounds", "2",
                    "--min-time", "0.01"])
    out = capsys.readouterr().out
    assert "net2 b4 train:" in out and "blas-small/threads" in out and "kernels (" not in out
    assert isinstance(CONV_SCHEDULE.split, SplitChooser) and CONV_SCHEDULE.split.force is None  # left on
    with pytest.raises(SystemExit):
        fusion_ab.main(["--switch", "cpu-split", "--backend", "cupy"])


def test_ab_of_the_direct_kernels_on_numba_smoke(capsys, monkeypatch):
    from benchmarks import fusion_ab
    from minicnn.kernels import cpu
    from minicnn.kernels.cuda import CONV_SCHEDULE as GPU_SCHEDULE

    for sched in (cpu.CONV_SCHEDULE, GPU_SCHEDULE):
        monkeypatch.setattr(sched, "direct_max", sched.direct_max)  # restored after the test
    monkeypatch.setattr(fusion_ab, "DIRECT_MAX", fusion_ab.DIRECT_MAX)
    fusion_ab.main(["--switch", "direct", "--direct-max", "450", "--nets", "tutorial", "--batch-sizes", "2",
                    "--rounds", "2", "--min-time", "0.01"])
    out = capsys.readouterr().out
    assert "tutorial b2 train:" in out and "direct/im2col" in out and "kernels (" not in out
    assert cpu.CONV_SCHEDULE.direct_max == 450  # left on, at --direct-max


def test_matmul_overhead_stub_smoke(capsys):
    """The host-side timing of the cupy backend's matmul runs without a GPU (a stub libcublas
    built with the C compiler) and prints a time for each product."""
    import shutil

    from benchmarks import matmul_overhead
    from minicnn.kernels.cuda import gemm

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler to build the stub libcublas")
    saved = (gemm._cupy, gemm._cublas_path, dict(gemm._state), dict(gemm._math), dict(gemm._streams))
    try:
        assert matmul_overhead.main(["--stub", "--calls", "20", "--rounds", "1"]) == 0
    finally:
        gemm._cupy, gemm._cublas_path = saved[0], saved[1]
        for d, old in zip((gemm._state, gemm._math, gemm._streams), saved[2:]):
            d.clear()
            d.update(old)
        gemm._plans.clear()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| conv") or line.startswith("| fc")]
    assert len(rows) == len(matmul_overhead.SHAPES)
    assert all(float(r.split("|")[2]) > 0 for r in rows)


def test_graphed_ab_captures_one_runner_per_setting(monkeypatch):
    """With a graphed backend each setting gets its own runner, created and warmed (captured)
    with the switch set as it is while that runner is timed; the switch is left on."""
    from benchmarks import fusion_ab
    from minicnn.kernels.cuda import CONV_SCHEDULE

    made = []

    class Runner:
        def __init__(self):
            self.flag_at_capture = CONV_SCHEDULE.wide
            self.runs = []
            made.append(self)

        def run(self, k):
            self.runs.append(CONV_SCHEDULE.wide)

    monkeypatch.setattr(fusion_ab.common, "make_runner", lambda *a, **k: Runner())
    monkeypatch.setattr(fusion_ab.timing, "calibrate", lambda runner, t: (2, 0.0))
    from minicnn.kernels.cpu import CONV_SCHEDULE as CPU_SCHEDULE

    before = CONV_SCHEDULE.wide
    before_cpu = CPU_SCHEDULE.wide, CPU_SCHEDULE.wide_max_pixels
    try:
        line = fusion_ab.step_ab("cupy-graph", "tutorial", 4, 3, 0.01, switch="wide")
        assert [r.flag_at_capture for r in made] == [True, False]
        assert all(flag == r.flag_at_capture for r in made for flag in r.runs)  # timed as captured
        assert "wide/per-sample" in line and CONV_SCHEDULE.wide is True
        made.clear()
        fusion_ab.step_ab("cupy", "tutorial", 4, 2, 0.01, switch="wide")  # eager: one runner, both settings
        assert len(made) == 1 and set(made[0].runs) == {True, False}
    finally:  # the switch sets both backends' schedules: leave neither wide for the later tests
        CONV_SCHEDULE.wide = before
        CPU_SCHEDULE.wide, CPU_SCHEDULE.wide_max_pixels = before_cpu
    with pytest.raises(SystemExit):
        fusion_ab.main(["--switch", "tf32-conv"])  # a cupy switch on the numba backend is refused
    with pytest.raises(SystemExit):
        fusion_ab.main(["--switch", "cpu-split", "--backend", "cupy"])  # and a numba switch on cupy


def test_openblas_pin_names_the_kernels_run_and_those_autodetected(monkeypatch, capsys):
    """OPENBLAS_CORETYPE set to other kernels than OpenBLAS picks itself is reported (a fresh
    Python with the variable unset says what it would pick) and warned about; unset: nothing."""
    from benchmarks import machine

    if not any(i["api"] == "openblas" for i in machine.blas_threads()):
        pytest.skip("NumPy here does not use OpenBLAS")
    monkeypatch.setattr(machine, "blas_threads",
                        lambda set_to=None: [{"lib": "x", "api": "openblas", "threads": 1, "corename": "NoSuchCore"}])
    monkeypatch.setenv("OPENBLAS_CORETYPE", "NoSuchCore")
    pin = machine.openblas_pin()
    assert pin is not None and pin["variable"] == pin["running"] == "NoSuchCore"
    assert pin["autodetected"] and pin["autodetected"] != "NoSuchCore"
    machine.warn_openblas_pin(pin)
    err = capsys.readouterr().err
    assert "OPENBLAS_CORETYPE=NoSuchCore" in err and pin["autodetected"] in err
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert machine.openblas_pin() is None


def test_conv_layers_gpu_lists_the_distinct_layers_and_times_interleaved(capsys, monkeypatch):
    """benchmarks.conv_layers_gpu: the distinct Conv2d layers of the nets (ResNet-20's 19 convs are
    6 shapes), --list without a GPU, and time_layer's interleaved rounds (fake methods here)."""
    from benchmarks import conv_layers_gpu as clg

    layers = clg.conv_layers(["tutorial", "resnet20"])
    assert [clg.describe(layer) for layer in layers] == [
        "3->6 k5x5 s1x1 on 32x32", "6->16 k5x5 s1x1 on 14x14", "3->16 k3x3 s1x1 on 32x32",
        "16->16 k3x3 s1x1 on 32x32", "16->32 k3x3 s2x2 on 32x32", "32->32 k3x3 s1x1 on 16x16",
        "32->64 k3x3 s2x2 on 16x16", "64->64 k3x3 s1x1 on 8x8"]
    assert len(layers[3]["where"]) == 6 and layers[3]["padding"] == [1, 1]
    assert sum(len(layer["where"]) for layer in layers) == 2 + 19
    assert clg.main(["--list", "--nets", "net2"]) == 0
    assert "64->128 k5x5 s1x1 on 8x8" in capsys.readouterr().out
    calls = []
    monkeypatch.setattr(clg, "_sync", lambda: calls.append("sync"))
    methods = {name: (lambda name=name: calls.append((name, "f")), lambda name=name: calls.append((name, "b")))
               for name in ("im2col", "implicit")}
    res = clg.time_layer(methods, rounds=2, iters=3)
    assert set(res) == {"im2col", "implicit"} and set(res["im2col"]) == {"forward_ms", "backward_ms"}
    timed = [c for c in calls if c != "sync"][8:]  # after 2 warm-up forward/backward pairs per method
    assert timed == [("im2col", "f")] * 3 + [("im2col", "b")] * 3 + [("implicit", "f")] * 3 + \
        [("implicit", "b")] * 3 + [("im2col", "f")] * 3 + [("im2col", "b")] * 3 + [("implicit", "f")] * 3 + \
        [("implicit", "b")] * 3
