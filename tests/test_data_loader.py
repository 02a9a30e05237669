"""DataLoader: batches, dtypes, last batch, seeded order per epoch, resuming, prefetch thread."""

import numpy as np
import pytest

import minicnn
from minicnn import data


def _arrays(n=103, c=1, h=4, w=4):
    """Images whose pixel (0, 0, 0) and (0, 0, 1) encode the row index; labels = index % 7."""
    x = np.zeros((n, c, h, w), np.uint8)
    x[:, 0, 0, 0] = np.arange(n) % 256
    x[:, 0, 0, 1] = np.arange(n) // 256
    return x, (np.arange(n) % 7).astype(np.int64)


def _row_ids(xb):
    xb = np.asarray(xb)
    return np.rint(xb[:, 0, 0, 0] * 255).astype(int) + 256 * np.rint(xb[:, 0, 0, 1] * 255).astype(int)


def _epoch(loader, epoch=None):
    batches = list(loader) if epoch is None else list(loader.iter_epoch(epoch))
    return batches


def test_batches_shapes_and_types():
    x, y = _arrays(103)
    loader = data.DataLoader((x, y), batch_size=10, shuffle=False)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 11
    assert [len(b[1]) for b in batches] == [10] * 10 + [3]
    for xb, yb in batches:
        assert isinstance(xb, np.ndarray) and xb.dtype == np.float32 and xb.shape[1:] == (1, 4, 4)
        assert yb.dtype == np.int64
    xs = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(xs, x / 255.0, atol=1e-7)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_drop_last():
    x, y = _arrays(103)
    loader = data.DataLoader((x, y), batch_size=10, shuffle=True, seed=0, drop_last=True)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 10 and all(len(b[1]) == 10 for b in batches)
    exact = data.DataLoader((x, y), batch_size=103, drop_last=True)
    assert len(exact) == 1 and len(_epoch(exact)) == 1


def test_shuffle_covers_each_sample_once_and_labels_follow_images():
    x, y = _arrays(103)
    loader = data.DataLoader((x, y), batch_size=16, shuffle=True, seed=1)
    batches = _epoch(loader)
    ids = np.concatenate([_row_ids(b[0]) for b in batches])
    assert sorted(ids.tolist()) == list(range(103))
    assert ids.tolist() != list(range(103))
    for xb, yb in batches:
        np.testing.assert_array_equal(yb, _row_ids(xb) % 7)


def test_seeded_order_per_epoch():
    x, y = _arrays(103)
    a = data.DataLoader((x, y), batch_size=16, shuffle=True, seed=5)
    b = data.DataLoader((x, y), batch_size=16, shuffle=True, seed=5)
    c = data.DataLoader((x, y), batch_size=16, shuffle=True, seed=6)
    ep_a = [np.concatenate([_row_ids(xb) for xb, _ in a]) for _ in range(3)]
    ep_b = [np.concatenate([_row_ids(xb) for xb, _ in b]) for _ in range(3)]
    ep_c = np.concatenate([_row_ids(xb) for xb, _ in c])
    for u, v in zip(ep_a, ep_b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(ep_a[0], ep_a[1]), "each epoch has its own order"
    assert not np.array_equal(ep_a[0], ep_c)
    assert a.epoch == 3
    np.testing.assert_array_equal(a.order(1), ep_a[1])


def test_resume_at_epoch_and_batch_with_augmentation():
    x = np.random.default_rng(0).integers(0, 256, (70, 3, 8, 8), dtype=np.uint8)
    y = np.arange(70) % 10
    aug = data.Compose([data.RandomCrop(8, padding=2), data.RandomHorizontalFlip(), data.ToFloat(),
                        data.Normalize((0.5,) * 3, (0.25,) * 3)])
    full = data.DataLoader((x, y), 16, shuffle=True, seed=3, transform=aug)
    run = [list(full) for _ in range(4)]
    resumed = data.DataLoader((x, y), 16, shuffle=True, seed=3, transform=aug, start_epoch=2)
    for e in (2, 3):
        for (x1, y1), (x2, y2) in zip(run[e], list(resumed)):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    resumed.set_epoch(1)
    np.testing.assert_array_equal(next(iter(resumed))[0], run[1][0][0])
    tail = list(full.iter_epoch(3, start_batch=2))
    assert len(tail) == len(run[3]) - 2
    for (x1, _), (x2, _) in zip(run[3][2:], tail):
        np.testing.assert_array_equal(x1, x2)
    # augmentation differs between epochs
    assert not np.array_equal(run[0][0][0], run[1][0][0])


def test_seed_none_follows_manual_seed():
    x, y = _arrays(50)
    minicnn.manual_seed(11)
    a = np.concatenate([_row_ids(b[0]) for b in data.DataLoader((x, y), 8, shuffle=True)])
    minicnn.manual_seed(11)
    b = np.concatenate([_row_ids(b[0]) for b in data.DataLoader((x, y), 8, shuffle=True)])
    np.testing.assert_array_equal(a, b)


def test_dataset_input_and_transform_output_float():
    ds = data.ArrayDataset(*_arrays(20))
    loader = data.DataLoader(ds, 8, transform=data.Compose([data.ToFloat(), data.Normalize((0.5,), (0.5,))]))
    xb, yb = next(iter(loader))
    np.testing.assert_allclose(xb, (ds.images[:8] / 255.0 - 0.5) / 0.5, atol=1e-6)


def test_float_input_is_not_aliased():
    x = np.random.default_rng(0).random((10, 1, 2, 2)).astype(np.float32)
    y = np.zeros(10, np.int64)
    xb, _ = next(iter(data.DataLoader((x, y), 4)))
    xb[:] = -1
    assert (x >= 0).all()


def test_prefetch_thread_matches_inline():
    x = np.random.default_rng(0).integers(0, 256, (90, 3, 8, 8), dtype=np.uint8)
    y = np.arange(90) % 10
    aug = data.Compose([data.RandomCrop(8, padding=2), data.RandomHorizontalFlip()])
    inline = list(data.DataLoader((x, y), 16, shuffle=True, seed=2, transform=aug, prefetch=0))
    threaded = list(data.DataLoader((x, y), 16, shuffle=True, seed=2, transform=aug, prefetch=3))
    assert len(inline) == len(threaded) == 6
    for (a, b), (c, d) in zip(inline, threaded):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_prefetch_errors_propagate_and_early_break_stops_thread():
    import threading

    x, y = _arrays(64)

    def boom(batch):
        raise RuntimeError("transform failed")

    with pytest.raises(RuntimeError, match="transform failed"):
        list(data.DataLoader((x, y), 8, transform=boom, prefetch=2))
    it = data.DataLoader((x, y), 8, prefetch=1).iter_epoch(0)
    next(it)
    it.close()
    for t in threading.enumerate():
        if t.name == "minicnn-prefetch":
            t.join(timeout=5)
            assert not t.is_alive()


def test_argument_errors():
    x, y = _arrays(10)
    with pytest.raises(ValueError, match="counts must match"):
        data.DataLoader((x, y[:5]), 4)
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader((x, y), 0)
    with pytest.raises(ValueError, match="integer"):
        data.DataLoader((x, y.astype(float)), 4)
    with pytest.raises(TypeError):
        data.DataLoader(x, 4)
    with pytest.raises(TypeError):
        data.DataLoader((x, y), 4, transform=3)


def test_backend_arrays_numba():
    x, y = _arrays(12)
    xb, yb = next(iter(data.DataLoader((x, y), 5, backend="numba")))
    assert isinstance(xb, np.ndarray) and xb.dtype == np.float32


@pytest.mark.gpu
def test_cupy_batches_on_device():
    if "cupy" not in minicnn.available_backends():
        pytest.skip("needs CuPy and a CUDA device")
    import cupy

    x = np.random.default_rng(0).integers(0, 256, (70, 3, 8, 8), dtype=np.uint8)
    y = np.arange(70) % 10
    aug = data.Compose([data.RandomCrop(8, padding=2), data.RandomHorizontalFlip()])
    host = list(data.DataLoader((x, y), 16, shuffle=True, seed=4, transform=aug, backend="numpy"))
    dev = list(data.DataLoader((x, y), 16, shuffle=True, seed=4, transform=aug, backend="cupy"))
    assert len(host) == len(dev)
    for (a, b), (c, d) in zip(host, dev):
        assert isinstance(c, cupy.ndarray) and c.dtype == cupy.float32 and d.dtype == cupy.int64
        np.testing.assert_array_equal(a, cupy.asnumpy(c))
        np.testing.assert_array_equal(b, cupy.asnumpy(d))
    # device-side transforms give the same result as on the host
    xd = cupy.asarray(x)
    np.testing.assert_array_equal(cupy.asnumpy(aug(xd, np.random.default_rng(1))), aug(x, np.random.default_rng(1)))
