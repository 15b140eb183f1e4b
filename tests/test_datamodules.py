"""The LightningDataModules of lessons/datasets.py: sizes, disjoint splits, batch shapes and padding,
reproducibility, bad arguments, and training with pl.Trainer. No network: IMDB and Reuters are read
from small files in Keras' format."""

import pickle
import urllib.request
import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DistributedSampler

import lightning_checks as lk
from lessons import datasets as ds
from lessons.rnn import ManyToMany, ManyToOne, RNNSystem

np = pytest.importorskip("numpy")
from test_imdb_data import _object_array, _write_imdb_npz  # noqa: E402  (the IMDB tests' small files)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download in tests"))


REUTERS_X = [[1, 14, 22, 7], [5, 2], [9, 9, 30], [4], [10, 3, 25, 1, 8], [6, 6], [2, 40, 3], [11], [12, 13], [7, 7, 7, 7, 7, 7]]
REUTERS_Y = [3, 45, 0, 1, 3, 3, 2, 0, 45, 1]


def _reuters(tmp_path):
    path = tmp_path / "reuters.npz"
    np.savez(path, x=_object_array(REUTERS_X), y=np.array(REUTERS_Y, dtype=np.int64))
    return path


def _imdb(tmp_path):
    path = tmp_path / "imdb.npz"
    _write_imdb_npz(path)
    return path


# name -> (factory, sizes of train / val / test); the tiny files' sizes follow text_split and val_fraction
CASES = {
    "char": (lambda tmp: ds.CharSequenceData(), (1, 1, 1)),
    "windows": (lambda tmp: ds.SequenceWindowsData(batch_size=4), (6, 6, 6)),
    "multiplication": (lambda tmp: ds.MultiplicationData(count=300, fit_count=256), (205, 51, 44)),
    "weather": (lambda tmp: ds.WeatherData(step=3), (15861, 3538, 3661)),
    "bbc": (lambda tmp: ds.BBCNewsData(bucket=3), (1780, 222, 223)),
    "reuters": (lambda tmp: ds.ReutersData(_reuters(tmp), sha256=None, num_words=20, batch_size=3), (8, 1, 1)),
    "imdb": (lambda tmp: ds.IMDBData(_imdb(tmp), sha256=None, val_fraction=1 / 3, batch_size=2), (2, 1, 2)),
    "lee": (lambda tmp: ds.Word2VecCorpusData("lee", bucket=2), (828, 103, 105)),
    "korean": (lambda tmp: ds.Word2VecCorpusData("korean", min_count=3), None),
    "pos": (lambda tmp: ds.KiwiPosData(), (577, 124, 124)),
}
TEXT = {"bbc", "reuters", "imdb", "lee", "korean", "pos"}
PER_TOKEN = {"lee", "korean", "pos"}


def _batches(data, split):
    loader = {"train": data.train_dataloader, "val": data.val_dataloader, "test": data.test_dataloader,
              "predict": data.predict_dataloader}[split]()
    return list(loader)


@pytest.mark.parametrize("name", CASES)
def test_splits_have_their_sizes_and_batches_their_shapes(name, tmp_path):
    factory, sizes = CASES[name]
    data = factory(tmp_path)
    data.setup("fit")
    got = tuple(len(data.splits[s]) for s in ("train", "val", "test"))
    if sizes is not None:
        assert got == sizes
    assert min(got) > 0
    for split in ("train", "val", "test", "predict"):
        batches = _batches(data, split)
        assert sum(len(b[-1]) for b in batches) == got[{"train": 0, "val": 1, "test": 2, "predict": 2}[split]]
        assert max(len(b[-1]) for b in batches) <= data.batch_size
        for batch in batches:
            _check_batch(name, batch)
    if name in TEXT:  # the splits are disjoint parts of one source list (IMDB's test is a file of its own)
        parts = [set(data.indices[s].tolist()) for s in ("train", "val", "test")]
        assert not parts[0] & parts[1] and (name == "imdb" or not (parts[0] | parts[1]) & parts[2])
        assert all(len(p) == n for p, n in zip(parts, got))


def _check_batch(name, batch):
    if name not in TEXT:
        x, y = batch
        assert x.dtype == torch.float32 and x.dim() == 3 and len(y) == len(x)
        return
    x, lengths, y = batch
    N, T = x.shape
    assert x.dtype == lengths.dtype == y.dtype == torch.int64
    assert lengths.shape == (N,) and int(lengths.max()) == T and int(lengths.min()) >= 1
    real = torch.arange(T) < lengths.unsqueeze(1)  # (N, T): True before each sequence's end
    assert (x[~real] == 0).all()  # padding only at the end
    if name in PER_TOKEN:
        assert y.shape == (N, T)
        assert (y[~real] == -100).all() and (y[real] >= 0).all()
    else:
        assert y.shape == (N,)


def test_batches_hold_the_items_unchanged():
    data = ds.BBCNewsData(batch_size=8)
    x, lengths, y = next(iter(data.val_dataloader()))
    texts, labels = ds.load_bbc_news()
    for row, i in enumerate(data.indices["val"][:8].tolist()):
        assert x[row, : lengths[row]].tolist() == data.vocab.encode(texts[i])
        assert int(y[row]) == labels[i]
    train = [i for i in ds.text_split(len(texts))[0].tolist()]
    assert data.vocab.words == ds.WordVocab([texts[i] for i in train], size=1000).words
    assert data.num_classes == 5 and len(data.vocab) == 1000


def test_next_word_targets_are_the_inputs_shifted():
    data = ds.Word2VecCorpusData("lee", min_count=2, steps=16)
    data.setup()
    corpus = ds.lee_corpus()
    counts = {}
    for text in corpus:
        for w in text:
            counts[w] = counts.get(w, 0) + 1
    kept = [w for w, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= 2]  # sorted() is stable
    assert data.words[0] == "<pad>" and data.words[1:] == kept
    assert data.counts.tolist() == [0] + [counts[w] for w in kept]
    for ids, target in data.splits["train"][:50]:
        assert len(ids) == len(target) <= 16
        assert ids[1:].tolist() == target[:-1].tolist()
    first = [data.words.index(w) for w in corpus[0] if counts[w] >= 2][:17]
    assert any(ids.tolist() == first[:16] and t.tolist() == first[1:] for ids, t in data.splits["train"] + data.splits["val"] + data.splits["test"])


def test_tagging_matches_kiwi_pos_tagging():
    data = ds.KiwiPosData(batch_size=5)
    x, lengths, y = next(iter(data.test_dataloader()))
    torch.testing.assert_close(x, data.tagging.test[0][:5])
    torch.testing.assert_close(y, data.tagging.test[1][:5])
    assert lengths.tolist() == [32] * 5


def test_keras_word_ids_for_reuters_and_imdb(tmp_path):
    data = ds.ReutersData(_reuters(tmp_path), sha256=None, num_words=20, maxlen=3, fractions=(0.5, 0.5))
    data.setup()
    items = [(ids.tolist(), label) for split in data.splits.values() for ids, label in split]
    keras = [([1] + [w + 3 if w + 3 < 20 else 2 for w in x])[-3:] for x in REUTERS_X]  # start, shift, oov, last 3
    assert sorted(items) == sorted(zip(keras, REUTERS_Y))
    assert data.vocab_size == 20 and data.num_classes == 46
    imdb = ds.IMDBData(_imdb(tmp_path), sha256=None, num_words=None, val_fraction=0.0)
    x, lengths, y = next(iter(imdb.test_dataloader()))
    assert x.tolist() == [[1, 7, 0, 0, 0], [1, 13, 6, 28, 4]] and lengths.tolist() == [2, 5] and y.tolist() == [0, 1]
    assert imdb.vocab_size == 34 and len(imdb.splits["val"]) == 0


def test_download_happens_in_prepare_data_only_when_asked(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ds, "load_imdb", lambda *a, **k: calls.append((a, k)))
    ds.IMDBData(tmp_path / "x.npz").prepare_data()
    assert calls == []
    ds.IMDBData(tmp_path / "x.npz", download=True, sha256=None).prepare_data()
    assert calls == [((tmp_path / "x.npz",), {"download": True, "sha256": None})]
    with pytest.raises(FileNotFoundError, match=r"download=True"):
        ds.ReutersData(tmp_path / "missing.npz").setup()


def test_pad_batch_pads_at_the_end_with_zeros_and_minus_100():
    x, lengths, y = ds.pad_batch([(torch.tensor([4, 5]), torch.tensor([1, 0])), ([6, 7, 8], [2, 2, 1]), ([9], [3])])
    assert x.tolist() == [[4, 5, 0], [6, 7, 8], [9, 0, 0]]
    assert lengths.tolist() == [2, 3, 1] and lengths.dtype == torch.int64
    assert y.tolist() == [[1, 0, -100], [2, 2, 1], [3, -100, -100]]
    with pytest.raises(ValueError, match="at least one token"):
        ds.pad_batch([([1], 0), ([], 1)])
    with pytest.raises(ValueError, match="one target per token"):
        ds.pad_batch([([1, 2], [0]), ([3], [1])])
    with pytest.raises(ValueError, match="at least one"):
        ds.pad_batch([])


def test_length_buckets_use_every_index_once_and_cut_padding():
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 200, (1000,), generator=g).tolist()
    sampler = torch.utils.data.RandomSampler(range(1000), generator=torch.Generator().manual_seed(0))
    buckets = ds.LengthBucketSampler(sampler, 16, lengths=lengths, bucket=50, seed=0)
    batches = list(buckets)
    assert len(batches) == len(buckets) == 63
    assert sorted(i for b in batches for i in b) == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    plain = list(torch.utils.data.BatchSampler(sampler, 16, False))
    assert padded < 0.6 * sum(len(b) * max(lengths[i] for i in b) for b in plain)
    dropped = ds.LengthBucketSampler(range(1000), 16, drop_last=True, lengths=lengths)
    assert len(list(dropped)) == len(dropped) == 62 and all(len(b) == 16 for b in dropped)
    again = ds.LengthBucketSampler(torch.utils.data.RandomSampler(range(1000), generator=torch.Generator().manual_seed(0)),
                                   16, lengths=lengths, bucket=50, seed=0)
    assert list(again) == batches  # the seed fixes the batches
    # under DDP Lightning rebuilds it around a DistributedSampler: each process buckets its own share
    shares = [list(ds.LengthBucketSampler(DistributedSampler(range(1000), 2, r, seed=0), 16, lengths=lengths))
              for r in (0, 1)]
    assert len(shares[0]) == len(shares[1])
    assert sorted(i for share in shares for b in share for i in b) == list(range(1000))


@pytest.mark.parametrize("name", ["multiplication", "bbc", "lee"])
def test_the_seed_fixes_the_batches_and_no_global_state_is_used(name, tmp_path):
    factory, _ = CASES[name]
    a, b = factory(tmp_path), factory(tmp_path)
    state = torch.get_rng_state()
    first, second = _batches(a, "train"), _batches(b, "train")
    _batches(a, "val")
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    for p, q in zip(first, second, strict=True):
        for s, t in zip(p, q):
            torch.testing.assert_close(s, t)
    loader = a.train_dataloader()
    epochs = [torch.cat([batch[-1].flatten() for batch in loader]) for _ in range(2)]
    assert not torch.equal(*epochs)  # a new order every epoch
    assert pickle.loads(pickle.dumps(a)).splits.keys() == a.splits.keys()  # ddp_spawn pickles the module


def test_bad_arguments_are_refused(tmp_path):
    bad = [
        lambda: ds.MultiplicationData(batch_size=0),
        lambda: ds.SequenceWindowsData(num_workers=-1),
        lambda: ds.BBCNewsData(bucket=-1),
        lambda: ds.BBCNewsData(fractions=(0.9, 0.2)),
        lambda: ds.BBCNewsData(vocab_size=2),
        lambda: ds.CharSequenceData("h"),
        lambda: ds.MultiplicationData(validation_fraction=1.0),
        lambda: ds.WeatherData(lookback=10, step=3),
        lambda: ds.IMDBData(val_fraction=-0.1),
        lambda: ds.ReutersData(maxlen=0),
        lambda: ds.Word2VecCorpusData("wiki"),
        lambda: ds.KiwiPosData(steps=1),
        lambda: ds.LengthBucketSampler(range(4), 2, bucket=0),
        lambda: ds.SequenceWindowsData().setup("train"),
    ]
    for make in bad:
        with pytest.raises(ValueError, match="expected"):
            make()


class Embedded(nn.Module):
    """Token ids (N, T) → embedding (N, T, D) → a sequence model that takes (x, lengths)."""

    def __init__(self, vocab_size: int, dim: int, model: nn.Module) -> None:
        super().__init__()
        self.embed, self.model = nn.Embedding(vocab_size, dim, padding_idx=0), model

    def forward(self, x, lengths=None):
        return self.model(self.embed(x), lengths)


def _fit(system, data, **kwargs):
    trainer = lk.trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec).*")
        trainer.fit(system, datamodule=data)
    return trainer


def test_trainer_fits_text_classification_with_lengths():
    data = ds.BBCNewsData(maxlen=200, batch_size=16, bucket=5)
    data.setup("fit")
    pl.seed_everything(0, verbose=False)
    model = Embedded(len(data.vocab), 8, ManyToOne(nn.LSTM(8, 16, batch_first=True), data.num_classes))
    system = RNNSystem(model, lr=0.01)
    trainer = _fit(system, data)
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(trainer.callback_metrics)
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    predictions = lk.trainer(limit_predict_batches=2).predict(system, datamodule=data)  # the test split, in order
    assert [tuple(p.shape) for p in predictions] == [(16, 5), (16, 5)]


def test_trainer_fits_tagging_and_forecasting():
    data = ds.KiwiPosData(batch_size=16)
    data.setup()
    pl.seed_everything(0, verbose=False)
    model = Embedded(len(data.tagging.forms), 8, ManyToMany(nn.LSTM(8, 16, batch_first=True), len(data.tagging.tags)))
    assert torch.isfinite(_fit(RNNSystem(model), data).callback_metrics["val_acc"])
    weather = ds.WeatherData(step=3, batch_size=64)
    system = RNNSystem(ManyToOne(nn.LSTM(8, 8, batch_first=True), 1), task="regression")
    trainer = _fit(system, weather)
    assert float(trainer.callback_metrics["val_mae"]) * weather.temp_std > 0  # a normalised MAE, in °C


def test_ddp_with_length_buckets(tmp_path):
    data = ds.Word2VecCorpusData("lee", steps=8, batch_size=8, bucket=4)
    data.setup()
    pl.seed_everything(0, verbose=False)
    model = Embedded(len(data.words), 4, ManyToMany(nn.GRU(4, 8, batch_first=True), len(data.words)))
    trainer = lk.spawned(lambda: _fit(RNNSystem(model), data, strategy="ddp_fork", devices=2, default_root_dir=tmp_path))
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
