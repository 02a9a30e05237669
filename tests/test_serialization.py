"""``minicnn.load``: clear errors for malformed checkpoints (issue 14, item 11).

Every bad file is written here with ``np.savez`` (or ``zipfile``) so that it
is a valid .npz whose *content* is wrong; ``load`` must say which file, which
entry, what was wrong and what was expected -- never a bare ``IndexError`` or
``KeyError``, and "pickled objects" only when there are pickled objects.
The decompression-bomb tests are in ``test_hostile_files.py``.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

import minicnn as mc
from minicnn.serialization import CheckpointError


def _savez(path, **entries):
    np.savez(path, **entries)
    return path


def test_roundtrip_of_every_leaf_kind(tmp_path):
    ck = {"w": np.arange(6, dtype=np.float16).reshape(2, 3), "f": np.asfortranarray(np.ones((2, 3))),
          "be": np.arange(3, dtype=">i4"), "s": "text", "b": True, "i": 7, "x": 1.5, "none": None,
          "list": [1, [2, None], {"k": np.zeros(0)}], "empty": {}, "strs": np.array(["ab", "c"])}
    out = mc.load(mc.save(ck, tmp_path / "ck"))
    np.testing.assert_array_equal(out["w"], ck["w"])
    np.testing.assert_array_equal(out["f"], ck["f"])
    np.testing.assert_array_equal(out["be"], [0, 1, 2])
    assert out["w"].dtype == np.float16 and out["w"].flags.writeable
    assert out["s"] == "text" and out["b"] is True and out["i"] == 7 and out["x"] == 1.5
    assert out["none"] is None and out["empty"] == {}
    assert out["list"][0] == 1 and out["list"][1] == [2, None] and out["list"][2]["k"].shape == (0,)
    assert out["strs"].tolist() == ["ab", "c"]


def test_compressed_checkpoint_within_budget_loads(tmp_path):
    p = tmp_path / "small.npz"
    np.savez_compressed(p, **{"a/w": np.zeros((100, 100), np.float32), "a/n": np.asarray(3)})
    out = mc.load(p)
    assert out["a"]["n"] == 3
    np.testing.assert_array_equal(out["a"]["w"], np.zeros((100, 100), np.float32))


def test_pickled_objects_named_only_when_present(tmp_path):
    p = _savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r"obj\.npz.*'x\.npy' holds pickled objects"):
        mc.load(p)
    bad = tmp_path / "garbled.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("x.npy", b"not an npy file at all")
    with pytest.raises(ValueError) as e:
        mc.load(bad)
    assert "holds pickled" not in str(e.value) and "'x.npy' is not a readable .npy array" in str(e.value)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 junk")
    with pytest.raises(ValueError, match="not a readable .npz checkpoint"):
        mc.load(tmp_path / "junk.npz")


def test_entry_that_is_not_an_array(tmp_path):
    p = tmp_path / "extra.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("README.txt", b"hello")
    with pytest.raises(ValueError, match=r"'README\.txt' is not a \.npy array"):
        mc.load(p)


@pytest.mark.parametrize("entries", [{"a": np.zeros(2), "a/b": np.zeros(2)},
                                     {"a/b": np.zeros(2), "a": np.zeros(2)},
                                     {"a": np.asarray(1), "a/b": np.asarray(2)}],
                         ids=["value-first", "group-first", "scalars"])
def test_conflicting_keys(tmp_path, entries):
    """``a`` as both a value and a group: was IndexError/TypeError, or silently dropped data."""
    with pytest.raises(CheckpointError) as e:
        mc.load(_savez(tmp_path / "c.npz", **entries))
    msg = str(e.value)
    assert "c.npz" in msg and "minicnn.save" in msg and "'a' cannot be both a value and a group" in msg
    assert ("'a/b' conflicts with entry 'a'" in msg) or ("'a' conflicts with entry 'a/b'" in msg)


def test_list_with_missing_items(tmp_path):
    p = _savez(tmp_path / "l.npz", **{"h/__list__": np.asarray(3), "h/0": np.asarray(1), "h/2": np.asarray(3)})
    with pytest.raises(CheckpointError, match=r"list 'h' declares 3 items; missing \['1'\]"):
        mc.load(p)
    p = _savez(tmp_path / "n.npz", **{"h/__list__": np.asarray(-1)})
    with pytest.raises(CheckpointError, match="must be a list length, found -1"):
        mc.load(p)
    p = _savez(tmp_path / "s.npz", **{"h/__list__": np.asarray("two")})
    with pytest.raises(CheckpointError, match="must be a list length"):
        mc.load(p)


def test_none_marker_with_entries(tmp_path):
    p = _savez(tmp_path / "none.npz", **{"x/__none__": np.zeros(0), "x/y": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"x/__none__ \(None\) conflicts with entry x/y"):
        mc.load(p)
    p = _savez(tmp_path / "top.npz", **{"__list__": np.asarray(1), "0": np.zeros(1)})
    with pytest.raises(CheckpointError, match="top level is a list"):
        mc.load(p)


def test_absurd_key_nesting(tmp_path):
    """A key of 10,000 parts would recurse 10,000 deep while rebuilding the dict."""
    p = _savez(tmp_path / "deep.npz", **{"/".join(["a"] * 10_000): np.zeros(1)})
    with pytest.raises(CheckpointError, match="must be 1 to 64 non-empty names"):
        mc.load(p)
    p = _savez(tmp_path / "blank.npz", **{"a//b": np.zeros(1)})
    with pytest.raises(CheckpointError, match="non-empty names"):
        mc.load(p)


def test_truncated_entry(tmp_path):
    p = _savez(tmp_path / "t.npz", w=np.arange(1000, dtype=np.float64))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="t.npz"):
        mc.load(p)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_entry(tmp_path):
    p = tmp_path / "dup.npz"
    with zipfile.ZipFile(p, "w") as zf:
        for _ in range(2):
            with zf.open("w.npy", "w") as f:
                np.lib.format.write_array(f, np.zeros(2))
    with pytest.raises(CheckpointError, match="'w' appears twice"):
        mc.load(p)


def test_folder_and_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        mc.load(tmp_path / "nothing.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(CheckpointError, match="is a folder, not a .npz checkpoint file"):
        mc.load(tmp_path / "dir.npz")
