"""Tests of lessons/seq2seq.py and its data (lessons/datasets.py, ``# --- translation``): the English words and
the Tatoeba file (checksum, split 3,038 / 379 / 381, vocabularies, batches); a sentence alone and inside a padded
batch gets the same logits, greedy and beam translations (plain and attention models); attention never looks at
padding; beam 1 is greedy and the length penalty favours longer translations; bad input is refused clearly (empty
or unknown-only sentence, a checkpoint of another vocabulary, layers of the wrong size); the system passes the
course's Lightning checks; the command line fits and then translates; the benchmark's quick mode writes the
committed formats, the committed tables are the render of the committed JSON and the page's claims hold there."""

import collections
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
from lessons import datasets, seq2seq
from lessons.gru import GRU
from lessons.seq2seq import (BOS, EOS, TARGET_SPECIALS, AdditiveAttention, Decoder, Encoder, GRUSeq2Seq, Seq2Seq,
                             Seq2SeqSystem, Vocabulary, detokenize, english_words, translate)

ROOT = Path(__file__).resolve().parents[1]


# ---- words, vocabularies and the Tatoeba file ----

def test_english_words_and_detokenize():
    text = "I'm Tom's friend, OK? \"Yes.\""
    assert english_words(text) == datasets.english_words(text) == ["i'm", "tom's", "friend", ",", "ok", "?", '"', "yes", ".", '"']
    assert detokenize(["tom", "is", "here", ".", "ok", "?"]) == "tom is here. ok?"


def test_vocabulary_orders_by_frequency_and_decodes_up_to_eos():
    vocab = Vocabulary.build([["a", "b"], ["b", "c"]], min_freq=1, specials=TARGET_SPECIALS)
    assert vocab.words == ["<pad>", "<unk>", "<bos>", "<eos>", "b", "a", "c"]
    assert vocab.encode(["b", "z"]) == [4, 1]
    assert vocab.decode([BOS, 4, 5, EOS, 6, 0]) == ["b", "a"]
    assert Vocabulary.build([["a", "b"], ["b"]], min_freq=2).words == ["<pad>", "<unk>", "b"]
    with pytest.raises(ValueError, match="'<pad>', '<unk>'"):
        Vocabulary(["a", "b"])


def test_tatoeba_file_is_checked_and_split_with_a_fixed_seed(tmp_path):
    pairs = datasets.load_tatoeba()
    assert len(pairs) == 3798 and pairs[0] == ("Go.", "가.", pairs[0][2]) and "tatoeba.org #" in pairs[0][2]
    parts = datasets.tatoeba_split()
    assert [len(p) for p in parts] == [3038, 379, 381] and len(set(torch.cat(parts).tolist())) == 3798
    assert all(torch.equal(a, b) for a, b in zip(parts, datasets.tatoeba_split()))
    broken = tmp_path / "tatoeba.txt.gz"
    broken.write_bytes(gzip.compress("Hi.\t안녕.\tCC-BY\n".encode()))
    with pytest.raises(ValueError, match="tatoeba.txt.gz: SHA-256 .* differs"):
        datasets.load_tatoeba(str(broken))
    assert datasets.load_tatoeba(str(broken), sha256=None) == (("Hi.", "안녕.", "CC-BY"),)
    with pytest.raises(ValueError, match="gone.txt.gz"):
        datasets.load_tatoeba(str(tmp_path / "gone.txt.gz"))


def test_translation_data_module_batches_and_vocabularies():
    data = datasets.TranslationData(limit=(300, 40, 50), batch_size=16)
    assert data.target_words[:4] == list(TARGET_SPECIALS) and data.source_words[:2] == ["<pad>", "<unk>"]
    tokens, train = datasets.tatoeba_tokens("morphemes"), datasets.tatoeba_split()[0].tolist()[:300]
    assert data.source_words == Vocabulary.build([tokens[i][0] for i in train], 2).words
    assert data.target_words == Vocabulary.build([tokens[i][1] for i in train], 2, TARGET_SPECIALS).words
    assert [len(data.splits[s]) for s in ("val", "test")] == [40, 50] and len(data.splits["train"]) <= 300
    src, lengths, tgt = next(iter(data.train_dataloader()))
    assert src.shape[0] == 16 and int(lengths.max()) == src.shape[1] and (tgt[:, 0] == BOS).all()
    assert ((tgt == EOS).sum(1) == 1).all()


# ---- models: padding never changes an answer; attention never reads padding ----

def _model(attention: bool, layer=nn.GRU):
    torch.manual_seed(0)
    if attention:
        encoder = Encoder(layer(4, 3, batch_first=True, bidirectional=True), 12, 4)
        return Seq2Seq(encoder, Decoder(layer(4 + 6, 5, batch_first=True), 9, 4, AdditiveAttention(5, 6, 7)))
    return Seq2Seq(Encoder(layer(4, 6, batch_first=True), 12, 4), Decoder(layer(4, 5, batch_first=True), 9, 4))


@pytest.mark.parametrize("attention", [False, True])
def test_padding_never_changes_logits_or_translations(attention):
    model = _model(attention).double().eval()
    src, lengths = torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 10, 11]]), torch.tensor([3, 6])
    tgt = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 8, 0]])
    torch.testing.assert_close(model(src, lengths, tgt)[:1], model(src[:1, :3], lengths[:1], tgt[:1]), atol=1e-12, rtol=0)
    ids, maps = model.greedy(src, lengths)
    alone, alone_maps = model.greedy(src[:1, :3], lengths[:1])
    assert ids[0] == alone[0] and len(ids[0]) <= 2 * 3 + 10
    assert model.beam_search(src, lengths, beam=3)[0] == model.beam_search(src[:1, :3], lengths[:1], beam=3)[0]
    if attention:
        torch.testing.assert_close(maps[0], alone_maps[0], atol=1e-12, rtol=0)
        assert maps[0].shape == (min(len(ids[0]) + 1, 16), 3)


def test_attention_weights_sum_to_one_over_real_tokens_only():
    torch.manual_seed(0)
    attention = AdditiveAttention(5, 6, 7)
    memory, mask = torch.randn(2, 4, 6), torch.tensor([[True, True, False, False], [True] * 4])
    context, weights = attention(torch.randn(2, 5), memory, mask)
    assert (weights[0, 2:] == 0).all() and torch.allclose(weights.sum(1), torch.ones(2))
    torch.testing.assert_close(context, (weights.unsqueeze(-1) * memory).sum(1))


def test_beam_of_one_is_greedy_and_length_penalty_favours_longer():
    model = _model(True).eval()
    src = torch.randint(2, 12, (6, 5), generator=torch.Generator().manual_seed(1))
    assert model.beam_search(src, beam=1) == model.greedy(src)[0]
    short, long_ = (model.beam_search(src, beam=4, alpha=a) for a in (0.0, 3.0))
    assert sum(map(len, long_)) >= sum(map(len, short))


# ---- bad input ----

def _system(words=None):
    return Seq2SeqSystem(_model(True), ["<pad>", "<unk>", *"abcdefghij"], list(TARGET_SPECIALS) + list("vwxyz"),
                         tokenizer="spaces")


def test_empty_unknown_or_malformed_input_is_refused():
    system = _system()
    assert len(translate(system, ["a b c", "d"], beam=2)) == 2
    for text in ("", "   "):
        with pytest.raises(ValueError, match="at least one token"):
            translate(system, [text])
    with pytest.raises(ValueError, match=r"none of the tokens \['q', 'r'\].*source vocabulary \(12 words\)"):
        translate(system, ["q r"])
    with pytest.raises(ValueError, match=r"source ids of shape \(N, S\)"):
        system.model.greedy(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="input_size 4"):
        Encoder(nn.GRU(5, 3, batch_first=True), 12, 4)
    with pytest.raises(ValueError, match=r"input_size 4 \+ 6"):
        Decoder(nn.GRU(4, 5, batch_first=True), 9, 4, AdditiveAttention(5, 6, 7))
    with pytest.raises(ValueError, match="tokenizer"):
        Seq2SeqSystem(_model(False), tokenizer="bpe")
    with pytest.raises(ValueError, match="saved with its vocabularies"):
        translate(Seq2SeqSystem(_model(False)), ["a"])


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"one source row per word \(13\), got 12 rows"):
        Seq2SeqSystem(_model(True), ["<pad>", "<unk>", *"abcdefghijk"])
    system = _system()
    lk._fit(lk.trainer(max_epochs=1), system, DataLoader(_pairs(), batch_size=4))
    path = tmp_path / "s.ckpt"
    system.trainer.save_checkpoint(path)
    with pytest.raises(ValueError, match=r"one target row per word \(9\), got 7 rows.*different vocabularies"):
        Seq2SeqSystem.load_from_checkpoint(path, model=Seq2Seq(Encoder(nn.GRU(4, 3, batch_first=True), 12, 4),
                                                               Decoder(nn.GRU(4, 5, batch_first=True), 7, 4)))


def test_loss_ignores_target_padding():
    system = _system().eval()
    src, lengths = torch.tensor([[2, 3, 4]]), torch.tensor([3])
    tgt = torch.tensor([[BOS, 4, 5, EOS]])
    padded = torch.tensor([[BOS, 4, 5, EOS, 0, 0]])
    a, b = system._step((src, lengths, tgt), "train"), system._step((src, lengths, padded), "train")
    torch.testing.assert_close(a, b)


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _pairs(N=16, S=5, T=4, same_length=False):
    g = torch.Generator().manual_seed(0)
    lengths = torch.full((N,), S) if same_length else torch.randint(1, S + 1, (N,), generator=g)
    src = torch.randint(2, 12, (N, S), generator=g) * (torch.arange(S) < lengths.unsqueeze(1))
    tgt = torch.cat([torch.full((N, 1), BOS), torch.randint(4, 9, (N, T), generator=g), torch.full((N, 1), EOS)], 1)
    return TensorDataset(src, lengths, tgt)


def _make(dropout=0.0):
    def make():
        pl.seed_everything(0, verbose=False)
        model = GRUSeq2Seq(12, 9, embedding_dim=4, hidden_size=6, attention=True, dropout=dropout)
        return Seq2SeqSystem(model, ["<pad>", "<unk>", *"abcdefghij"], list(TARGET_SPECIALS) + list("vwxyz"), lr=0.01)
    return make


def test_predict():
    lk.check_predict(_make(), DataLoader(_pairs(), batch_size=4))


def test_checkpoint_round_trip(tmp_path):
    loader = DataLoader(_pairs(), batch_size=4)
    lk.check_checkpoint(_make(0.1), loader, loader, tmp_path,
                        model=GRUSeq2Seq(12, 9, embedding_dim=4, hidden_size=6, attention=True, dropout=0.1))


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(_pairs(), batch_size=4)
    lk.check_resume(_make(), loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    lk.check_ddp(_make(), _pairs(same_length=True), batch_size=8, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_make(), DataLoader(_pairs(), batch_size=4))


def test_gpu():
    lk.check_gpu(_make(), DataLoader(_pairs(), batch_size=4))


@pytest.mark.parametrize("attention", [False, True])
def test_swap_torch_layer_for_the_lessons_layer_inside_the_system(attention):
    system = Seq2SeqSystem(_model(attention))
    src, lengths, tgt = _pairs(N=4).tensors
    lk.check_swap(system, {nn.GRU: GRU.from_torch}, (src, lengths, tgt[:, :-1]))
    swapped = lk.swap(system.double(), {nn.GRU: GRU.from_torch}).eval()
    assert swapped.model.beam_search(src, lengths, 3) == system.eval().model.beam_search(src, lengths, 3)


# ---- the command line: fit, then translate the reader's sentence ----

def _run(*args, cwd):
    return lk.run_script(seq2seq.__file__, *args, cwd=cwd)


def test_command_line_help_and_config(tmp_path):
    help_text = _run("fit", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "--data" in help_text.stdout
    config = _run("fit", "--print_config", cwd=tmp_path).stdout
    assert "class_path: seq2seq.GRUSeq2Seq" in config and "class_path: lessons.datasets.TranslationData" in config


def test_command_line_fits_then_translates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seq2seq.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                  "--trainer.enable_model_summary", "false", "--data.limit", "[200, 20, 20]"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = Seq2SeqSystem.load_from_checkpoint(path)  # rebuilt from the saved class path and sizes
    assert system.hparams.tokenizer == "kiwi"
    assert system.hparams.target_words == datasets.TranslationData(limit=(200, 20, 20)).target_words
    (out,) = seq2seq.main(["translate", "--text", "난 널 사랑해", "--beam", "3"])
    assert isinstance(out, str) and capsys.readouterr().out == f"난 널 사랑해\t{out}\n"
    with pytest.raises(ValueError, match="none of the tokens"):
        seq2seq.main(["translate", "--text", "ZZZ", "--ckpt_path", str(path)])
    with pytest.raises(ValueError, match="at least one token"):
        seq2seq.main(["translate", "--text", " "])


# ---- the benchmark that makes the page's tables ----

def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "translation.py", "translation_benchmark")


def _shape(text):
    return [r.split("|")[1] for r in text.splitlines() if r.startswith("|") and not r.startswith("|---")]


def test_benchmark_quick_mode_writes_the_committed_formats(tmp_path):
    results = _benchmark().main(["--quick", "--out", str(tmp_path)])
    saved = committed("translation.json")
    assert json.loads((tmp_path / "translation.json").read_text(encoding="utf-8")).keys() == saved.keys()
    assert results["models"].keys() == saved["models"].keys()
    assert results["models"]["attention"].keys() == saved["models"]["attention"].keys()
    for name in ("translation.md", "translation.en.md"):
        quick, full = ((d / name).read_text(encoding="utf-8") for d in (tmp_path, ROOT / "benchmarks" / "results"))
        assert _shape(quick)[:3] == _shape(full)[:3], name
    assert (tmp_path / "attention.png").stat().st_size > 1000


def test_committed_tables_are_the_render_of_the_committed_json():
    bench, results = _benchmark(), committed("translation.json")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        path = ROOT / "benchmarks" / "results" / f"translation{suffix}.md"
        assert path.read_text(encoding="utf-8") == bench.render_table(results, lang)
        assert (ROOT / "docs" / "figures" / f"attention{suffix}.png").is_file()


QUOTED = {("test", "plain"): 5.3, ("test_std", "plain"): 1.8, ("test", "attention"): 14.5, ("test_std", "attention"): 1.0,
          ("beam", "plain"): 5.6, ("beam_std", "plain"): 1.7, ("beam", "attention"): 16.6, ("beam_std", "attention"): 0.6,
          ("gap", "1–7"): 10.4, ("gap", "8–12"): 8.8, ("gap", "13+"): 9.9,
          ("epoch_s", "plain"): 3.2, ("epoch_s", "attention"): 5.8}


def check_page_claims(runs, tol=None):
    """The numbers and conclusions docs/seq2seq.md and .en.md state (``tol=None``: the committed run, as rounded there)."""
    models, plain, att = runs["models"], runs["models"]["plain"], runs["models"]["attention"]
    actual = {}
    for name, m in models.items():
        actual |= {("test", name): m["test_mean"], ("test_std", name): m["test_std"], ("beam", name): m["beam_mean"],
                   ("beam_std", name): m["beam_std"], ("epoch_s", name): m["epoch_s"]}
    actual |= {("gap", b): att["buckets"][b]["mean"] - plain["buckets"][b]["mean"] for b in plain["buckets"]}
    check_quoted(actual, QUOTED, tol, digits=1)
    # the data, the split and the way Korean is cut do not depend on the run
    assert runs["sizes"] == {"train": 3038, "val": 379, "test": 381, "train_used": 3033}
    cfg = runs["config"]  # the setup the page describes
    assert (cfg["embed"], cfg["hidden"], cfg["dropout"], cfg["lr"], cfg["batch_size"], cfg["min_freq"], cfg["max_train_len"],
            cfg["beam"], cfg["alpha"], cfg["seeds"]) == (64, 128, 0.3, 3e-3, 32, 2, 30, 5, 0.6, [0, 1, 2])
    assert [plain["buckets"][b]["count"] for b in ("1–7", "8–12", "13+")] == [89, 206, 86]
    tokens = {(k, name): row[k] for name, row in runs["tokens"].items() for k in ("vocab", "test_unknown", "mean_length")}
    assert {k: round(v, 3) for k, v in tokens.items()} == {
        ("vocab", "morphemes"): 2336, ("test_unknown", "morphemes"): 0.038, ("mean_length", "morphemes"): 10.062,
        ("vocab", "spaces"): 5132, ("test_unknown", "spaces"): 0.29, ("mean_length", "spaces"): 4.287,
        ("vocab", "chars"): 890, ("test_unknown", "chars"): 0.003, ("mean_length", "chars"): 12.028}
    assert runs["love"]["pairs_in_data"] == []
    # attention beats the plain model beyond both spreads, overall and in every length bucket
    assert att["test_mean"] - att["test_std"] > plain["test_mean"] + plain["test_std"] and att["test_mean"] > 2 * plain["test_mean"]
    for b in plain["buckets"]:
        assert att["buckets"][b]["mean"] - att["buckets"][b]["std"] > plain["buckets"][b]["mean"] + plain["buckets"][b]["std"]
    gaps = [actual[("gap", b)] for b in plain["buckets"]]
    assert max(gaps) - min(gaps) < 2.5  # alike: no bucket where attention helps clearly more
    # beam search helps the attention model beyond the spread, not the plain one
    assert att["beam_mean"] - att["beam_std"] > att["test_mean"] + att["test_std"]
    assert abs(plain["beam_mean"] - plain["test_mean"]) < plain["test_std"] + plain["beam_std"]
    assert 1.6 < att["epoch_s"] / plain["epoch_s"] < 2.4 and (plain["parameters"], att["parameters"]) == (479628, 694412)
    assert runs["cpu_seconds"] < 25 * 60
    if tol is None:  # the samples as the page prints them
        assert min(att["best_epochs"] + plain["best_epochs"]) >= 12 and runs["config"]["epochs"] == 15
        assert [o["beam"] for o in runs["love"]["outputs"]["plain"]] == ["i'm sorry."] * 3
        assert all("you" in o["beam"] for o in runs["love"]["outputs"]["attention"])
        assert runs["love"]["outputs"]["attention"][1]["beam"] == "i do you do you."
        assert [s["greedy"] for s in att["samples"]][2] == "turn left."
        looked_at = {(k, word): s["source"][max(range(len(row)), key=row.__getitem__)]
                     for k, s in enumerate(att["samples"]) for word, row in zip(s["output"], s["attention"])}
        assert [looked_at[key] for key in ((2, "turn"), (2, "left"), (1, "is"), (1, "not"), (3, "don't"), (0, "tom"))] == [
            "돌", "돌", "안", "안", "지", "야"]


def test_the_data_facts_the_page_states():
    pairs, tokens = datasets.load_tatoeba(), datasets.tatoeba_tokens("morphemes")
    train, _, test = (p.tolist() for p in datasets.tatoeba_split())
    seen = collections.Counter(w for i in train for w in tokens[i][1])
    rare = [i for i in test if any(seen[w] < 2 for w in english_words(pairs[i][0]))]
    long_ = [len(tokens[i][0]) for i in test if len(tokens[i][0]) >= 13]
    assert (len(rare), len(test), round(len(rare) / len(test), 2)) == (179, 381, 0.47)
    assert (sum(n < 20 for n in long_), len(long_)) == (79, 86)
    assert sum(pairs[i][0].startswith("I'm sorry") for i in train) == 20


def test_the_pages_claims_hold_in_the_committed_full_run():
    check_page_claims(committed("translation.json"))


@pytest.mark.slow
def test_full_benchmark_reproduces_the_committed_run(tmp_path):
    check_page_claims(_benchmark().main(["--out", str(tmp_path), "--figures", str(tmp_path), "--jobs", "2"]), tol=0.25)


