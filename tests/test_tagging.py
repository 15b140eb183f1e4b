"""Tests of lessons/tagging.py: CoNLL-U reading and the UD files (checksums, splits), encoding and its
errors, a sentence alone and inside a padded batch gets the same tags (characters included), the
word-only tagger is the bidirectional lesson's Tagger, loss and accuracy ignore padding, the baseline,
unknown words still get tags, checkpoints carry and check their vocabulary, the system passes the
course's Lightning checks, the command line fits and predicts, and the benchmark's tables and the
page's claims match its JSON."""

import gzip
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import datasets, tagging
from lessons.bidirectional import Bidirectional, Tagger
from lessons.tagging import (TOY_SENTENCES, CharEncoder, MostFrequentTag, PosTagger, TaggingData, TaggingSystem,
                             build_vocab, collate, encode, read_conllu, tag)

ROOT = Path(__file__).resolve().parents[1]
# the numbers the page quotes (percent, one decimal), from benchmarks/results/tagging.json
QUOTED_TAGS = {"ko_VERB_b": 39.7, "ko_VERB_c": 89.7, "ko_ADV_b": 46.0, "ko_ADV_c": 80.1, "en_VERB_b": 66.0,
    "en_VERB_c": 92.2, "en_PROPN_b": 55.9, "en_PROPN_c": 86.2, "en_NUM_b": 60.0, "en_NUM_c": 94.5,
    "en_NOUN_b": 90.0, "en_NOUN_c": 84.8, "ko_ADJ_c": 58.5}
QUOTED = {"ko_lstm": 65.9, "ko_bilstm": 70.8, "ko_bilstm_chars": 88.1, "ko_bilstm_unseen": 59.9,
    "ko_bilstm_chars_unseen": 82.5, "ko_base": 71.5, "ko_base_unseen": 50.5, "en_lstm": 85.0, "en_bilstm": 87.7,
    "en_bilstm_chars": 91.6, "en_bilstm_unseen": 59.1, "en_bilstm_chars_unseen": 73.8, "en_base": 83.7,
    "en_base_unseen": 36.7}

CONLLU = """# sent_id = 1
# text = I don't work.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
3.1\twork\twork\tVERB\tVB\t_\t_\t_\t_\t_
4\twork\twork\tVERB\tVB\t_\t0\troot\t_\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# sent_id = 2
1\t나는\t나+는\tPRON\tNP+JX\t_\t2\tnsubj\t_\t_
2\t간다\t가+ㄴ다\tVERB\tVV+EF\t_\t0\troot\t_\t_
"""


def test_read_conllu_keeps_word_lines_and_skips_ranges_and_empty_nodes(tmp_path):
    for name, opener in (("a.conllu", open), ("a.conllu.gz", gzip.open)):
        with opener(tmp_path / name, "wt", encoding="utf-8") as f:
            f.write(CONLLU)
        assert read_conllu(tmp_path / name) == [(["I", "do", "n't", "work", "."], ["PRON", "AUX", "PART", "VERB", "PUNCT"]),
                                                (["나는", "간다"], ["PRON", "VERB"])]


def test_ud_files_are_checked_and_split_by_sentence(monkeypatch):
    sizes = {}
    for language, total in (("ko", 989), ("en", 2077)):
        data = TaggingData(datasets.ud_path(language))
        sizes[language] = {s: len(p) for s, p in data.sentences.items()}
        assert sum(sizes[language].values()) == total
    assert sizes == {"ko": {"train": 791, "val": 99, "test": 99}, "en": {"train": 1661, "val": 208, "test": 208}}
    monkeypatch.setitem(datasets.UD_FILES, "ko", (datasets.UD_FILES["ko"][0], "0" * 64))
    with pytest.raises(ValueError, match="ko_gsd-ud-test.conllu.gz with SHA-256 0000"):
        datasets.ud_path("ko")
    with pytest.raises(ValueError, match="expected language 'ko' or 'en'"):
        datasets.ud_path("fr")


def test_encode_and_collate():
    vocab = build_vocab(TOY_SENTENCES, min_count=2)
    assert vocab["words"][:2] == ["<pad>", "<unk>"] and "work" in vocab["words"] and "google" not in vocab["words"]
    tokens, tags = encode(vocab, ["I", "work", "at", "Google"], ["PRON", "VERB", "ADP", "PROPN"])
    assert tokens.shape == (4, 1 + 6)  # the longest word, "Google", has 6 characters
    assert tokens[3, 0] == 1 and (tokens[3, 1:] != 0).all()  # an unknown word still has its characters
    assert tokens[0, 0] == vocab["words"].index("i") and tokens[0, 2:].eq(0).all()
    x, lengths, y = collate([(tokens, tags), encode(vocab, ["she", "is"], ["PRON", "AUX"])])
    assert x.shape == (2, 4, 7) and lengths.tolist() == [4, 2] and y[1].tolist()[2:] == [-100, -100]


def test_bad_input_gets_a_clear_error():
    vocab = build_vocab(TOY_SENTENCES)
    with pytest.raises(ValueError, match="at least one word"):
        encode(vocab, [])
    with pytest.raises(ValueError, match="one tag per word: 3 words, got 2 tags"):
        encode(vocab, ["i", "work", "here"], ["PRON", "VERB"])
    with pytest.raises(ValueError, match="expected tags among"):
        encode(vocab, ["i"], ["PRONOUN"])
    model = _model(vocab)
    with pytest.raises(ValueError, match=r"tokens of shape \(N, T, 1 \+ W\)"):
        model(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="input_size = embedding_dim"):
        PosTagger(10, 8, nn.LSTM(9, 4, batch_first=True), 3)
    with pytest.raises(ValueError, match="sized like the vocabulary"):
        TaggingSystem(_model(build_vocab(TOY_SENTENCES[:3])), vocab=vocab)
    with pytest.raises(ValueError, match="holds its vocabulary"):
        tag(TaggingSystem(model), "i work")
    with pytest.raises(ValueError, match="at least one word"):
        tag(TaggingSystem(model, vocab=vocab), "   ")


def _model(vocab, lstm=lambda d, h: nn.LSTM(d, h, batch_first=True, bidirectional=True)):
    chars = CharEncoder(len(vocab["chars"]), 6, lstm(6, 5))
    return PosTagger(len(vocab["words"]), 8, lstm(8 + 10, 7), len(vocab["tags"]), chars=chars)


@pytest.mark.parametrize("layer", ["torch", "lessons"])
def test_a_sentence_alone_and_in_a_padded_batch_gets_the_same_tags(layer):
    torch.manual_seed(0)
    vocab = build_vocab(TOY_SENTENCES, min_count=1)
    lstm = (lambda d, h: nn.LSTM(d, h, batch_first=True, bidirectional=True)) if layer == "torch" else \
        (lambda d, h: Bidirectional(nn.LSTM(d, h, batch_first=True), nn.LSTM(d, h, batch_first=True)))
    model = _model(vocab, lstm).eval()
    short, _ = encode(vocab, "i work at google".split())
    x, lengths, _ = collate([(short, torch.zeros(4, dtype=torch.long)),
                             (encode(vocab, "my friend works in the city of seoul".split())[0], torch.zeros(8, dtype=torch.long))])
    x[0, 4:] = 5  # junk in the padding: never read
    with torch.no_grad():
        alone, padded = model(short.unsqueeze(0)), model(x, lengths)
    torch.testing.assert_close(padded[:1, :4], alone)


def test_without_characters_it_is_the_bidirectional_lessons_tagger():
    torch.manual_seed(1)
    ours = PosTagger(20, 8, nn.LSTM(8, 6, batch_first=True, bidirectional=True), 5)
    theirs = Tagger(20, 8, nn.LSTM(8, 6, batch_first=True, bidirectional=True), 5)
    theirs.load_state_dict(ours.state_dict())
    tokens = torch.randint(1, 20, (3, 7))
    torch.testing.assert_close(ours(tokens, torch.tensor([7, 3, 5])), theirs(tokens, torch.tensor([7, 3, 5])))


def test_loss_and_accuracy_ignore_the_padding():
    torch.manual_seed(2)
    vocab = build_vocab(TOY_SENTENCES, min_count=1)
    system = TaggingSystem(_model(vocab), vocab=vocab).eval()
    x, lengths, y = collate([encode(vocab, w, t) for w, t in TOY_SENTENCES[:4]])
    with torch.no_grad():
        logits = system(x, lengths)
    real = y != -100
    expected_loss = nn.functional.cross_entropy(logits[real], y[real])
    expected_acc = (logits[real].argmax(-1) == y[real]).float().mean()
    trainer = lk.trainer()
    (result,) = trainer.validate(system, DataLoader([(x, lengths, y)], batch_size=None), verbose=False)
    assert result["val_loss"] == pytest.approx(float(expected_loss), abs=1e-6)
    assert result["val_acc"] == pytest.approx(float(expected_acc), abs=1e-6)


def test_most_frequent_tag_baseline():
    baseline = MostFrequentTag([(["the", "work", "work", "The"], ["DET", "NOUN", "VERB", "DET"]),
                                (["i", "work"], ["PRON", "VERB"])])
    assert baseline(["THE", "work", "zebra"]) == ["DET", "VERB", "DET"]  # unseen: the most frequent tag (DET, 2 ties → first)


def test_only_unknown_words_still_get_tags_from_their_characters():
    torch.manual_seed(3)
    vocab = build_vocab(TOY_SENTENCES, min_count=1)
    system = TaggingSystem(_model(vocab), vocab=vocab)
    tags, p = tag(system, "zxq qqqq")
    assert len(tags) == 2 and set(tags) <= set(vocab["tags"]) and p.shape == (2, len(vocab["tags"]))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))
    assert not torch.allclose(tag(system, "zxq")[1][0], tag(system, "abcdefg")[1][0])  # spelling matters


def test_checkpoint_from_another_vocabulary_is_refused(tmp_path):
    vocab = build_vocab(TOY_SENTENCES, min_count=1)
    system = _system_on(vocab)
    loader = DataLoader([encode(vocab, w, t) for w, t in TOY_SENTENCES], batch_size=4, collate_fn=collate)
    trainer = lk._fit(lk.trainer(default_root_dir=tmp_path), system, loader)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    other = {**vocab, "words": vocab["words"][:-1] + ["zebra"]}  # same sizes, another word
    with pytest.raises(ValueError, match="made with this system's vocabulary"):
        TaggingSystem.load_from_checkpoint(tmp_path / "a.ckpt", model=_model(vocab), vocab=other)
    with pytest.raises(ValueError, match="sized like the vocabulary"):
        TaggingSystem.load_from_checkpoint(tmp_path / "a.ckpt", model=_model(build_vocab(TOY_SENTENCES[:2])))
    loaded = TaggingSystem.load_from_checkpoint(tmp_path / "a.ckpt", model=_model(vocab))
    assert loaded.hparams.vocab == vocab and tag(loaded, "i work")[0] == tag(system, "i work")[0]


# ---- the system is complete: the checks every LightningModule of the course passes ----

VOCAB = build_vocab(TOY_SENTENCES, min_count=1)
ITEMS = [encode(VOCAB, w, t) for w, t in TOY_SENTENCES]


def _system_on(vocab):
    pl.seed_everything(0, verbose=False)
    return TaggingSystem(_model(vocab), vocab=vocab, lr=0.01)


def _system():
    return _system_on(VOCAB)


def _loader(items=ITEMS, batch_size=4):
    return DataLoader(items, batch_size=batch_size, collate_fn=collate)


def test_predict():
    lk.check_predict(_system, _loader())


def test_checkpoint_round_trip(tmp_path):
    lk.check_checkpoint(_system, _loader(), _loader(), tmp_path, model=_model(VOCAB))


def test_resume_equals_uninterrupted(tmp_path):
    lk.check_resume(_system, _loader(), _loader(), tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    # equal lengths: DDP averages the processes' means, equal only when they hold as many words
    four = [i for i in ITEMS if len(i[0]) == 4][:4]  # as many batches in each process (else DDP waits forever)
    dataset = [(x, y) for x, y in four]
    lk.check_ddp(_system, _Collated(dataset), batch_size=4, tmp_path=tmp_path)


class _Collated(torch.utils.data.Dataset):
    """Items already padded to one shape, so the default collate stacks them into (x, y)."""

    def __init__(self, items):
        self.items = [(torch.nn.functional.pad(x, (0, 7 - x.shape[1])), y) for x, y in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_bf16_mixed_on_cpu():
    lk.check_bf16(_system, _loader())


def test_gpu():
    lk.check_gpu(_system, _loader())


def test_swap_torch_layer_for_the_bidirectional_lesson_inside_the_system():
    system = _system()
    x, lengths, _ = collate(ITEMS[:4])
    system.model.embed.weight.requires_grad_()
    lk.check_swap(system, {nn.LSTM: Bidirectional.from_torch}, (x, lengths))


# ---- the command line ----

def _run(*args, cwd):
    return lk.run_script(tagging.__file__, *args, cwd=cwd)


def test_command_line_help_and_config(tmp_path):
    help_text = _run("fit", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "--model.model" in help_text.stdout
    config = _run("fit", "--print_config", cwd=tmp_path).stdout
    assert "class_path: tagging.PosTagger" in config and "class_path: tagging.CharEncoder" in config
    assert "class_path: tagging.TaggingData" in config and "conllu: null" in config


def test_command_line_fits_then_predicts_with_the_checkpoint(tmp_path):
    fit = _run("fit", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
               "--trainer.enable_model_summary", "false", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-2000:]
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    saved = torch.load(path, weights_only=False)  # the vocabulary and the model's class path travel inside
    assert saved["hyper_parameters"]["model"]["class_path"] == "tagging.PosTagger" and saved["vocab"]["tags"][0] == "ADJ"
    vocab = saved["vocab"]
    out = _run("predict", "--text", "i work at google", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == ["i", "work", "at", "google"] and all(r[1] in vocab["tags"] for r in rows)
    unknown = _run("predict", "--text", "qwzx 삼성전자에서", "--ckpt_path", str(path), cwd=tmp_path)
    assert unknown.returncode == 0 and "every word is unknown" in unknown.stdout
    empty = _run("predict", "--text", " ", cwd=tmp_path)
    assert empty.returncode != 0 and "at least one word" in empty.stderr


# ---- the benchmark that makes the page's tables ----

def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "tagging.py", "tagging_benchmark")


def _shape(results):
    out = {"meta": sorted(results["meta"])}
    for language in ("ko", "en"):
        r = results[language]
        out[language] = (sorted(r), sorted(r["baseline"]), {k: sorted(v) for k, v in r["models"].items()})
    return out


def test_benchmark_quick_mode_writes_the_committed_formats(tmp_path):
    quick = _benchmark().main(["--quick", "--out", str(tmp_path)])
    committed = json.loads((ROOT / "benchmarks" / "results" / "tagging.json").read_text(encoding="utf-8"))
    assert _shape(quick) == _shape(committed)
    for name in ("tagging.md", "tagging.en.md"):
        lines = lambda p: [line.split("|")[1:3] for line in p.read_text(encoding="utf-8").splitlines()  # noqa: E731
                           if line.startswith("| ")]
        assert lines(tmp_path / name) == lines(ROOT / "benchmarks" / "results" / name)


def test_committed_tables_are_the_render_of_the_committed_json():
    bench = _benchmark()
    results = json.loads((ROOT / "benchmarks" / "results" / "tagging.json").read_text(encoding="utf-8"))
    for lang, suffix in (("ko", ""), ("en", ".en")):
        text = (ROOT / "benchmarks" / "results" / f"tagging{suffix}.md").read_text(encoding="utf-8")
        assert text == bench.render_table(results, lang)
        text = (ROOT / "benchmarks" / "results" / f"tagging-tags{suffix}.md").read_text(encoding="utf-8")
        assert text == bench.render_per_tag(results, lang)


def _check_claims(results, tol=None):
    """The page's numbers (``tol=None``: as rounded there, in percent) and conclusions, for a run's results."""
    acc = lambda language, kind, key="test_acc": 100 * results[language]["models"][kind][key]["mean"]  # noqa: E731
    std = lambda language, kind, key="test_acc": 100 * results[language]["models"][kind][key]["std"]  # noqa: E731
    base = {language: 100 * results[language]["baseline"]["test_acc"] for language in ("ko", "en")}
    actual = {f"{language}_{kind}": acc(language, kind) for language in ("ko", "en") for kind in ("lstm", "bilstm", "bilstm_chars")}
    actual |= {f"{language}_{kind}_unseen": acc(language, kind, "unseen_acc") for language in ("ko", "en")
               for kind in ("bilstm", "bilstm_chars")}
    actual |= {f"{language}_base": base[language] for language in ("ko", "en")}
    actual |= {f"{language}_base_unseen": 100 * results[language]["baseline"]["unseen_acc"] for language in ("ko", "en")}
    check_quoted(actual, QUOTED, tol, digits=1)
    for language in ("ko", "en"):
        # bidirectional beats left to right, and characters beat words alone, by more than the seeds' spread
        assert acc(language, "bilstm") - acc(language, "lstm") > 2 * (std(language, "bilstm") + std(language, "lstm"))
        assert acc(language, "bilstm_chars") - acc(language, "bilstm") > 2 * (std(language, "bilstm_chars") + std(language, "bilstm"))
        for key in ("test_acc", "unseen_acc"):  # the character model is the best of the four
            assert acc(language, "bilstm_chars", key) > max(acc(language, k, key) for k in ("lstm", "bilstm"))
        assert acc(language, "bilstm_chars", "unseen_acc") - acc(language, "bilstm", "unseen_acc") > 10
    assert acc("ko", "bilstm_chars") - base["ko"] >= 10  # the target, met in Korean
    assert acc("en", "bilstm_chars") - base["en"] < 10  # and missed in English (the page says so)
    assert acc("en", "bilstm_chars") - base["en"] > 5
    assert max(acc("ko", "lstm"), acc("ko", "bilstm")) < base["ko"] + std("ko", "bilstm")  # words alone: no better in Korean
    assert acc("en", "lstm") > base["en"]
    # per tag (seed 0): closed classes nearly solved by all; the open classes the page names
    per_tag = lambda language, kind: {t: 100 * a for t, a in (results[language]["baseline"] if kind == "baseline"  # noqa: E731
                                      else results[language]["models"][kind])["per_tag"].items()}
    for language, tags in (("en", ("PUNCT", "PRON", "DET", "CCONJ")), ("ko", ("PUNCT",))):
        for kind in ("baseline", "lstm", "bilstm", "bilstm_chars"):
            assert min(per_tag(language, kind)[t] for t in tags) > 95, (language, kind)
    if tol is None:
        named = {f"{language}_{t}_{end}": per_tag(language, kind)[t] for language, t in (
            ("ko", "VERB"), ("ko", "ADV"), ("en", "VERB"), ("en", "PROPN"), ("en", "NUM"), ("en", "NOUN"))
            for end, kind in (("b", "baseline"), ("c", "bilstm_chars"))} | {"ko_ADJ_c": per_tag("ko", "bilstm_chars")["ADJ"]}
        check_quoted(named, QUOTED_TAGS, None, digits=1)
        en = results["en"]
        assert en["models"]["bilstm_chars"]["confusion"][en["tags"].index("NOUN")][en["tags"].index("PROPN")] == 34
    for language, t in (("ko", "VERB"), ("ko", "ADV"), ("en", "VERB"), ("en", "PROPN"), ("en", "NUM")):
        assert per_tag(language, "bilstm_chars")[t] > per_tag(language, "baseline")[t] + 20
    assert per_tag("en", "bilstm_chars")["NOUN"] < per_tag("en", "baseline")["NOUN"]


def test_the_pages_claims_hold_in_the_committed_full_run():
    _check_claims(committed("tagging.json"))


@pytest.mark.slow
def test_the_pages_claims_hold_in_a_fresh_full_run(tmp_path):
    _check_claims(_benchmark().main(["--out", str(tmp_path)]), tol=0.02)
