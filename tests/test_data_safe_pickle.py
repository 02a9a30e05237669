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
    modules = {m for m, _ in ALLOWED_GLOBALS}
    assert modules <= {"numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                       "numpy.core.numeric", "numpy._core.numeric", "_codecs"}
