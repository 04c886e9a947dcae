"""Save/load round trip and every way a file can be wrong."""

import zipfile

import numpy as np
import pytest

import fineq
from fineq.synthetic import heavy_tailed


@pytest.fixture()
def q():
    return fineq.quantize(heavy_tailed(5, 77, seed=9))


def test_round_trip(tmp_path, q):
    path = fineq.save(q, tmp_path / "w.fineq.npz")
    r = fineq.load(path)
    assert r.shape == q.shape and r.mode == q.mode
    assert np.array_equal(r.packed, q.packed) and np.array_equal(r.scales, q.scales)
    assert not (tmp_path / "w.fineq.npz.tmp").exists()


def test_truncated(tmp_path, q):
    path = fineq.save(q, tmp_path / "w.npz")
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises(fineq.FormatError):
            fineq.load(path)


def test_corrupt_byte(tmp_path, q):
    path = fineq.save(q, tmp_path / "w.npz")
    data = bytearray(path.read_bytes())
    # flip a byte inside the stored packed array: the member's CRC no longer matches
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("packed.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(fineq.FormatError):
        fineq.load(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(fineq.FormatError, match="not a FineQ file"):
        fineq.load(path)


def test_foreign_file(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(fineq.FormatError):
        fineq.load(path)


def _rewrite(path, **changes):
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del d[k]
    np.savez(path, **d)


def test_unknown_version(tmp_path, q):
    path = fineq.save(q, tmp_path / "w.npz")
    _rewrite(path, format_version=np.int64(99))
    with pytest.raises(fineq.FormatError, match="version 99"):
        fineq.load(path)


def test_missing_key_and_bad_shape(tmp_path, q):
    path = fineq.save(q, tmp_path / "w.npz")
    _rewrite(path, scales=None)
    with pytest.raises(fineq.FormatError, match="lacks scales"):
        fineq.load(path)
    path = fineq.save(q, tmp_path / "w2.npz")
    _rewrite(path, shape=np.array([5, 200]))
    with pytest.raises(fineq.FormatError, match="does not match"):
        fineq.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fineq.load(tmp_path / "nope.npz")


def test_safetensors_tensors_are_mapped_in_place_and_bad_files_named(tmp_path, q):
    """stlayout maps one tensor of a safetensors file (the library's own writer) without reading it: the same
    values, a read-only view of a memory map; a missing tensor, a wrong dtype size, a header pointing past the end
    and a truncated file are FormatErrors naming the file."""
    import mmap

    from safetensors.numpy import save_file

    from fineq.format import stlayout

    path = tmp_path / "t.safetensors"
    other = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file({"a.packed": q.packed, "b": other}, str(path))
    a = stlayout.map_array(path, "a.packed", np.uint8)
    assert np.array_equal(a, q.packed) and not a.flags.writeable and not a.flags.owndata
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base.obj if isinstance(base, memoryview) else base, mmap.mmap)
    m = fineq.QuantizedMatrix(a, q.scales, q.shape, q.mode, copy=False)
    assert m == q and np.shares_memory(m.packed, a)
    assert np.array_equal(stlayout.map_array(path, "b", np.int32).view(np.float32), other)
    for name, dtype, what in (("c", np.uint8, "no tensor"), ("b", np.float64, "holds 24 bytes")):
        with pytest.raises(fineq.FormatError, match=what) as e:
            stlayout.map_array(path, name, dtype)
        assert str(path) in str(e.value)
    data = path.read_bytes()
    for cut in (4, 20, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(fineq.FormatError) as e:
            stlayout.map_array(path, "b", np.float32)
        assert str(path) in str(e.value)
