"""Shared test helpers: backend selection, finite differences, PyTorch parity, experiment runs."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc

from cuda_host import emulated, host  # noqa: F401 (fixtures of the host-built CUDA kernel tests)
from data_fixtures import write_cifar_folder

CPU_BACKENDS = [b for b in ("numpy", "numba") if b in mc.available_backends()]


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    """Run the test under each CPU backend, restoring the previous one after."""
    prev = mc.backend_name()
    mc.set_backend(request.param)
    yield request.param
    mc.set_backend(prev)


@pytest.fixture
def restore_backend():
    """Put the backend that was current before the test back after it (for tests that switch it)."""
    prev = mc.backend_name()
    yield
    mc.set_backend(prev)


@pytest.fixture
def numpy_backend(restore_backend):
    """Run the test on the numpy backend, restoring the previous one after."""
    mc.set_backend("numpy")


@pytest.fixture
def float64():
    """New parameters in float64 for the duration of the test."""
    prev = mc.nn.get_default_dtype()
    mc.nn.set_default_dtype(np.float64)
    yield
    mc.nn.set_default_dtype(prev)


def distinct(shape, rng, scale=0.05):
    """Shuffled, well-separated values (no max-pool ties, nothing near a ReLU kink)."""
    n = int(np.prod(shape))
    vals = (np.arange(n) - n / 2 + 0.37) * scale / max(1, n / 40)  # never exactly 0
    return rng.permutation(vals).reshape(shape).astype(np.float64)


def _as_tuple(v):
    return v if isinstance(v, tuple) else (v,)


def gradcheck(module, inputs, h=1e-6, tol=1e-6, seed=0, reseed=None, call=None, max_entries=48):
    """Compare module.backward with central finite differences of sum(out * R).

    Every entry of tensors up to ``max_entries`` elements is checked; larger
    tensors (whole-model weights) are checked on ``max_entries`` random entries
    plus one directional derivative along a random direction over all entries.

    ``inputs``: list of arrays; float64 arrays are perturbed, integer ones
    (max-unpool indices) are passed through. ``reseed``: an int to reseed the
    generator before every forward (dropout). ``call(module, *inputs)`` lets a
    test choose how the module is called. Returns the worst relative error.
    """
    rng = np.random.default_rng(seed)
    call = call or (lambda m, *xs: m(*xs))

    def run():
        if reseed is not None:
            mc.manual_seed(reseed)
        return _as_tuple(call(module, *[mc.asarray(x) for x in inputs]))

    outs = run()
    rs = [rng.standard_normal(o.shape) for o in outs]

    def loss():
        return sum(float((mc.to_numpy(o) * r).sum()) for o, r in zip(run(), rs))

    run()
    module.zero_grad()
    grads_in = _as_tuple(module.backward(*[mc.asarray(r) for r in rs]))
    worst = 0.0
    targets = [(f"input{i}", x, mc.to_numpy(g)) for i, (x, g) in
               enumerate(zip([x for x in inputs if x.dtype == np.float64], grads_in))]
    for name, p in module.named_parameters():
        targets.append((name, p, None if p.grad is None else mc.to_numpy(p.grad).copy()))
    for name, arr, analytic in targets:
        is_param = isinstance(arr, mc.nn.Parameter)
        values = mc.to_numpy(arr.data).copy() if is_param else arr
        base = values.copy()

        def loss_at(delta):
            if is_param:
                arr.data = mc.asarray(base + delta)
            else:
                arr[...] = base + delta
            try:
                return loss()
            finally:
                if is_param:
                    arr.data = mc.asarray(base)
                else:
                    arr[...] = base

        assert analytic is not None, f"{name}: backward left no gradient"
        assert analytic.shape == base.shape, f"{name}: gradient shape {analytic.shape} vs {base.shape}"
        size = base.size
        entries = range(size) if size <= max_entries else rng.choice(size, max_entries, replace=False)
        a_vals, n_vals = [], []
        for i in entries:
            delta = np.zeros(base.shape)
            delta.flat[i] = h
            n_vals.append((loss_at(delta) - loss_at(-delta)) / (2 * h))
            a_vals.append(analytic.flat[i])
        if size > max_entries:  # directional derivative over the whole tensor
            d = rng.standard_normal(base.shape)
            d /= np.linalg.norm(d)
            n_vals.append((loss_at(h * d) - loss_at(-h * d)) / (2 * h))
            a_vals.append(float((analytic * d).sum()))
        a_vals, n_vals = np.array(a_vals), np.array(n_vals)
        scale = max(np.abs(n_vals).max(), np.abs(a_vals).max(), 1e-8)
        err = float(np.abs(a_vals - n_vals).max() / scale)
        assert err < tol, f"{name}: relative error {err:.3e} >= {tol} (analytic vs finite differences)"
        worst = max(worst, err)
    return worst


# --- PyTorch parity -------------------------------------------------------

def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")


def copy_to_torch(ours, theirs):
    """Load our state_dict into a torch module (float64)."""
    torch = torch_or_skip()
    sd = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)
    return theirs


def assert_close(a, b, name, rtol=1e-5, atol=1e-9):
    a = mc.to_numpy(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, f"{name}: shape {a.shape} vs torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)


def assert_forward_and_input_grad_match(ours, theirs, x, rng):
    """Run ``x`` (a float64 array) through our module and its torch twin, then the same random
    output gradient (drawn from ``rng``) back through both: the outputs ("forward") and the input
    gradients ("input gradient") must agree. The parameter gradients are left for the caller."""
    torch = torch_or_skip()
    y = ours(mc.asarray(x))
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    assert_close(y, ty, "forward")
    r = rng.standard_normal(tuple(ty.shape))
    ours.zero_grad()
    dx = ours.backward(mc.asarray(r))
    ty.backward(torch.from_numpy(r))
    assert_close(dx, tx.grad, "input gradient")


# --- experiments run in-process on a small fake CIFAR-10 --------------------------------

@pytest.fixture(scope="module")
def cifar(request, tmp_path_factory):
    """A fake CIFAR-10 folder (tests/data_fixtures.py) shared by the tests of one module: the
    module's ``N_PER_BATCH`` images in each of the five training batches, ``N_TEST`` test images."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_folder(root, n_per_batch=request.module.N_PER_BATCH, n_test=request.module.N_TEST)
    return root


def experiment_argv(data_dir, out, *extra, batch_size, log_every):
    """An experiment's command line for a short in-process run: numpy backend, data from
    ``data_dir``, outputs under ``out``, one epoch, evaluation batches of 20, no progress bar,
    then ``extra``."""
    return ["--backend", "numpy", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "1",
            "--batch-size", str(batch_size), "--log-every", str(log_every), "--eval-batch-size", "20",
            "--no-progress", *extra]


from pathlib import Path  # noqa: E402

# --- tests/gpu: every test there needs CuPy and a usable CUDA device ----------------
# Each is marked ``gpu`` and skipped with the reason when either is missing (each module
# still starts with ``cupy = pytest.importorskip("cupy", ...)`` for its own imports).

GPU_TESTS = Path(__file__).resolve().parent / "gpu"


def _why_no_gpu() -> str | None:
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, broken install
        return f"CuPy cannot use a CUDA device: {e}"
    return None if n > 0 else "no CUDA device"


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if GPU_TESTS in Path(item.path).resolve().parents]
    if not mine:
        return
    why = _why_no_gpu()
    for item in mine:
        item.add_marker(pytest.mark.gpu)
        if why:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(autouse=True)
def _gpu_tests_run_exact_fp32(request):
    """Tests under tests/gpu run with exact FP32 products unless they set the TF32 switches
    themselves (tests/gpu/test_tf32.py): minicnn's default, like PyTorch's, lets the
    convolutions use TF32, and these tests compare float32 results with NumPy's bit for bit
    or within FP32 rounding."""
    if GPU_TESTS not in Path(request.node.path).resolve().parents:
        yield
        return
    from minicnn import backend

    saved = (backend.tf32.matmul, backend.tf32.conv)
    backend.tf32.matmul = backend.tf32.conv = False
    yield
    backend.tf32.matmul, backend.tf32.conv = saved


# --- experiments.report ---------------------------------------------------------

def table_rows(md: str) -> dict[str, list[str]]:
    """The first Markdown table of an ``experiments.report`` file (the runs): {run label: cells}."""
    rows = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| task "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells)
        elif rows and not line.startswith("|"):
            break
    return rows
