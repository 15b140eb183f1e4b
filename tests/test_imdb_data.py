"""load_imdb and pad_sequences on small files in the format of Keras' imdb.npz; no network."""

import hashlib
import io
import urllib.request
from pathlib import Path

import pytest
import torch

from lessons.datasets import IMDB_SHA256, IMDB_URL, load_imdb, pad_sequences

np = pytest.importorskip("numpy")

TRAIN = [[1, 14, 22, 7], [5, 2], [9, 9, 30]]
TEST = [[4], [10, 3, 25, 1]]


def _object_array(rows, as_lists=False):
    """An object array of int64 arrays (Keras' file), or of plain lists."""
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = list(row) if as_lists else np.array(row, dtype=np.int64)
    return out


def _write_imdb_npz(path: Path, train=TRAIN, test=TEST, y_train=(1, 0, 1), y_test=(0, 1), as_lists=False) -> str:
    """Writes a small imdb.npz with numpy and returns its SHA-256."""
    np.savez(
        path,
        x_train=_object_array(train, as_lists),
        y_train=np.array(y_train, dtype=np.int64),
        x_test=_object_array(test, as_lists),
        y_test=np.array(y_test, dtype=np.int64),
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download in tests"))


@pytest.mark.parametrize("as_lists", [False, True])
def test_ids_are_shifted_and_start_with_the_start_char(tmp_path, as_lists):
    path = tmp_path / "imdb.npz"
    digest = _write_imdb_npz(path, as_lists=as_lists)
    with np.load(path, allow_pickle=True) as archive:  # the layout the loader must read
        first = archive["x_train"][0]
    assert isinstance(first, list) if as_lists else first.dtype == np.int64
    (x_train, y_train), (x_test, y_test) = load_imdb(path, sha256=digest)
    assert x_train == [[1, 4, 17, 25, 10], [1, 8, 5], [1, 12, 12, 33]]
    assert x_test == [[1, 7], [1, 13, 6, 28, 4]]
    assert y_train == [1, 0, 1] and y_test == [0, 1]
    assert all(type(w) is int for review in x_train + x_test for w in review)
    assert all(type(y) is int for y in y_train + y_test)


def test_other_start_and_index_conventions(tmp_path):
    path = tmp_path / "imdb.npz"
    digest = _write_imdb_npz(path)
    (x_train, _), (x_test, _) = load_imdb(path, sha256=digest, start_char=None, index_from=0)
    assert x_train == TRAIN and x_test == TEST
    (x_train, _), _ = load_imdb(path, sha256=digest, start_char=7, index_from=10)
    assert x_train[0] == [7, 11, 24, 32, 17]


def test_num_words_maps_rare_ids_to_the_oov_char(tmp_path):
    path = tmp_path / "imdb.npz"
    digest = _write_imdb_npz(path)
    (x_train, _), (x_test, _) = load_imdb(path, sha256=digest, num_words=10)
    # shifted: [[1, 4, 17, 25, 10], [1, 8, 5], [1, 12, 12, 33]] and [[1, 7], [1, 13, 6, 28, 4]]
    assert x_train == [[1, 4, 2, 2, 2], [1, 8, 5], [1, 2, 2, 2]]
    assert x_test == [[1, 7], [1, 2, 6, 2, 4]]
    assert max(w for review in x_train + x_test for w in review) < 10
    (x_train, _), _ = load_imdb(path, sha256=digest, num_words=10, oov_char=None)
    assert x_train == [[1, 4], [1, 8, 5], [1]]  # Keras drops the rare words when oov_char is None
    with pytest.raises(ValueError, match="num_words"):
        load_imdb(path, sha256=digest, num_words=0)


def test_checksum_is_checked(tmp_path):
    path = tmp_path / "imdb.npz"
    digest = _write_imdb_npz(path)
    load_imdb(path, sha256=digest)
    load_imdb(path, sha256=None)  # no check
    with pytest.raises(ValueError, match="SHA-256") as error:
        load_imdb(path)  # the real file's checksum does not match the small one
    message = str(error.value)
    assert str(path) in message and digest in message and IMDB_SHA256 in message
    assert IMDB_URL.endswith("/imdb.npz") and len(IMDB_SHA256) == 64


def test_missing_file_tells_how_to_download(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match=r"load_imdb\(download=True\)") as error:
        load_imdb(missing)
    assert str(missing) in str(error.value) and IMDB_URL in str(error.value)
    assert not missing.exists()


class _Response:
    """What urlopen returns: a context manager whose read(n) hands out the body in pieces,
    optionally failing after ``fail_after`` bytes (a dropped connection)."""

    def __init__(self, body: bytes, fail_after: int | None = None) -> None:
        self.body = io.BytesIO(body)
        self.fail_after = fail_after

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.body.tell() >= self.fail_after:
            raise ConnectionResetError("connection dropped")
        if self.fail_after is not None:
            size = min(size if size >= 0 else self.fail_after, self.fail_after - self.body.tell())
        return self.body.read(size)


def _serve(monkeypatch, body: bytes, fail_after: int | None = None) -> list:
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        return _Response(body, fail_after)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def test_download_writes_the_file_once(tmp_path, monkeypatch):
    source = tmp_path / "source.npz"
    digest = _write_imdb_npz(source)
    calls = _serve(monkeypatch, source.read_bytes())
    target = tmp_path / "cache" / "imdb.npz"
    (x_train, _), _ = load_imdb(target, download=True, sha256=digest, url="https://example.invalid/imdb.npz")
    assert calls == ["https://example.invalid/imdb.npz"]
    assert x_train[0] == [1, 4, 17, 25, 10]
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["imdb.npz"]  # no .part left
    load_imdb(target, download=True, sha256=digest)  # already there: no second download
    assert len(calls) == 1


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    source = tmp_path / "source.npz"
    digest = _write_imdb_npz(source)
    body = source.read_bytes()
    _serve(monkeypatch, body, fail_after=len(body) // 2)
    target = tmp_path / "cache" / "imdb.npz"
    with pytest.raises(ConnectionResetError):
        load_imdb(target, download=True, sha256=digest)
    assert list(target.parent.iterdir()) == []
    with pytest.raises(FileNotFoundError):  # the next call does not read a half file
        load_imdb(target)


def test_wrong_download_leaves_no_file(tmp_path, monkeypatch):
    source = tmp_path / "source.npz"
    digest = _write_imdb_npz(source)
    _serve(monkeypatch, source.read_bytes()[:-10])  # truncated body, no error from the server
    target = tmp_path / "cache" / "imdb.npz"
    with pytest.raises(ValueError, match="SHA-256") as error:
        load_imdb(target, download=True, sha256=digest)
    assert digest in str(error.value) and str(target) in str(error.value)
    assert list(target.parent.iterdir()) == []


def test_reuters_download_uses_the_same_path(tmp_path, monkeypatch):
    from lessons.datasets import load_reuters

    source = tmp_path / "source.npz"
    x = np.empty(2, dtype=object)
    x[0], x[1] = [1, 14, 22], [1, 2]
    np.savez(source, x=x, y=np.array([3, 45], dtype=np.int64))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    body = source.read_bytes()
    target = tmp_path / "cache" / "reuters.npz"
    _serve(monkeypatch, body, fail_after=len(body) // 2)
    with pytest.raises(ConnectionResetError):
        load_reuters(target, download=True, sha256=digest)
    assert list(target.parent.iterdir()) == []
    _serve(monkeypatch, body)
    assert load_reuters(target, download=True, sha256=digest) == ([[1, 14, 22], [1, 2]], [3, 45])
    assert sorted(p.name for p in target.parent.iterdir()) == ["reuters.npz"]
    with pytest.raises(FileNotFoundError, match=r"load_reuters\(download=True\)"):
        load_reuters(tmp_path / "missing.npz")


def test_bad_labels_and_lengths_are_refused(tmp_path):
    path = tmp_path / "imdb.npz"
    _write_imdb_npz(path, y_train=(1, 2, 0))
    with pytest.raises(ValueError, match="0 or 1.*2"):
        load_imdb(path, sha256=None)
    _write_imdb_npz(path, y_test=(0, 1, 1))
    with pytest.raises(ValueError, match="2 test reviews but 3 labels"):
        load_imdb(path, sha256=None)


def test_pad_sequences_keeps_the_last_ids_and_pads_in_front():
    out = pad_sequences([[1, 2, 3, 4, 5], [6, 7], [], [8, 9, 10]], maxlen=3)
    assert out.dtype == torch.long and out.shape == (4, 3)
    assert out.tolist() == [[3, 4, 5], [0, 6, 7], [0, 0, 0], [8, 9, 10]]
    assert pad_sequences([[6, 7]], maxlen=4, value=-1).tolist() == [[-1, -1, 6, 7]]
    assert pad_sequences([], maxlen=5).shape == (0, 5)
    assert pad_sequences([[1, 2, 3]], maxlen=1).tolist() == [[3]]
    for maxlen in (0, -2):
        with pytest.raises(ValueError, match="maxlen"):
            pad_sequences([[1]], maxlen=maxlen)
