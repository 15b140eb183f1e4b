"""Tests of lessons/language_model.py, its data (lessons/datasets.py, ``# --- language model``) and
benchmarks/language_model.py: the vocabulary and the stream (every target once, rows that continue
each other, DDP shards), stateful truncated BPTT (carried values equal one long pass, cut gradients,
reset each epoch, exp(loss) = perplexity), padding never changes an answer, weight tying, generation
(seeded, greedy, temperature, top-k) and autocomplete, bad input, the course's Lightning checks, the
command line (fit → complete), the Kneser–Ney baseline (sums to 1; equals nltk), and the benchmark's
tables and the page's claims against its JSON (``-m slow`` runs it again)."""

import itertools
import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import datasets, language_model
from lessons.gru import GRU
from lessons.language_model import (LanguageModel, LanguageModelSystem, StreamBatches, StreamData, LMVocab, complete,
                                    encode_prefix, encode_stream, generate, stream_chunks, TOY_REVIEWS)
from lessons.lstm import LSTM

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log")
WORDS = ["<pad>", "<unk>", "<eos>", *"abcdefghi"]


def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "language_model.py", "language_model_benchmark")


# ---- vocabulary and stream ----

def test_vocabulary_puts_pad_unk_eos_first_and_refuses_other_lists():
    vocab = LMVocab.build([["영화", "좋", "다"], ["영화", "별로", "다"]], min_freq=2)
    assert vocab.words == ["<pad>", "<unk>", "<eos>", "영화", "다"]
    assert vocab.encode(["영화", "최고"]) == [3, LMVocab.UNK]
    with pytest.raises(ValueError, match="'<pad>', '<unk>', '<eos>'"):
        LMVocab(["<pad>", "<unk>", "a"])


def test_lesson_tokenizer_is_the_data_modules_morphemes():
    text = "이 영화 정말 재미없네요ㅠㅠ"
    assert language_model.morphemes(text) == datasets.kiwi_morphemes(text)
    train, val, test = datasets.nsmc_lm_reviews("chars")
    assert (len(train), len(val), len(test)) == (40000, 5000, 5000)
    texts, _ = datasets.load_nsmc()
    assert ["".join(r) for r in test[:3]] == [texts[i] for i in datasets.nsmc_split()[2][:3].tolist()]
    with pytest.raises(ValueError, match="'morphemes' or 'chars'"):
        datasets.nsmc_lm_reviews("bytes")


def test_stream_marks_review_ends_and_chunks_keep_every_target_once():
    vocab = LMVocab(WORDS)
    stream = encode_stream([["a", "b"], ["c", "z", "d", "e"]], vocab)
    assert stream.tolist() == [2, 3, 4, 2, 5, 1, 6, 7, 2]
    x, y = stream_chunks(stream, rows=2, bptt=3)  # 8 targets → 2 rows of 4 steps → 2 chunks of 3 (padded)
    assert tuple(x.shape) == (2, 2, 3)
    rows_x, rows_y = x.transpose(0, 1).reshape(2, -1), y.transpose(0, 1).reshape(2, -1)  # each row, chunks joined
    assert rows_y.tolist() == [[3, 4, 2, 5, -100, -100], [1, 6, 7, 2, -100, -100]]
    assert rows_x.tolist() == [[2, 3, 4, 2, 0, 0], [5, 1, 6, 7, 0, 0]]
    kept = y[y != -100]
    assert sorted(kept.tolist()) == sorted(stream[1:].tolist())


def test_stream_batches_give_each_ddp_rank_its_own_rows(monkeypatch):
    x, y = torch.arange(2 * 4 * 3).view(2, 4, 3), torch.zeros(2, 4, 3, dtype=torch.long)
    batches = StreamBatches(x, y)
    assert [b[0].shape[0] for b in batches] == [4, 4]
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        seen.append([b[0] for b in batches])
    for chunk in range(2):  # rank 0: rows 0 and 2, rank 1: rows 1 and 3, in every chunk
        assert torch.equal(seen[0][chunk], x[chunk, 0::2]) and torch.equal(seen[1][chunk], x[chunk, 1::2])


# ---- the model and stateful truncated BPTT ----

def _model(rnn=None, dropout=0.0, V=12):
    return LanguageModel(V, 6, rnn or nn.LSTM(6, 6, batch_first=True), dropout=dropout)


def test_weight_tying_shares_one_matrix_and_needs_equal_sizes():
    model = _model()
    assert model.head.weight is model.embed.weight
    assert sum(p.numel() for p in model.parameters()) == 12 * 6 + 12 + 4 * 6 * (6 + 6 + 2)
    untied = LanguageModel(12, 4, nn.LSTM(4, 6, batch_first=True), tie_weights=False)
    assert untied.head.weight.shape == (12, 6)
    with pytest.raises(ValueError, match="hidden_size == embedding_dim"):
        LanguageModel(12, 4, nn.LSTM(4, 6, batch_first=True))


@pytest.mark.parametrize("rnn", [lambda: nn.LSTM(6, 6, batch_first=True), lambda: GRU(6, 6, batch_first=True)])
def test_padding_never_changes_the_answer(rnn):
    torch.manual_seed(0)
    model = _model(rnn()).double().eval()
    x = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    both, state = model(x, torch.tensor([3, 5]))
    alone, state1 = model(x[:1, :3], torch.tensor([3]))
    torch.testing.assert_close(both[:1, :3], alone, atol=1e-12, rtol=0)
    h, h1 = (state[0], state1[0]) if isinstance(state, tuple) else (state, state1)
    torch.testing.assert_close(h[:, :1], h1, atol=1e-12, rtol=0)  # the state at the row's own end


def test_models_refuse_float_or_flat_tokens():
    with pytest.raises(ValueError, match=r"expected tokens of shape \(N, T\) holding integer ids"):
        _model()(torch.zeros(2, 3))


def _stream_system(dropout=0.0):
    pl.seed_everything(0, verbose=False)
    return LanguageModelSystem(_model(dropout=dropout), words=WORDS, lr=0.01)


def _stream(rows=4, bptt=5, length=81):
    g = torch.Generator().manual_seed(0)
    stream = torch.randint(2, 12, (length,), generator=g)
    return stream_chunks(stream, rows, bptt)


def test_carried_state_equals_one_long_pass_and_exp_loss_is_perplexity():
    x, y = _stream()
    system = _stream_system().eval()
    trainer = lk.trainer()
    (metrics,) = trainer.validate(system, DataLoader(StreamBatches(x, y), batch_size=None), verbose=False)
    rows_x, rows_y = x.transpose(0, 1).reshape(4, -1), y.transpose(0, 1).reshape(4, -1)
    with torch.no_grad():
        logits, _ = system.model(rows_x)  # the whole rows at once: what the carried state must reproduce
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), rows_y.flatten(), ignore_index=-100)
    assert metrics["val_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert metrics["val_ppl"] == pytest.approx(math.exp(float(loss)), rel=1e-5)
    (again,) = trainer.validate(system, DataLoader(StreamBatches(x, y), batch_size=None), verbose=False)
    assert again["val_ppl"] == pytest.approx(metrics["val_ppl"], rel=1e-6)  # the state was reset, not carried on


def test_training_carries_values_but_cuts_gradients():
    x, y = _stream()
    system = _stream_system()
    system._step((x[0], y[0]), "train")
    state = system.states["train"]
    assert all(s.grad_fn is None and not s.requires_grad for s in state)
    loss = system._step((x[1], y[1]), "train")
    loss.backward()  # would fail ("backward through the graph a second time") if chunk 0's graph were kept
    system._step((x[0], y[0]), "train", batch_idx=0)  # an epoch's first batch starts from zeros
    with torch.no_grad():
        _, fresh = system.model(x[0])
    torch.testing.assert_close(system.states["train"], fresh)
    system._step((x[0][:2], y[0][:2]), "train")  # fewer rows than the carried state: starts again
    assert system.states["train"][0].shape[1] == 2


# ---- generation and autocomplete ----

def _toy_system(epochs=25):
    pl.seed_everything(0, verbose=False)
    data = StreamData(batch_size=4, bptt=8)
    model = LanguageModel(len(data.words), 16, nn.LSTM(16, 16, batch_first=True))
    system = LanguageModelSystem(model, words=data.words, tokenizer="spaces", max_prefix_tokens=6, lr=0.02)
    lk._fit(lk.trainer(max_epochs=epochs), system, data.train_dataloader(), data.val_dataloader())
    return system


@pytest.fixture(scope="module")
def toy():
    return _toy_system()


def test_toy_reviews_are_learned(toy):
    assert TOY_REVIEWS[:2] == ["이 영화 정말 재미있어요", "이 영화 정말 최고예요"]
    assert float(toy.trainer.callback_metrics["val_ppl"]) < 6  # of 20 words; 6 subjects, 4 adverbs, 5 verdicts
    assert generate(toy, "이", top_k=1)[0] == "영화"


def test_sampling_is_seeded_and_temperature_and_top_k_behave(toy):
    draw = lambda seed, **kw: generate(toy, "배우 연기가", generator=torch.Generator().manual_seed(seed), **kw)  # noqa: E731
    assert draw(0) == draw(0)
    greedy = generate(toy, "배우 연기가", top_k=1)
    assert draw(1, top_k=1) == greedy and draw(2, temperature=0.01) == greedy
    assert len({tuple(draw(s, temperature=5.0)) for s in range(8)}) > 1
    with pytest.raises(ValueError, match="temperature > 0"):
        draw(0, temperature=0)


def test_complete_returns_the_top_continuations_with_their_probabilities(toy):
    found = complete(toy, "이 영화 정말", top_k=3)
    assert len(found) == 3 and [p for _, p in found] == sorted((p for _, p in found), reverse=True)
    assert found[0][0] in {f"{v} <eos>" for v in ("재미있어요", "최고예요", "감동적이에요", "지루해요", "별로예요")}
    ids = torch.tensor([encode_prefix(toy, "이 영화 정말") + [toy.hparams.words.index(found[0][0].split()[0]), 2]])
    with torch.no_grad():
        logp = toy.model(ids)[0][0].log_softmax(-1)  # <pad> and <unk> never come out of `complete`
    logp[:, :2] = -math.inf
    expected = logp.log_softmax(-1)[[3, 4], ids[0, 4:]].sum().exp()
    assert found[0][1] == pytest.approx(float(expected), rel=1e-5)


def test_bad_prefixes_are_refused(toy):
    for prefix in ("", "   "):
        with pytest.raises(ValueError, match="at least one token"):
            complete(toy, prefix)
    with pytest.raises(ValueError, match=r"none of the tokens \['완전', '새로운'\]"):
        complete(toy, "완전 새로운")
    with pytest.raises(ValueError, match="at most max_prefix_tokens=6 tokens, got 7"):
        generate(toy, "이 영화 정말 이 영화 정말 이")
    with pytest.raises(ValueError, match="saved with its vocabulary"):
        complete(LanguageModelSystem(_model()), "a")


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"one row per word \(12\), got 13 rows"):
        LanguageModelSystem(_model(V=13), words=WORDS)
    system = _stream_system()
    x, y = _stream()
    lk._fit(lk.trainer(max_epochs=1), system, DataLoader(StreamBatches(x, y), batch_size=None))
    system.trainer.save_checkpoint(tmp_path / "lm.ckpt")
    with pytest.raises(ValueError, match="different vocabularies"):
        LanguageModelSystem.load_from_checkpoint(tmp_path / "lm.ckpt", model=_model(V=20))
    with pytest.raises(ValueError, match="tokenizer"):
        LanguageModelSystem(_model(), tokenizer="bpe")


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _chunk_dataset():  # (chunk, row) items in chunk-major order: batch_size = rows reads one chunk
    x, y = _stream(rows=4, bptt=5, length=81)
    return TensorDataset(x.flatten(0, 1), y.flatten(0, 1))


def _loader():
    return DataLoader(_chunk_dataset(), batch_size=4)


def test_predict():
    lk.check_predict(lambda: _stream_system(0.1), _loader())


def test_checkpoint_round_trip(tmp_path):
    lk.check_checkpoint(lambda: _stream_system(0.1), _loader(), _loader(), tmp_path, model=_model())


def test_resume_equals_uninterrupted(tmp_path):
    lk.check_resume(_stream_system, _loader(), _loader(), tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):  # each rank carries the state of its own rows
    lk.check_ddp(_stream_system, _chunk_dataset(), batch_size=4, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(lambda: _stream_system(0.1), _loader())


def test_gpu():
    lk.check_gpu(lambda: _stream_system(0.1), _loader())


@pytest.mark.parametrize("layer", ["lstm", "gru"])
def test_swap_torch_layer_for_the_lessons_layer_inside_the_system(layer):
    torch.manual_seed(0)
    rnn = nn.LSTM(6, 6, batch_first=True) if layer == "lstm" else nn.GRU(6, 6, batch_first=True)
    system = LanguageModelSystem(_model(rnn))
    x = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
    lk.check_swap(system, {nn.LSTM: LSTM.from_torch, nn.GRU: GRU.from_torch}, (x, torch.tensor([3, 4])))


# ---- the command line ----

def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(language_model.__file__, *a, cwd=tmp_path)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--data.bptt" in help_text.stdout
    config = run("fit", "--print_config").stdout
    assert "class_path: language_model.LanguageModel" in config and "class_path: torch.nn.LSTM" in config


def test_command_line_fits_then_completes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    language_model.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                         "--trainer.enable_model_summary", "false"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = LanguageModelSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    assert system.hparams.words == StreamData().words and system.hparams.tokenizer == "spaces"
    found = language_model.main(["complete", "--prefix", "이 영화 정말", "--top_k", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert len(found) == len(lines) == 3 and lines[0] == f"{found[0][1]:.3f}\t이 영화 정말 {found[0][0]}"
    with pytest.raises(ValueError, match="none of the tokens"):
        language_model.main(["complete", "--prefix", "완전히 모르는 말", "--ckpt_path", str(path)])
    with pytest.raises(ValueError, match="at least one token"):
        language_model.main(["complete", "--prefix", ""])


# ---- the Kneser–Ney baseline ----

def test_kneser_ney_distribution_sums_to_one_over_the_vocabulary():
    KneserNey = _benchmark().KneserNey
    g = torch.Generator().manual_seed(0)
    stream = [2] + torch.randint(1, 9, (300,), generator=g).tolist()
    for order in (1, 2, 3, 5):
        model = KneserNey(order).fit(stream, vocab_size=11)  # ids 1 … 11: <pad> (0) is never predicted
        for context in [(2, 2, 2, 2), (3, 4, 5, 6), (7, 7, 7, 7), (11, 10, 11, 10), tuple(stream[-4:])]:
            assert sum(model.prob(w, context) for w in range(1, 12)) == pytest.approx(1.0, abs=1e-12)
        assert model.prob(10, (3, 4, 5, 6)) > 0  # never seen: the uniform floor
    with pytest.raises(ValueError, match="0 < discount < 1"):
        KneserNey(3, discount=1.5)


def test_kneser_ney_equals_nltk_on_a_small_corpus():
    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    KneserNey = _benchmark().KneserNey
    text = "a b c a b d </s> b c a b c </s> c a b d d e </s> a e b </s>".split()
    words = sorted(set(text))
    stream = [words.index("</s>")] + [words.index(w) for w in text]
    ours = KneserNey(3, discount=0.75, floor=False).fit(stream, len(words))
    padded = [str(i) for i in stream[:1] * 2 + stream]  # the same context at the start as ours
    nltk_model = KneserNeyInterpolated(3, discount=0.75)
    nltk_model.fit([list(everygrams(padded, max_len=3))], vocabulary_text=padded)
    # every (context, word) of the vocabulary, seen or not: nltk's continuation unigrams and interpolation are ours
    for *context, word in itertools.product(range(len(words)), repeat=3):
        expected = nltk_model.unmasked_score(str(word), tuple(map(str, context)))
        assert ours.prob(word, context) == pytest.approx(expected, abs=1e-12), (context, word)
    # with the uniform floor ours stays a distribution where nltk gives a token no probability at all
    floored = KneserNey(3, discount=0.75).fit(stream, len(words) + 1)
    unseen = len(words)  # an id no n-gram contains
    assert nltk_model.unmasked_score("x", ("0", "1")) == 0 and floored.prob(unseen, (0, 1)) > 0


@pytest.mark.slow
def test_nltk_is_too_slow_for_the_test_stream():
    """The page's reason for writing Kneser–Ney out: nltk scores a token in a hundredth of a second or more."""
    import time

    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    bench = _benchmark()
    vocab, train, _, test = bench.corpus("word", bench.FULL)
    padded = [str(i) for i in train[:1].tolist() * 2 + train.tolist()]
    model = KneserNeyInterpolated(3, discount=0.75)
    model.fit([list(everygrams(padded, max_len=3))], vocabulary_text=padded)
    tokens = [str(i) for i in test[:52].tolist()]
    start = time.process_time()
    for i in range(2, len(tokens)):
        model.unmasked_score(tokens[i], tuple(tokens[i - 2:i]))
    per_token = (time.process_time() - start) / (len(tokens) - 2)
    assert per_token > 0.01  # 1,000 times the benchmark's own Kneser–Ney, whose whole test stream takes seconds


# ---- the benchmark that makes the page's tables ----

def _shape(text):
    return [r.split("|")[1:3] for r in text.splitlines() if r.startswith("|") and not r.startswith("|---")][:5]


def test_benchmark_quick_mode_writes_the_committed_formats(tmp_path):
    results = _benchmark().main(["--quick", "--out", str(tmp_path)])
    saved = committed("language-model.json")
    assert json.loads((tmp_path / "language-model.json").read_text(encoding="utf-8")).keys() == saved.keys()
    assert results["models"].keys() == saved["models"].keys() == {"word", "char"}
    for name in ("language-model.md", "language-model.en.md", "language-model-samples.md", "language-model-complete.en.md"):
        quick, full = ((d / name).read_text(encoding="utf-8") for d in (tmp_path, ROOT / "benchmarks" / "results"))
        assert _shape(quick)[:1 if "complete" in name else 5] == _shape(full)[:1 if "complete" in name else 5], name
    assert (tmp_path / "language-model.png").stat().st_size > 1000


def test_committed_tables_are_the_render_of_the_committed_json():
    bench, results = _benchmark(), committed("language-model.json")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        for name, render in bench.RENDER.items():
            path = ROOT / "benchmarks" / "results" / f"{name}{suffix}.md"
            assert path.read_text(encoding="utf-8") == render(results, lang), path
        assert (ROOT / "docs" / "figures" / f"language-model{suffix}.png").is_file()


def _check_claims(runs, tol=None):
    """What the pages say about a run (``tol=None``: the committed one, numbers as rounded there)."""
    word, char = runs["models"]["word"], runs["models"]["char"]
    actual = {"word_ngram": word["ngram"]["test_ppl"], "word_lstm": word["lstm"]["test_mean"],
              "word_lstm_std": word["lstm"]["test_std"], "char_ngram": char["ngram"]["test_ppl"],
              "char_lstm": char["lstm"]["test_mean"], "char_lstm_std": char["lstm"]["test_std"]}
    check_quoted(actual, {"word_ngram": 47.6, "word_lstm": 45.9, "word_lstm_std": 0.3, "char_ngram": 17.5,
                          "char_lstm": 20.4, "char_lstm_std": 0.1}, tol, digits=1)
    bits = {k: runs["bits_per_char"][k] for k in ("ngram", "lstm_mean")}
    check_quoted(bits, {"ngram": 4.127, "lstm_mean": 4.348}, tol, digits=3)
    # the target: the morpheme LSTM below the n-gram, every seed and beyond the spread; about 4% lower
    lstm, ngram = word["lstm"], word["ngram"]["test_ppl"]
    assert len(lstm["runs"]) == 3 and all(r["test_ppl"] < ngram for r in lstm["runs"])
    assert lstm["test_mean"] + lstm["test_std"] < ngram and 0.02 < 1 - lstm["test_mean"] / ngram < 0.06
    # characters: the 5-gram wins, beyond the spread
    assert char["lstm"]["test_mean"] - char["lstm"]["test_std"] > char["ngram"]["test_ppl"]
    # every LSTM is best at its last epoch and its validation curve still falls
    for level in (word, char):
        assert all(r["best_epoch"] == runs["config"]["epochs"] == 5 for r in level["lstm"]["runs"])
        assert all(all(a > b for a, b in zip(r["val_curve"], r["val_curve"][1:])) for r in level["lstm"]["runs"])
    # the budget: one (level, seed) job within 5 minutes of one core; the character stream 1.7 times longer
    assert max(r["cpu_s"] for m in runs["models"].values() for r in m["lstm"]["runs"]) < 5 * 60
    assert round(char["ngram"]["test_tokens"] / word["ngram"]["test_tokens"], 1) == 1.7
    assert word["lstm"]["parameters"] == 422733 and word["lstm"]["vocab"] == 2253 and char["lstm"]["vocab"] == 1103
    if tol is None:  # seconds as the page rounds them, and the samples it quotes
        assert (round(word["lstm"]["epoch_s"]), round(char["lstm"]["epoch_s"])) == (48, 51)
        assert round(max(r["cpu_s"] for m in runs["models"].values() for r in m["lstm"]["runs"])) == 273
        assert (round(word["ngram"]["cpu_s"]), round(char["ngram"]["cpu_s"])) == (2, 8)
        s = word["lstm"]["samples"]["sampled"]["0.5"][1], char["lstm"]["samples"]
        assert "".join(s[0]) == "좋었다." and "".join(s[1]["top_k"][0]) == " 재미있게 봤어요!"
        assert "".join(s[1]["sampled"]["1.5"][0]).startswith("너무된다요ㅎㅎㅎ 스칼보요요재을형미로는")


def test_the_pages_claims_hold_in_the_committed_full_run():
    _check_claims(committed("language-model.json"))


@pytest.mark.slow
def test_full_benchmark_reproduces_the_committed_run(tmp_path):
    _check_claims(_benchmark().main(["--out", str(tmp_path), "--figures", str(tmp_path)]), tol=0.03)
