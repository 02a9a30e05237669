"""Batch transforms, channel statistics, splits and subsets."""

import numpy as np
import pytest

from minicnn import data
from minicnn.data.transforms import crop_batch


def _batch(n=16, c=3, h=8, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def test_to_float():
    x = _batch()
    f = data.ToFloat()(x)
    assert f.dtype == np.float32 and f.shape == x.shape
    np.testing.assert_allclose(f, x / 255.0, atol=1e-7)
    assert f.min() >= 0 and f.max() <= 1
    assert data.ToTensor is data.ToFloat
    g = data.to_float(f)
    assert g.dtype == np.float32 and np.array_equal(g, f)


def test_normalize():
    x = data.to_float(_batch())
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    out = data.Normalize(mean, std)(x)
    ref = (x - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert not np.shares_memory(out, x)
    with pytest.raises(TypeError, match="ToFloat"):
        data.Normalize(mean, std)(_batch())
    with pytest.raises(ValueError, match="channels"):
        data.Normalize((0.5,), (0.5,))(x)
    with pytest.raises(ValueError, match="positive"):
        data.Normalize((0.5,), (0.0,))


def test_flip():
    x = _batch(n=64)
    np.testing.assert_array_equal(data.RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(data.RandomHorizontalFlip(0.0)(x), x)
    out = data.RandomHorizontalFlip(0.5)(x, np.random.default_rng(3))
    flipped = [bool((out[i] == x[i, :, :, ::-1]).all()) for i in range(len(x))]
    same = [bool((out[i] == x[i]).all()) for i in range(len(x))]
    assert all(f or s for f, s in zip(flipped, same))
    assert 10 < sum(flipped) < 54, "each image flips independently with p=0.5"
    # the decision is the documented draw: rng.random(N) < p
    expect = np.random.default_rng(3).random(len(x)) < 0.5
    assert flipped == expect.tolist()
    np.testing.assert_array_equal(x, _batch(n=64))  # input not modified


def test_crop_batch_matches_loop():
    x = _batch(n=20, h=12, w=9)
    rng = np.random.default_rng(1)
    oy, ox = rng.integers(0, 5, 20), rng.integers(0, 4, 20)
    out = crop_batch(x, oy, ox, 7, 5)
    ref = np.stack([x[i, :, oy[i]:oy[i] + 7, ox[i]:ox[i] + 5] for i in range(20)])
    np.testing.assert_array_equal(out, ref)


def test_random_crop_padding():
    x = _batch(n=32, h=8, w=8)
    t = data.RandomCrop(8, padding=4)
    out = t(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.uint8
    # reproduce with the documented draws: oy then ox, integers(0, 2p+1)
    g = np.random.default_rng(0)
    oy, ox = g.integers(0, 9, 32), g.integers(0, 9, 32)
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(32):
        np.testing.assert_array_equal(out[i], padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8])
    assert len({(a, b) for a, b in zip(oy, ox)}) > 5
    np.testing.assert_array_equal(data.RandomCrop(padding=0)(x), x)
    np.testing.assert_array_equal(t(x, np.random.default_rng(5)), t(x, np.random.default_rng(5)))


def test_random_crop_modes_and_errors():
    x = _batch(n=4, h=6, w=6)
    out = data.RandomCrop(4, padding=0)(x, np.random.default_rng(0))
    assert out.shape == (4, 3, 4, 4)
    out = data.RandomCrop(None, padding=2, padding_mode="reflect")(x, np.random.default_rng(0))
    assert out.shape == x.shape
    out = data.RandomCrop(6, padding=1, fill=255)(np.zeros((50, 1, 6, 6), np.uint8), np.random.default_rng(0))
    assert set(np.unique(out)) <= {0, 255} and 255 in out
    with pytest.raises(ValueError, match="larger"):
        data.RandomCrop(20, padding=1)(x)
    with pytest.raises(ValueError, match="padding_mode"):
        data.RandomCrop(4, padding_mode="wrap")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.RandomCrop(4)(x[0])


def test_compose_order_and_plain_callables():
    x = _batch()
    t = data.Compose([data.RandomHorizontalFlip(1.0), data.ToFloat(), lambda b: b * 2,
                      data.Normalize((0.0,) * 3, (2.0,) * 3)])
    out = t(x)
    np.testing.assert_allclose(out, x[..., ::-1] / 255.0, atol=1e-6)
    assert "Normalize" in repr(t)
    aug = data.Compose([data.RandomCrop(8, padding=2), data.RandomHorizontalFlip()])
    np.testing.assert_array_equal(aug(x, np.random.default_rng(9)), aug(x, np.random.default_rng(9)))
    with pytest.raises(TypeError):
        data.Compose([1])


def test_default_rng_follows_manual_seed():
    import minicnn

    x = _batch(n=32)
    t = data.Compose([data.RandomCrop(8, padding=4), data.RandomHorizontalFlip()])
    minicnn.manual_seed(7)
    a = t(x)
    minicnn.manual_seed(7)
    b = t(x)
    np.testing.assert_array_equal(a, b)


# -- statistics ---------------------------------------------------------------

def test_channel_stats_uint8_and_float():
    x = _batch(n=40, c=3)
    mean, std = data.channel_stats(x, chunk=7)
    ref = x / 255.0
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), atol=1e-12)
    m2, s2 = data.channel_stats(ref.astype(np.float32), chunk=7)
    np.testing.assert_allclose(m2, mean, atol=1e-6)
    np.testing.assert_allclose(s2, std, atol=1e-6)
    m3, s3 = data.channel_stats(x.transpose(0, 2, 3, 1), channel_axis=-1)
    np.testing.assert_allclose(m3, mean, atol=1e-12)
    np.testing.assert_allclose(s3, std, atol=1e-12)
    with pytest.raises(data.DatasetError):
        data.channel_stats(np.zeros((0, 3, 2, 2), np.uint8))


# -- splits and subsets -------------------------------------------------------

def _dataset(n=1000, classes=10):
    labels = np.arange(n) % classes
    images = np.zeros((n, 1, 2, 2), np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    images[:, 0, 0, 1] = np.arange(n) // 256
    return data.ArrayDataset(images, labels, [f"c{k}" for k in range(classes)])


def _ids(ds):
    return ds.images[:, 0, 0, 0].astype(int) + 256 * ds.images[:, 0, 0, 1].astype(int)


def test_train_val_split():
    ds = _dataset(1100)
    train, val = data.train_val_split(ds, 100, seed=0)
    assert (len(train), len(val)) == (1000, 100)
    ids_t, ids_v = _ids(train), _ids(val)
    assert not set(ids_t) & set(ids_v) and len(set(ids_t) | set(ids_v)) == 1100
    assert (np.diff(ids_t) > 0).all() and (np.diff(ids_v) > 0).all(), "rows keep their order"
    np.testing.assert_array_equal(train.labels, ds.labels[ids_t])
    assert train.classes == ds.classes
    again = data.train_val_split(ds, 100, seed=0)[1]
    np.testing.assert_array_equal(_ids(again), ids_v)
    other = data.train_val_split(ds, 100, seed=1)[1]
    assert not np.array_equal(_ids(other), ids_v)
    assert ids_v.max() > 550, "validation rows are spread, not the tail or head"
    t2, v2 = data.train_val_split(ds, 0.1, seed=0, stratified=True)
    assert len(v2) == 110 and v2.class_counts().tolist() == [11] * 10


def test_split_of_arrays_and_errors():
    x = np.zeros((50, 1, 2, 2), np.uint8)
    y = np.arange(50) % 5
    train, val = data.train_val_split((x, y), 10)
    assert len(train) == 40 and len(val) == 10
    with pytest.raises(ValueError):
        data.train_val_split((x, y), 51)
    with pytest.raises(ValueError):
        data.train_val_split((x, y), 1.5)


def test_subset_stratified_and_random():
    ds = data.ArrayDataset(np.zeros((1000, 1, 1, 1), np.uint8), np.repeat(np.arange(4), [100, 200, 300, 400]))
    s = data.subset(ds, 0.1)
    assert s.class_counts().tolist() == [10, 20, 30, 40]
    s2 = data.subset(ds, size=7, stratified=True)
    assert len(s2) == 7 and s2.class_counts().sum() == 7
    r = data.subset(ds, 0.1, stratified=False, seed=3)
    assert len(r) == 100
    np.testing.assert_array_equal(r.labels, data.subset(ds, 0.1, stratified=False, seed=3).labels)
    with pytest.raises(ValueError):
        data.subset(ds, 0.0)


def test_array_dataset_validation():
    with pytest.raises(data.DatasetError, match="3 images but 2 labels"):
        data.ArrayDataset(np.zeros((3, 1, 2, 2), np.uint8), [0, 1])
    with pytest.raises(data.DatasetError, match=r"\(N, C, H, W\)"):
        data.ArrayDataset(np.zeros((3, 2, 2), np.uint8), [0, 1, 0])
    with pytest.raises(data.DatasetError, match=r"\[0, 2\)"):
        data.ArrayDataset(np.zeros((2, 1, 2, 2), np.uint8), [0, 2], ["a", "b"])
