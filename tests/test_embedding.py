"""Tests of lessons/embedding.py: the lookup equals one-hot @ W, the notes' shapes, bad token ids
are refused clearly, the word2vec pieces follow their formulas, training lowers the loss and puts
related words together, and the benchmark script runs."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from lessons import embedding
from lessons.embedding import (
    CBOW,
    CBOWBatches,
    LookupEmbedding,
    NegativeSampler,
    SkipGramBatches,
    SkipGramNegativeSampling,
    Vocab,
    Word2VecSystem,
    LossHistory,
    analogy,
    cbow_windows,
    fit,
    keep_probabilities,
    most_similar,
    pad_sequences,
    pretrained_embedding,
    skipgram_pairs,
    train_sgns,
)

ROOT = Path(__file__).resolve().parents[1]
NOTES_XS = [[0, 1, 2, 3], [0, 3, 4, 2], [5, 6, 7, 5], [9, 1, 2, 5], [4, 5, 6, 8]]


@pytest.fixture(autouse=True)
def one_thread():
    """word2vec batches are small: one thread is faster, and on a busy machine two threads
    waiting for each other make every small op many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_lookup_equals_one_hot_times_W():
    torch.manual_seed(0)
    embed = LookupEmbedding(10, 3).double()
    xs = torch.tensor(NOTES_XS)
    expected = F.one_hot(xs, 10).double() @ embed.W  # (N, T, V)(V, D)
    torch.testing.assert_close(embed(xs), expected, rtol=0, atol=0)
    torch.testing.assert_close(embed.one_hot_forward(xs), expected, rtol=0, atol=0)


def test_lookup_equals_nn_embedding_and_its_gradient():
    torch.manual_seed(1)
    reference = nn.Embedding(10, 3).double()
    ours = LookupEmbedding(10, 3).double()
    with torch.no_grad():
        ours.W.copy_(reference.weight)
    xs = torch.tensor(NOTES_XS)
    weights = torch.randn(5, 4, 3, dtype=torch.float64)
    (ours(xs) * weights).sum().backward()
    (reference(xs) * weights).sum().backward()
    torch.testing.assert_close(ours.W.grad, reference.weight.grad, rtol=0, atol=1e-12)
    # the gradient of a lookup is one-hot^T @ upstream: each row collects the steps that used it
    one_hot = F.one_hot(xs, 10).double().reshape(-1, 10)
    torch.testing.assert_close(ours.W.grad, one_hot.T @ weights.reshape(-1, 3), rtol=0, atol=1e-12)


def test_notes_shapes():
    embed = nn.Embedding(num_embeddings=10, embedding_dim=3)  # (V, D)
    xs = torch.tensor(NOTES_XS)  # (N, T) = (5, 4)
    assert embed(xs[:, 0]).shape == (5, 3)  # one time step: (N,) -> (N, D)
    out = embed(xs)
    assert out.shape == (5, 4, 3)  # (N, T, D)
    for t in range(4):  # every time step reads the same table
        torch.testing.assert_close(out[:, t], embed.weight[xs[:, t]])


BAD_IDS = [
    (torch.tensor([[0, -1, 2]]), r"in \[0, V\) = \[0, 10\), got min -1"),
    (torch.tensor([[0, 10, 2]]), r"in \[0, V\) = \[0, 10\), got max 10"),
    (torch.tensor([[0.0, 1.0]]), r"integer tensor of token ids .* got dtype torch.float32"),
    (torch.tensor([True, False]), r"integer tensor .* got dtype torch.bool"),
    ([[0, 1]], r"torch.Tensor of token ids, got list"),
]


@pytest.mark.parametrize("idx, message", BAD_IDS)
def test_bad_token_ids_get_a_clear_error(idx, message):
    with pytest.raises(ValueError, match=message):
        LookupEmbedding(10, 3)(idx)


@pytest.mark.parametrize("idx, message", BAD_IDS[:3])
def test_word2vec_models_refuse_bad_ids(idx, message):
    ok = torch.tensor([1, 2])
    with pytest.raises(ValueError, match=message.replace("idx", "centre")):
        SkipGramNegativeSampling(10, 4)(idx.reshape(-1)[:2], ok, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=message):
        SkipGramNegativeSampling(10, 4)(ok, ok, idx.reshape(1, -1).expand(2, -1))
    with pytest.raises(ValueError, match=message):
        CBOW(10, 4)(torch.tensor([[1, -1], [2, 3]]), idx.reshape(-1)[:2], torch.zeros(2, 3, dtype=torch.long))


def test_cbow_refuses_flat_contexts():
    with pytest.raises(ValueError, match=r"contexts of shape \(N, C\), got \(4,\)"):
        CBOW(10, 4)(torch.tensor([1, 2, 3, 4]), torch.tensor([1]), torch.zeros(1, 2, dtype=torch.long))


def test_pad_sequences_like_keras():
    seqs = [[5, 6, 7], [8], [1, 2, 3, 4, 5]]
    assert pad_sequences(seqs, 4).tolist() == [[0, 5, 6, 7], [0, 0, 0, 8], [2, 3, 4, 5]]
    post = pad_sequences(seqs, 4, padding="post", truncating="post")
    assert post.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]]
    assert pad_sequences([[]], 2).tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="maxlen"):
        pad_sequences(seqs, 0)


def test_pretrained_embedding_frozen_or_fine_tuned():
    vectors = torch.arange(12.0).reshape(4, 3)
    frozen = pretrained_embedding(vectors, freeze=True, padding_idx=0)
    assert not frozen.weight.requires_grad
    assert frozen(torch.tensor([0])).abs().sum() == 0  # the padding row is zero
    torch.testing.assert_close(frozen(torch.tensor([2])), vectors[2:3])
    tuned = pretrained_embedding(vectors, freeze=False, padding_idx=0)
    tuned(torch.tensor([0, 1, 0])).sum().backward()
    assert tuned.weight.grad[0].abs().sum() == 0 and tuned.weight.grad[1].abs().sum() > 0
    assert vectors[0].abs().sum() > 0  # the caller's tensor is left alone


def test_vocab_orders_by_frequency_and_drops_rare_words():
    vocab = Vocab([["b", "a", "b"], ["c", "a", "b"]], min_count=2)
    assert vocab.words == ["b", "a"] and vocab.counts.tolist() == [3, 2]
    ids, sentence_ids = vocab.encode_corpus([["a", "c", "b"], ["b"]])
    assert ids.tolist() == [1, 0, 0] and sentence_ids.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="min_count=5"):
        Vocab([["a"]], min_count=5)


def test_keep_probabilities_follow_word2vec():
    counts = torch.tensor([10_000, 100, 1])
    p = keep_probabilities(counts, sample=1e-3)
    f = counts.double() / counts.sum()
    expected = ((f / 1e-3).sqrt() + 1) * 1e-3 / f
    torch.testing.assert_close(p.double(), expected.clamp(max=1), rtol=1e-6, atol=0)
    assert p[0] < 0.05 and p[2] == 1.0  # frequent words dropped, rare ones kept
    assert torch.equal(keep_probabilities(counts, sample=0), torch.ones(3))


def test_negative_sampler_draws_unigram_to_the_three_quarters():
    counts = torch.tensor([1000, 100, 10, 1])
    sampler = NegativeSampler(counts)
    expected = counts.double() ** 0.75 / (counts.double() ** 0.75).sum()
    torch.testing.assert_close(sampler.probs.double(), expected, rtol=1e-6, atol=0)
    draws = sampler.sample((200_000,), torch.Generator().manual_seed(0))
    share = torch.bincount(draws, minlength=4).double() / len(draws)
    torch.testing.assert_close(share, expected, rtol=0, atol=5e-3)


def test_skipgram_pairs_respect_windows_and_sentences():
    ids = torch.arange(10)
    sentence_ids = torch.tensor([0] * 6 + [1] * 4)
    centre, context = skipgram_pairs(ids, sentence_ids, window=2, generator=torch.Generator().manual_seed(0))
    assert ((centre - context).abs() <= 2).all() and (centre != context).all()
    assert (sentence_ids[centre] == sentence_ids[context]).all()  # no pair across a sentence end
    full, _ = skipgram_pairs(ids, torch.zeros(10, dtype=torch.long), window=2,
                             generator=torch.Generator().manual_seed(0))
    assert len(full) <= 2 * (9 + 8)  # at most every pair within distance 2, both directions
    # subsampling with keep probability 0 for word 3 removes it everywhere
    keep = torch.ones(10)
    keep[3] = 0
    c, o = skipgram_pairs(ids, sentence_ids, window=2, keep_prob=keep)
    assert 3 not in c.tolist() and 3 not in o.tolist()


def test_cbow_windows_match_skipgram_pairs():
    ids, sentence_ids = torch.arange(8), torch.tensor([0] * 5 + [1] * 3)
    contexts, centres = cbow_windows(ids, sentence_ids, window=3, generator=torch.Generator().manual_seed(1))
    pairs = skipgram_pairs(ids, sentence_ids, window=3, generator=torch.Generator().manual_seed(1))
    cbow_pairs = {(c, w) for c, row in zip(centres.tolist(), contexts.tolist()) for w in row if w >= 0}
    assert cbow_pairs == set(zip(*(p.tolist() for p in pairs)))  # same windows from the same seed
    assert contexts.shape[1] == 6


def test_sgns_loss_equals_its_formula():
    torch.manual_seed(0)
    model = SkipGramNegativeSampling(12, 4).double()
    nn.init.normal_(model.W_out.weight)
    centre, context = torch.tensor([1, 5]), torch.tensor([2, 7])
    negatives = torch.tensor([[3, 4, 9], [0, 11, 3]])
    v, u = model.W_in.weight, model.W_out.weight
    expected = torch.stack([
        -F.logsigmoid(u[o] @ v[c]) - sum(F.logsigmoid(-u[k] @ v[c]) for k in ks)
        for c, o, ks in zip(centre.tolist(), context.tolist(), negatives.tolist())
    ])
    torch.testing.assert_close(model(centre, context, negatives), expected, rtol=0, atol=1e-12)
    # shared negatives (M,): every pair sees all M, weighted K / M
    shared = torch.tensor([3, 4, 9, 0])
    expected_shared = torch.stack([
        -F.logsigmoid(u[o] @ v[c]) - 5 / 4 * sum(F.logsigmoid(-u[k] @ v[c]) for k in shared.tolist())
        for c, o in zip(centre.tolist(), context.tolist())
    ])
    torch.testing.assert_close(model(centre, context, shared), expected_shared, rtol=0, atol=1e-12)


def test_cbow_uses_the_mean_of_the_context_vectors():
    torch.manual_seed(0)
    model = CBOW(12, 4).double()
    nn.init.normal_(model.W_out.weight)
    contexts = torch.tensor([[1, 2, -1, -1], [3, 4, 5, 6]])
    centre, negatives = torch.tensor([7, 8]), torch.tensor([[9, 10], [11, 0]])
    v, u = model.W_in.weight, model.W_out.weight
    means = [v[[1, 2]].mean(0), v[[3, 4, 5, 6]].mean(0)]
    expected = torch.stack([
        -F.logsigmoid(u[o] @ m) - sum(F.logsigmoid(-u[k] @ m) for k in ks)
        for m, o, ks in zip(means, centre.tolist(), negatives.tolist())
    ])
    torch.testing.assert_close(model(contexts, centre, negatives), expected, rtol=0, atol=1e-12)


def test_sparse_gradients_touch_only_the_rows_in_the_batch():
    model = SkipGramNegativeSampling(50, 8)
    model(torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[5], [6]])).sum().backward()
    assert model.W_in.weight.grad.is_sparse
    assert set(model.W_in.weight.grad.coalesce().indices()[0].tolist()) == {1, 2}
    assert set(model.W_out.weight.grad.coalesce().indices()[0].tolist()) == {3, 4, 5, 6}


def test_system_refuses_unknown_models():
    with pytest.raises(ValueError, match="model"):
        Word2VecSystem(10, 4, model="glove")


# --- training on the Korean corpus ------------------------------------------------------------

SETTINGS = {"skipgram": dict(batch_size=2048, lr=0.02), "cbow": dict(batch_size=512, lr=0.03)}


@pytest.fixture(scope="module")
def korean():
    from lessons.datasets import korean_corpus

    corpus = korean_corpus()
    vocab = Vocab(corpus, min_count=3)
    return vocab, *vocab.encode_corpus(corpus)


def _train(korean, model, epochs=5):
    vocab, ids, sentence_ids = korean
    stream = (SkipGramBatches if model == "skipgram" else CBOWBatches)(
        ids, sentence_ids, vocab.counts, batch_size=SETTINGS[model]["batch_size"], seed=0)
    pl.seed_everything(0, verbose=False)
    system = Word2VecSystem(len(vocab), 50, model=model, lr=SETTINGS[model]["lr"])
    history = LossHistory()
    fit(system, torch.utils.data.DataLoader(stream, batch_size=None), max_epochs=epochs, callbacks=[history])
    return system, history.history["train_loss"]


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_training_lowers_the_loss_and_puts_related_words_together(korean, model):
    vocab, *_ = korean
    system, losses = _train(korean, model)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.7 * losses[0]
    W = F.normalize(system.vectors, dim=1)
    related = float(W[vocab.index["자녀"]] @ W[vocab.index["양육"]])  # child, child-rearing (the bills)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(len(vocab), (2, 2000), generator=g)
    random_pairs = (W[a] * W[b]).sum(1)
    assert related > torch.quantile(random_pairs, 0.95), (related, torch.quantile(random_pairs, 0.95))
    assert vocab.words[int(most_similar(system.vectors, vocab.index["자녀"], k=10)[0][0])] != "자녀"


def test_training_is_reproducible(korean):
    first, _ = _train(korean, "skipgram", epochs=1)
    second, _ = _train(korean, "skipgram", epochs=1)
    assert torch.equal(first.vectors, second.vectors)


def test_fast_loop_lowers_the_loss(korean):
    vocab, ids, sentence_ids = korean
    torch.manual_seed(0)
    model = SkipGramNegativeSampling(len(vocab), 50)
    for shared in (None, 16):
        batches = SkipGramBatches(ids, sentence_ids, vocab.counts, batch_size=2048, shared_negatives=shared)
        losses = train_sgns(model, batches, epochs=2)
        assert losses[-1] < losses[0]


def test_analogy_on_planted_vectors():
    # a : b = c : d when b - a = d - c exactly
    vectors = torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    ids, sims = analogy(vectors, 0, 1, 2)
    assert ids.tolist() == [3] and sims.item() > 0.9
    with pytest.raises(ValueError, match="query"):
        most_similar(vectors, 9)


def test_command_line_runs(capsys):
    embedding.main(["--epochs", "1", "--dim", "10", "--batch-size", "8192", "--probe", "police"])
    out = capsys.readouterr().out
    assert re.search(r"lee_background.cor: \d+ tokens, V = \d+", out)
    assert "police ->" in out


# --- the benchmark ------------------------------------------------------------------------------

HEADER = "| model | words/s | speed vs gensim | analogy accuracy (%) | wordsim353 Spearman | neighbour overlap with gensim (%) |"


def test_benchmark_quick_run_writes_the_same_table_format(tmp_path):
    out = tmp_path / "table.md"
    spec = importlib.util.spec_from_file_location("embedding_vs_gensim", ROOT / "benchmarks" / "embedding_vs_gensim.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)  # in this process: no second start of torch and Lightning
    benchmark.main(["--quick", "--out", str(out)])
    quick = out.read_text(encoding="utf-8").splitlines()
    committed = (ROOT / "benchmarks" / "results" / "embedding-vs-gensim.md").read_text(encoding="utf-8").splitlines()
    for lines in (quick, committed):
        assert lines[0].startswith("<!-- generated by `python benchmarks/embedding_vs_gensim.py")
        assert HEADER in lines
        rows = [line for line in lines if line.startswith("| gensim") or line.startswith("| this lesson")]
        assert len(rows) == 3
    assert "--quick" not in committed[0]  # the page shows the full run


def _committed_rows():
    text = (ROOT / "benchmarks" / "results" / "embedding-vs-gensim.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith(("| gensim", "| this lesson"))]
    return [[cell.strip() for cell in row] for row in rows]


def test_committed_benchmark_meets_the_targets():
    gensim, shared, _ = _committed_rows()
    assert float(shared[2]) >= 1 / 3  # throughput at least a third of gensim's (2 threads)
    assert float(shared[3]) >= float(gensim[3]) - 5  # analogy accuracy within 5 points
    assert float(shared[4]) >= float(gensim[4]) - 0.05  # wordsim353 Spearman within 0.05


@pytest.mark.slow
def test_benchmark_full_run_meets_the_targets(tmp_path):
    out = tmp_path / "table.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "embedding_vs_gensim.py"), "--out", str(out)],
                   check=True, timeout=1800)
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in out.read_text().splitlines()
            if line.startswith(("| gensim", "| this lesson"))]
    gensim, shared, _ = rows
    assert float(shared[2]) >= 1 / 3
    assert float(shared[3]) >= float(gensim[3]) - 5
