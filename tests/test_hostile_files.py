"""Hostile data files must not crash, hang or exhaust the machine (issue 14, items 1-3).

Every hostile file is generated here, in a temporary folder; none is committed.
A file that crashes the interpreter is loaded in a subprocess, so a
segmentation fault shows as return code -11/139 instead of killing pytest.
Memory is measured with ``tracemalloc`` (it sees NumPy's and ``bytes``'
allocations), with the bombs made a few hundred MiB so that the unfixed
loaders would show it plainly while the tests stay fast.
"""

from __future__ import annotations

import gzip
import io
import pickle
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import data
from minicnn.data import DatasetError, idx, safe_loads

try:
    import data_fixtures as fx
except ImportError:  # tests/ imported as a package
    from tests import data_fixtures as fx

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def nested_key_pickle(depth: int) -> bytes:
    """A dict whose key is ``depth`` nested 1-tuples: ``{((((),),),): 1}`` (protocol 2)."""
    return b"\x80\x02})" + b"\x85" * depth + b"K\x01s."


def _run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


# --- item 1: nesting -------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 300_000])
def test_deeply_nested_pickle_is_refused_in_a_live_interpreter(tmp_path, depth):
    """300,000 nested tuples used to segfault (rc 139); 1,000 gave a bare RecursionError."""
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=10, n_test=10)
    (arrays["dir"] / "test_batch").write_bytes(nested_key_pickle(depth))
    proc = _run_python(f"""
        from minicnn import data
        try:
            data.CIFAR10(root={str(tmp_path)!r}, train=False)
        except data.DatasetError as e:
            print("REFUSED", e)
        else:
            print("LOADED")
    """)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "REFUSED" in proc.stdout and "test_batch" in proc.stdout
    assert "nested more than" in proc.stdout


def test_nesting_limit_leaves_real_formats_alone():
    ok = {b"data": np.zeros((2, 3072), np.uint8), b"t": ((((1,),),),), "l": [[[[2]]]]}
    for protocol in range(0, 6):
        out = safe_loads(pickle.dumps(ok, protocol=protocol))
        assert out["l"] == [[[[2]]]] and out[b"t"] == ((((1,),),),)
    deep = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(DatasetError, match="nested more than"):
        safe_loads(pickle.dumps({"l": deep}))


def test_too_many_objects_refused_before_building(monkeypatch):
    from minicnn.data import pickle_scan

    monkeypatch.setattr(pickle_scan, "MAX_OPCODES", 1000)
    with pytest.raises(DatasetError, match="more than 1,000 opcodes"):
        safe_loads(pickle.dumps(list(range(2000)), protocol=2))


def test_huge_memo_index_refused():
    """``LONG_BINPUT 2**31`` would make the unpickler grow its memo table to 2**32 slots."""
    blob = b"\x80\x02N" + b"r" + (2**31).to_bytes(4, "little") + b"."
    with pytest.raises(DatasetError, match="memo index"):
        safe_loads(blob, source="memo.pkl")


def test_self_referencing_data_refused():
    a = []
    a.append(a)
    with pytest.raises(DatasetError, match="changed after it was stored"):
        safe_loads(pickle.dumps({b"labels": a}, protocol=2))


# --- item 2: stride bomb ---------------------------------------------------


class _StridedArray:
    """Pickles as ``numpy.ndarray(shape, 'u1', b'\\0', 0, zero strides)``: one byte posing as many."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (np.ndarray, (self.shape, "u1", b"\x00", 0, (0,) * len(self.shape)))


def test_stride_bomb_batch_is_refused(tmp_path):
    blob = pickle.dumps({b"data": _StridedArray((300_000, 3072)), b"labels": _StridedArray((300_000,))},
                        protocol=2)
    assert len(blob) < 300  # a couple of hundred bytes claiming 300,000 images
    arrays = fx.write_cifar_folder(tmp_path, n_per_batch=10, n_test=10)
    (arrays["dir"] / "test_batch").write_bytes(blob)
    with pytest.raises(DatasetError) as e:
        data.CIFAR10(root=tmp_path, train=False)
    assert "test_batch" in str(e.value) and "numpy.ndarray called as a constructor" in str(e.value)


def test_arrays_must_be_c_contiguous_and_own_their_bytes():
    f_order = np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))
    with pytest.raises(DatasetError, match="C-contiguous"):
        safe_loads(pickle.dumps({b"data": f_order}, protocol=2), source="f.pkl")
    # _reconstruct only makes NumPy's empty placeholder, never a big uninitialised array
    blob = pickle.dumps(np.zeros(0, np.uint8), protocol=2).replace(b"K\x00\x85", b"J\x00\x00\x00\x40\x85", 1)
    with pytest.raises(DatasetError, match="_reconstruct"):
        safe_loads(blob)


# --- item 3: decompression bombs -------------------------------------------


def _peak_mib(fn) -> float:
    """Peak traced memory (MiB) while ``fn()`` runs; its DatasetError/ValueError is swallowed."""
    tracemalloc.start()
    try:
        fn()
    except ValueError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / MiB


def test_gzip_bomb_idx_stops_at_the_declared_size(tmp_path):
    """A small header followed by 256 MiB of zeros: refused after one byte too many."""
    good = fx.idx_bytes(np.zeros((10, 28, 28), np.uint8))
    zeros = gzip.compress(b"\0" * MiB, compresslevel=9)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(good) + zeros * 256)  # gzip members concatenate
    assert path.stat().st_size < MiB
    with pytest.raises(DatasetError, match="longer than its header says") as e:
        idx.read_idx(path, idx.IMAGES_MAGIC)
    assert str(path) in str(e.value)
    assert _peak_mib(lambda: idx.read_idx(path, idx.IMAGES_MAGIC)) < 16


def test_idx_header_claiming_more_than_the_file_can_hold(tmp_path):
    """A gzip file cannot inflate more than ~1032x: a header beyond that is refused unallocated."""
    header = bytes([0, 0, 8, 3]) + (100_000).to_bytes(4, "big") + (1000).to_bytes(4, "big") * 2
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + b"\0" * 1000))
    with pytest.raises(DatasetError, match="can hold at most") as e:
        idx.read_idx(path, idx.IMAGES_MAGIC)
    assert "(100000, 1000, 1000)" in str(e.value)
    assert _peak_mib(lambda: idx.read_idx(path, idx.IMAGES_MAGIC)) < 16


def test_real_sized_idx_memory_is_the_array(tmp_path):
    """Loading a legitimate file costs about the array itself, not the file plus copies."""
    images = np.random.default_rng(0).integers(0, 256, (20_000, 28, 28), dtype=np.uint8)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(fx.idx_bytes(images), compresslevel=1))
    out = []
    peak = _peak_mib(lambda: out.append(idx.read_idx(path, idx.IMAGES_MAGIC)))
    np.testing.assert_array_equal(out[0], images)
    assert peak < 2 * images.nbytes / MiB


def _npz_bomb(path, nbytes: int) -> None:
    """One deflated member whose .npy header declares ``nbytes`` uint8 zeros (a real, valid file)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("weights.npy", "w", force_zip64=True) as f:
            f.write(head.getvalue())
            for _ in range(nbytes // MiB):
                f.write(bytes(MiB))


def test_npz_bomb_is_refused_before_allocating(tmp_path):
    path = tmp_path / "model.npz"
    _npz_bomb(path, 256 * MiB)
    assert path.stat().st_size < 2 * MiB
    with pytest.raises(ValueError, match="decompression bomb") as e:
        mc.load(path)
    assert str(path) in str(e.value) and "weights.npy" in str(e.value)
    assert _peak_mib(lambda: mc.load(path)) < 16


def test_npz_entry_size_must_match_its_header(tmp_path):
    """A header declaring more than the zip entry holds is refused before reading."""
    path = tmp_path / "lie.npz"
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (1000, 1000)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", head.getvalue() + b"\0" * 16)
    with pytest.raises(ValueError, match=r"header says shape \(1000, 1000\).*holds 16 data bytes"):
        mc.load(path)
