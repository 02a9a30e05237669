"""The restricted unpickler admits the CIFAR format and refuses (without running) anything else."""

import builtins
import pickle

import numpy as np
import pytest

from minicnn.data import DatasetError, UnsafePickleError, safe_load, safe_loads
from minicnn.data.safe_pickle import ALLOWED_GLOBALS

try:
    import data_fixtures as fx
except ImportError:  # tests/ imported as a package
    from tests import data_fixtures as fx


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_admits_format_objects(protocol):
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": [1, 2, 3],
           b"names": [b"a", "b"], "n": 10**20, "f": 1.5, "t": (None, True), "s": np.int64(7),
           "arr": np.array([1.0, 2.0], dtype=">f8")}
    out = safe_loads(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(out[b"data"], obj[b"data"])
    assert out["labels"] == [1, 2, 3] and out[b"names"] == [b"a", "b"] and out["n"] == 10**20
    assert out["s"] == 7 and out["t"] == (None, True)
    np.testing.assert_array_equal(out["arr"], [1.0, 2.0])


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_refuses_os_mkdir_without_running_it(tmp_path, protocol):
    marker = tmp_path / "created-by-pickle"
    blob = fx.evil_pickle_bytes(marker, protocol=protocol)
    # sanity: the plain unpickler really would run it
    with pytest.raises(UnsafePickleError) as e:
        safe_loads(blob, source="evil.pkl")
    assert not marker.exists()
    msg = str(e.value)
    assert "evil.pkl" in msg and "mkdir" in msg and "refused" in msg
    assert isinstance(e.value, DatasetError) and isinstance(e.value, ValueError)
    assert isinstance(e.value, pickle.UnpicklingError)
    pickle.loads(blob)
    assert marker.exists(), "fixture must be a real exploit, else the test proves nothing"


class _EvalPayload:
    def __reduce__(self):
        return (builtins.eval, ("__import__('os').getcwd()",))


class _ImportPayload:
    def __reduce__(self):
        return (__import__, ("os",))


@pytest.mark.parametrize("payload", [_EvalPayload(), _ImportPayload(), np.random.default_rng(0),
                                     {"x": {1, 2}}, bytearray(b"ab")], ids=lambda p: type(p).__name__)
def test_refuses_other_globals(payload):
    with pytest.raises(UnsafePickleError):
        safe_loads(pickle.dumps(payload, protocol=2))


def test_codecs_encode_only_latin1():
    # protocol 2 stores bytes via _codecs.encode(str, 'latin1'); any other codec is refused
    blob = pickle.dumps(b"\x00\xff", protocol=2)
    assert safe_loads(blob) == b"\x00\xff"
    for codec in (b"rot13 ", b"base64", b"nosuch"):
        with pytest.raises(UnsafePickleError, match="only latin-1"):
            safe_loads(blob.replace(b"latin1", codec))


def test_persistent_id_refused():
    import io

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "pid" if obj == "secret" else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(["secret"])
    with pytest.raises(UnsafePickleError, match="persistent"):
        safe_loads(buf.getvalue())


def test_truncated_and_garbage(tmp_path):
    blob = pickle.dumps({b"data": np.zeros((10, 10), np.uint8)}, protocol=4)
    with pytest.raises(DatasetError, match="truncated"):
        safe_loads(blob[:-20], source="x")
    p = tmp_path / "junk"
    p.write_bytes(b"\x80\x04junk")
    with pytest.raises(DatasetError, match="junk"):
        safe_load(p)
    with pytest.raises(DatasetError, match="cannot read"):
        safe_load(tmp_path / "missing")


def test_allow_list_is_small():
    modules = {m for m, _ in ALLOWED_GLOBALS if (m, _) not in {("__builtin__", "bytes"), ("builtins", "bytes")}}
    assert modules <= {"numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                       "numpy.core.numeric", "numpy._core.numeric", "_codecs"}
    assert {n for m, n in ALLOWED_GLOBALS if m in ("__builtin__", "builtins")} <= {"bytes"}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_empty_array_loads(protocol):
    """Protocol 2 writes b"" as ``__builtin__.bytes()``: a legitimate empty batch must load."""
    batch = {b"data": np.zeros((0, 3072), np.uint8), b"labels": [], b"empty": b""}
    out = safe_loads(pickle.dumps(batch, protocol=protocol), source="empty.pkl")
    assert out[b"data"].shape == (0, 3072) and out[b"data"].dtype == np.uint8
    assert out[b"labels"] == [] and out[b"empty"] == b""


def test_bytes_global_only_makes_empty_bytes():
    """``bytes(10**9)`` through the admitted name would allocate a gigabyte: refused, file named."""
    blob = b"\x80\x02c__builtin__\nbytes\nJ\x00\xca\x9a\x3b\x85R."
    with pytest.raises(UnsafePickleError, match=r"big\.pkl.*bytes called with arguments"):
        safe_loads(blob, source="big.pkl")


@pytest.mark.parametrize("payload,opcode", [({1, 2}, "EMPTY_SET"), (frozenset({1}), "FROZENSET")])
def test_opcodes_a_dataset_never_uses_are_refused(payload, opcode):
    with pytest.raises(UnsafePickleError, match=opcode):
        safe_loads(pickle.dumps({"x": payload}, protocol=4), source="sets.pkl")


def test_object_arrays_refused():
    blob = pickle.dumps(np.array([1, "a"], dtype=object), protocol=2)
    with pytest.raises(UnsafePickleError, match="holds Python objects"):
        safe_loads(blob)


def _py2_batch(pixels: bytes, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the official files (protocol 2, ``str`` opcodes,
    NumPy 1 names, memo indices from 1), built opcode by opcode."""
    n = len(labels)
    ints = b"".join(b"K" + bytes([v]) for v in labels)
    return (b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04"
            b"K\x00\x85U\x01b\x87Rq\x05(K\x01K" + bytes([n]) + b"M\x00\x0c\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01"
            b"\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
            + len(pixels).to_bytes(4, "little") + pixels + b"tbU\x06labelsq\x08]q\t(" + ints
            + b"eU\x0bbatch_labelq\nU\x15training batch 1 of 5u.")


def test_python2_cpickle_batch_loads():
    pixels = bytes(range(256)) * 24  # 2 images of 3072 bytes
    out = safe_loads(_py2_batch(pixels, [3, 7]), source="data_batch_1")
    assert out[b"labels"] == [3, 7] and out[b"batch_label"] == b"training batch 1 of 5"
    assert out[b"data"].shape == (2, 3072) and out[b"data"].dtype == np.uint8
    assert out[b"data"].tobytes() == pixels
