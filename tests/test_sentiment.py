"""Tests of lessons/sentiment.py and its data (lessons/datasets.py, ``# --- sentiment``): the vocabulary
(min_freq, <pad>, <unk>) and Kiwi's morphemes agree between the lesson and the data module; the NSMC file
is checked and split 40,000 / 5,000 / 5,000; bucketing cuts padding; padding never changes an answer and
a bidirectional model reads both ends; bad input is refused clearly (empty review, only unknown tokens,
a checkpoint of another vocabulary); the system is complete; the command line trains and then labels
a reader's sentence; the benchmark's quick mode writes the committed formats, and the page's claims
hold in the committed full run (``-m slow`` runs it again)."""

import gzip
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import datasets, sentiment
from lessons.bidirectional import Bidirectional
from lessons.lstm import LSTM
from lessons.sentiment import (BagOfWords, ReviewData, SentimentClassifier, SentimentSystem, Vocab, classify,
                               encode_reviews, toy_reviews)

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ["재미없다", "재미없었다", "재미없네요ㅠㅠ", "배우 연기가 최고예요!!", "ㅋㅋㅋ 완전 꿀잼"]


# ---- tokens and vocabulary ----

def test_vocabulary_keeps_frequent_tokens_after_pad_and_unk():
    vocab = Vocab.build([["좋", "다"], ["좋", "네요"], ["별로", "다"], ["좋"]], min_freq=2)
    assert vocab.words == ["<pad>", "<unk>", "좋", "다"]
    assert vocab.encode(["좋", "네요", "다"]) == [2, Vocab.UNK, 3]
    assert vocab.unknown_rate([["좋", "네요"], ["다", "다"]]) == 0.25
    assert Vocab.build([["a", "b"]], min_freq=1).words == ["<pad>", "<unk>", "a", "b"]  # ties: first seen


def test_vocabulary_refuses_a_word_list_without_pad_and_unk():
    with pytest.raises(ValueError, match="'<pad>', '<unk>'"):
        Vocab(["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["<pad>", "<unk>", "a", "a"])


def test_lesson_and_data_module_agree_on_morphemes_and_vocabulary():
    assert [sentiment.kiwi_tokenize(t) for t in REVIEWS] == [datasets.kiwi_morphemes(t) for t in REVIEWS]
    tokens = [datasets.kiwi_morphemes(t) for t in REVIEWS]
    assert datasets.vocabulary(tokens, 2) == Vocab.build(tokens, 2).words
    # the conjugations share one morpheme; by spaces they are three different words
    assert {t[0] for t in tokens[:3]} == {"재미없"} and len({t.split()[0] for t in REVIEWS[:3]}) == 3


def test_nsmc_file_is_checked_and_split_with_a_fixed_seed(tmp_path):
    texts, labels = datasets.load_nsmc()
    assert len(texts) == 50000 and sum(labels) == 25000
    parts = datasets.nsmc_split()
    assert [len(p) for p in parts] == [40000, 5000, 5000]
    assert len(set(torch.cat(parts).tolist())) == 50000
    assert all(torch.equal(a, b) for a, b in zip(parts, datasets.nsmc_split()))
    broken = tmp_path / "nsmc.tsv.gz"
    broken.write_bytes(gzip.compress(b"id\tdocument\tlabel\n1\tok\t1\n"))
    with pytest.raises(ValueError, match="nsmc.tsv.gz: SHA-256"):
        datasets.load_nsmc(str(broken))
    with pytest.raises(FileNotFoundError, match="gone.tsv.gz"):
        datasets.load_nsmc(str(tmp_path / "gone.tsv.gz"))


def test_data_module_splits_and_buckets_by_length():
    data = datasets.NSMCData(tokenizer="spaces", batch_size=128)
    data.setup()
    assert {s: len(d) for s, d in data.splits.items()} == {"train": 40000, "val": 5000, "test": 5000}
    assert data.words[:2] == ["<pad>", "<unk>"]

    def padding(loader):
        return sum(int(x.numel() - lengths.sum()) for x, lengths, _ in loader)

    bucketed = padding(data.train_dataloader())
    data.bucket = 0
    plain = padding(data.train_dataloader())
    assert bucketed < plain / 5
    x, lengths, y = next(iter(data.val_dataloader()))
    assert x.dtype == torch.long and tuple(y.shape) == (128,) and int(lengths.max()) == x.shape[1]


# ---- models: padding never changes an answer; both ends of a bidirectional layer ----

def _models():
    torch.manual_seed(0)
    return [BagOfWords(20), SentimentClassifier(20, 6, nn.LSTM(6, 5, batch_first=True)),
            SentimentClassifier(20, 6, nn.GRU(6, 5, batch_first=True, bidirectional=True)),
            SentimentClassifier(20, 6, Bidirectional(LSTM(6, 5, batch_first=True), LSTM(6, 5, batch_first=True)))]


@pytest.mark.parametrize("index", range(4))
def test_padding_never_changes_the_answer(index):
    model = _models()[index].double().eval()
    x = torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 10, 11]])
    both = model(x, torch.tensor([3, 6]))
    alone = model(x[:1, :3], torch.tensor([3]))
    torch.testing.assert_close(both[:1], alone, atol=1e-12, rtol=0)
    assert tuple(both.shape) == (2, 1)


def test_bidirectional_classifier_reads_the_state_at_both_ends():
    torch.manual_seed(0)
    model = SentimentClassifier(20, 6, nn.LSTM(6, 5, batch_first=True, bidirectional=True)).double().eval()
    tokens = torch.tensor([[3, 4, 5, 6]])
    out, _ = model.rnn(model.embed(tokens))  # (1, 4, 10)
    h = torch.cat([out[0, -1, :5], out[0, 0, 5:]])  # forward at the last token, backward at the first
    torch.testing.assert_close(model(tokens), model.head(h).view(1, 1))


def test_models_refuse_float_or_flat_tokens():
    for model in _models()[:2]:
        with pytest.raises(ValueError, match=r"expected tokens of shape \(N, T\) holding integer ids"):
            model(torch.zeros(2, 3))
        with pytest.raises(ValueError, match=r"\(N, T\)"):
            model(torch.zeros(3, dtype=torch.long))


# ---- bad input ----

def test_empty_or_unknown_reviews_are_refused():
    vocab = Vocab(["<pad>", "<unk>", "좋", "다"])
    x, lengths = encode_reviews(["좋 다", "좋"], vocab, str.split)
    assert x.tolist() == [[2, 3], [2, 0]] and lengths.tolist() == [2, 1]
    for text in ("", "   "):
        with pytest.raises(ValueError, match="at least one token"):
            encode_reviews([text], vocab, str.split)
    with pytest.raises(ValueError, match=r"none of the tokens \['별로'\].*vocabulary \(4 words\)"):
        encode_reviews(["별로"], vocab, str.split)


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    words = ["<pad>", "<unk>", "좋", "다"]
    with pytest.raises(ValueError, match="one row per word \\(4\\), got 5 rows"):
        SentimentSystem(BagOfWords(5), words=words)
    system = SentimentSystem(BagOfWords(4), words=words, tokenizer="spaces")
    path = tmp_path / "s.ckpt"
    lk._fit(lk.trainer(max_epochs=1), system, DataLoader(TensorDataset(torch.tensor([[2, 3]]), torch.tensor([1]))))
    system.trainer.save_checkpoint(path)
    with pytest.raises(ValueError, match="different vocabularies"):
        SentimentSystem.load_from_checkpoint(path, model=BagOfWords(7))
    with pytest.raises(ValueError, match="is not this vocabulary"):
        classify(system, ["좋 다"], vocab=Vocab(words + ["별로"]))
    with pytest.raises(ValueError, match="saved with its vocabulary"):
        classify(SentimentSystem(BagOfWords(4)), ["좋 다"])
    with pytest.raises(ValueError, match="tokenizer"):
        SentimentSystem(BagOfWords(4), tokenizer="bpe")


def test_accuracy_thresholds_the_logit_at_zero_and_ignores_minus_100():
    system = SentimentSystem(BagOfWords(4))
    with torch.no_grad():
        system.model.bias.fill_(0.3)  # σ(0.3) > 0.5: every review "positive"
    system._step((torch.tensor([[2], [3], [2]]), torch.tensor([1, 1, 1]), torch.tensor([1, 0, -100])), "val")
    assert float(system.metrics["val_metric"].compute()) == 0.5


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _data(N=16, T=5, same_length=False):
    g = torch.Generator().manual_seed(0)
    lengths = torch.full((N,), T) if same_length else torch.randint(1, T + 1, (N,), generator=g)
    x = torch.randint(2, 12, (N, T), generator=g) * (torch.arange(T) < lengths.unsqueeze(1))
    return TensorDataset(x, lengths, (x == 3).any(1).long())


def _model(dropout=0.1):
    return SentimentClassifier(12, 4, nn.LSTM(4, 5, batch_first=True), dropout=dropout)


def _system(dropout=0.1):
    pl.seed_everything(0, verbose=False)
    return SentimentSystem(_model(dropout), words=["<pad>", "<unk>", *"abcdefghij"], lr=0.01)


def test_predict():
    lk.check_predict(_system, DataLoader(_data(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_data(), batch_size=4)
    lk.check_checkpoint(_system, loader, loader, tmp_path, model=_model())


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_data(), batch_size=4)
    lk.check_resume(lambda: _system(dropout=0.0), loader, loader, tmp_path)  # dropout's draws are not checkpointed


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(lambda: _system(dropout=0.0), _data(same_length=True), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, DataLoader(_data(), batch_size=4))


def test_gpu():
    lk.check_gpu(_system, DataLoader(_data(), batch_size=4))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_swap_torch_layer_for_the_lessons_layer_inside_the_system(bidirectional):
    torch.manual_seed(0)
    system = SentimentSystem(SentimentClassifier(12, 4, nn.LSTM(4, 5, batch_first=True, bidirectional=bidirectional)))
    x, lengths, _ = _data(N=4).tensors
    lk.check_swap(system, {nn.LSTM: Bidirectional.from_torch if bidirectional else LSTM.from_torch}, (x, lengths))


# ---- a short training, the command line, the reader's own reviews ----

def test_toy_reviews_are_learned_and_classified():
    pl.seed_everything(0, verbose=False)
    data = ReviewData(tokenizer="spaces", batch_size=16)
    system = SentimentSystem(SentimentClassifier(len(data.words), 16, nn.LSTM(16, 16, batch_first=True)),
                             words=data.words, tokenizer="spaces", lr=0.01)
    trainer = lk._fit(lk.trainer(max_epochs=15), system, data.train_dataloader(), data.val_dataloader())
    assert float(trainer.callback_metrics["val_acc"]) > 0.95
    good, bad = classify(system, ["영화가 최고예요", "결말이 지루했다"])
    assert good > 0.5 > bad
    assert toy_reviews()[0][:2] == ["영화가 최고예요", "영화가 재미있네요"]


def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(sentiment.__file__, *a, cwd=tmp_path)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--data.tokenizer" in help_text.stdout
    config = run("fit", "--print_config", "--data.tokenizer", "spaces").stdout
    assert "class_path: sentiment.SentimentClassifier" in config and "class_path: torch.nn.LSTM" in config


def test_command_line_fits_then_labels_the_readers_text(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sentiment.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                    "--trainer.enable_model_summary", "false", "--data.tokenizer", "spaces"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = SentimentSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    assert system.hparams.words == ReviewData(tokenizer="spaces").words and system.hparams.tokenizer == "spaces"
    (p,) = sentiment.main(["predict", "--text", "영화가 최고예요"])
    assert 0 < p < 1 and capsys.readouterr().out.endswith(f"\t{p:.3f}\t영화가 최고예요\n")
    with pytest.raises(ValueError, match="none of the tokens"):
        sentiment.main(["predict", "--text", "완전히 모르는 말", "--ckpt_path", str(path)])
    with pytest.raises(ValueError, match="at least one token"):
        sentiment.main(["predict", "--text", ""])


# ---- the benchmark that makes the page's tables ----

def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "sentiment.py", "sentiment_benchmark")


def _shape(text):
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [r.split("|")[1] for r in rows if not r.startswith("|---")]


def test_benchmark_quick_mode_writes_the_committed_formats(tmp_path):
    results = _benchmark().main(["--quick", "--out", str(tmp_path)])
    saved = committed("sentiment.json")
    assert json.loads((tmp_path / "sentiment.json").read_text(encoding="utf-8")).keys() == saved.keys()
    assert results["models"].keys() == saved["models"].keys()
    for name in ("sentiment.md", "sentiment.en.md"):
        quick, full = ((d / name).read_text(encoding="utf-8") for d in (tmp_path, ROOT / "benchmarks" / "results"))
        assert _shape(quick)[:6] == _shape(full)[:6], name
    assert (tmp_path / "sentiment-learning-curve.png").stat().st_size > 1000


def test_committed_tables_are_the_render_of_the_committed_json():
    bench, results = _benchmark(), committed("sentiment.json")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        path = ROOT / "benchmarks" / "results" / f"sentiment{suffix}.md"
        assert path.read_text(encoding="utf-8") == bench.render_table(results, lang)
    for suffix in ("", ".en"):
        assert (ROOT / "docs" / "figures" / f"sentiment-learning-curve{suffix}.png").is_file()


def _check_claims(runs, tol=None):
    """What the pages say about a run (``tol=None``: the committed one, numbers as rounded there)."""
    models, best = runs["models"], runs["best"]
    assert best == "lstm_w2v"
    quoted = {("test", "bow"): 0.841, ("test", "lstm"): 0.845, ("test", "bilstm"): 0.848, ("test", "conv1d"): 0.820,
              ("test", "lstm_w2v"): 0.853}
    quoted |= {("curve", name, k): v for name, values in (("bow", [0.769, 0.801, 0.816, 0.841]),
                                                          ("lstm_w2v", [0.721, 0.784, 0.816, 0.853]))
               for k, v in enumerate(values)}
    actual = {key: models[key[1]]["test_mean"] if key[0] == "test" else runs["learning_curve"][key[1]]["test_mean"][key[2]]
              for key in quoted}
    check_quoted(actual, quoted, tol, digits=3)
    base, top = models["bow"], models[best]
    # the target: at least 0.85 and one point above the baseline, beyond both spreads
    assert top["test_mean"] >= 0.85 and top["test_mean"] >= base["test_mean"] + 0.01
    assert top["test_mean"] - top["test_std"] > base["test_mean"] + base["test_std"]
    # the plain LSTM is within the spread of the baseline; the bidirectional one a little above; Conv1D + LSTM below
    lstm, bilstm, conv = models["lstm"], models["bilstm"], models["conv1d"]
    assert lstm["test_mean"] - lstm["test_std"] < base["test_mean"] + base["test_std"] < lstm["test_mean"]
    assert bilstm["test_mean"] - bilstm["test_std"] > base["test_mean"] + base["test_std"]
    assert conv["test_mean"] + conv["test_std"] < base["test_mean"] - base["test_std"]
    assert 1.7 < bilstm["epoch_s"] / lstm["epoch_s"] < 2.3 and 6 < top["epoch_s"] / base["epoch_s"] < 12
    # learning curve: the baseline leads up to 5,000 reviews, they meet at 10,000, the LSTM leads at 40,000
    bow_curve, top_curve = runs["learning_curve"]["bow"], runs["learning_curve"][best]
    assert bow_curve["sizes"] == top_curve["sizes"] == [2000, 5000, 10000, 40000]
    gaps = [t - b for t, b in zip(top_curve["test_mean"], bow_curve["test_mean"])]
    assert gaps[0] < -0.03 and gaps[1] < -0.01 and abs(gaps[2]) < 0.01 and gaps[3] > 0.01
    assert runs["cpu_seconds"] < 25 * 60  # the budget: 25 minutes of one core
    # tokens: by spaces, twice the vocabulary and far more unknown validation tokens
    tokens = runs["tokens"]
    assert tokens["spaces"]["vocab"] > 1.9 * tokens["morphemes"]["vocab"]
    assert tokens["spaces"]["val_unknown"] > 0.35 and tokens["morphemes"]["val_unknown"] < 0.03
    errors = runs["errors"]
    assert sum(map(sum, errors["confusion"])) == 5000 and len(errors["confident_wrong"]) == 5
    if tol is None:  # the error analysis as the pages show it
        assert errors["confusion"] == [[2135, 376], [362, 2127]]
        p = {e["text"]: round(e["p_positive"], 2) for e in errors["negation"]}
        assert p["재미있다"] > 0.5 > p["재미없다"]
        assert (p["재미없지 않다"], p["재미있지 않다"], p["지루하지 않았다"], p["최악은 아니다"]) == (0.09, 0.74, 0.15, 0.02)
        assert round(runs["cpu_seconds"]) == 902


def test_the_pages_claims_hold_in_the_committed_full_run():
    _check_claims(committed("sentiment.json"))


@pytest.mark.slow
def test_full_benchmark_reproduces_the_committed_run(tmp_path):
    _check_claims(_benchmark().main(["--out", str(tmp_path), "--figures", str(tmp_path)]), tol=0.02)
