"""Tests of lessons/captioning.py and its data (lessons/datasets.py, ``# --- captioning``): the digits are split
before strips are composed (no test strip shows a training image); captions become ids with ``<eos>`` and -100;
Korean and English captions give the same ids; bad images, unknown words and a checkpoint of another vocabulary
are refused clearly; padding never changes a caption; beam search finds captions at least as likely as greedy
decoding; attention weights are distributions over the columns; the system passes the course's Lightning checks
(both decoders, nn.LSTM swapped for the lesson's LSTM); the command line fits and then captions a reader's image;
the benchmark writes the committed formats, and the page's claims hold in the committed full run
(``-m slow`` runs it again)."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_checks as lk
from claims import check_quoted, committed
from lessons import captioning, datasets
from lessons.captioning import (BOS, DIGIT_WORDS, EOS, SPECIALS, CaptionData, CaptionModel, CaptionSystem, DigitEncoder,
                                beam_search, caption, encode_captions, font_digits, greedy, prepare_images, split_strips)
from lessons.lstm import LSTM

ROOT = Path(__file__).resolve().parents[1]
WORDS = SPECIALS + DIGIT_WORDS["ko"]


# ---- data: split first, then compose ----

def test_digit_images_come_from_scikit_learn():
    images, labels = datasets.load_digit_images()
    assert tuple(images.shape) == (1797, 8, 8) and float(images.min()) == 0 and float(images.max()) == 1
    assert labels.bincount().tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_test_strips_show_only_images_no_training_strip_shows():
    M = 100
    images = torch.arange(1, M + 1).float().view(M, 1, 1).expand(M, 8, 8) / M  # image m is filled with (m + 1) / M
    labels = torch.arange(M) % 10
    parts = split_strips(images, labels, (200, 50, 50), seed=3)
    seen = {}
    for split, (strips, y, captions) in parts.items():
        assert tuple(strips.shape[1:]) == (1, 8, 32) and len(y) == len(captions) == len(strips)
        blocks = strips[:, 0, 0].view(len(strips), 4, 8)[:, :, 0]  # (n, 4): the value of each 8-pixel block
        ids = {round(float(v) * M) - 1 for v in blocks.flatten() if v > 0}
        seen[split] = ids
        for row, text, block in zip(y, captions, blocks):  # the caption names the digits, left to right
            digits = [round(float(v) * M - 1) % 10 for v in block if v > 0]
            assert text == " ".join(DIGIT_WORDS["ko"][d] for d in digits)
            assert row[: len(digits) + 1].tolist() == [d + len(SPECIALS) for d in digits] + [EOS]
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"] and not seen["val"] & seen["test"]
    assert len(seen["train"]) > 60 and len(seen["test"]) > 10  # 70 / 15 / 15 of the images
    again = split_strips(images, labels, (200, 50, 50), seed=3)
    assert all(torch.equal(parts[s][0], again[s][0]) for s in parts)


def test_strips_have_one_to_four_digits_from_the_left():
    images, labels = font_digits(200)
    strips, y, captions = split_strips(images, labels, (400, 10, 10))["train"]
    lengths = [len(c.split()) for c in captions]
    assert set(lengths) == {1, 2, 3, 4}
    for strip, n in zip(strips, lengths):  # nothing right of the last digit
        assert float(strip[0, :, 8 * n:].abs().sum()) == 0


def test_korean_and_english_captions_give_the_same_ids():
    images, labels = font_digits(100)
    ko, en = (split_strips(images, labels, (50, 10, 10), language=lang)["train"] for lang in ("ko", "en"))
    assert torch.equal(ko[1], en[1]) and torch.equal(ko[0], en[0])
    assert ko[2][0].split()[0] in DIGIT_WORDS["ko"] and en[2][0].split()[0] in DIGIT_WORDS["en"]


def test_captions_become_ids_with_eos_and_padding():
    y = encode_captions(["삼 칠 일", "영"], WORDS)
    assert y.tolist() == [[6, 10, 4, EOS], [3, EOS, -100, -100]]
    for bad in ("삼 칠 열", "", "<eos>", "three"):
        with pytest.raises(ValueError, match=r"expected a caption of words from \['영', '일'"):
            encode_captions([bad], WORDS)


# ---- bad images ----

def test_images_of_the_wrong_size_or_channels_are_refused():
    assert tuple(prepare_images(torch.rand(8, 16)).shape) == (1, 1, 8, 32)
    assert tuple(prepare_images(torch.rand(1, 8, 32)).shape) == (1, 1, 8, 32)
    assert float(prepare_images(torch.ones(8, 8))[0, 0, :, 8:].sum()) == 0  # padded with background on the right
    for shape in ((3, 8, 32), (8, 33), (9, 32), (2, 3, 8, 32), (32,)):
        with pytest.raises(ValueError, match=r"expected one grey channel.*W <= 32, got " + str(shape).replace("(", r"\(").replace(")", r"\)")):
            prepare_images(torch.rand(shape))
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]"):
        prepare_images(torch.full((8, 8), 16.0))
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 8, 32\), got \(2, 1, 8, 24\)"):
        DigitEncoder()(torch.zeros(2, 1, 8, 24))
    with pytest.raises(ValueError, match="divisible by 4"):
        DigitEncoder(width=30)
    with pytest.raises(ValueError, match=r"digit images \(M, 8, 8\)"):
        split_strips(torch.zeros(10, 8, 9), torch.zeros(10))


# ---- models ----

def _model(attention=False, rnn=None, seed=0):
    torch.manual_seed(seed)
    return CaptionModel(DigitEncoder(32, 4, 8), rnn or nn.LSTM(6, 8, batch_first=True), len(WORDS), attention=attention)


def _strips(n=16, seed=0):
    images, labels = font_digits(60, seed=seed)
    strips, y, _ = split_strips(images, labels, (n, 4, 4), seed=seed)["train"]
    return strips, y


@pytest.mark.parametrize("attention", [False, True])
def test_padding_never_changes_a_caption(attention):
    model = _model(attention).double().eval()
    strips, y = _strips()
    strips = strips.double()
    tokens = torch.cat([torch.full((len(y), 1), BOS), y[:, :-1].clamp(min=0)], 1)
    short = int((y[0] != -100).sum())  # caption 0 alone, without the padding the batch adds
    both = model(strips, tokens)
    alone = model(strips[:1], tokens[:1, :short])
    torch.testing.assert_close(both[:1, :short], alone, atol=1e-12, rtol=0)
    ids, _ = greedy(model, strips, 6)
    for n in range(4):
        one, _ = greedy(model, strips[n:n + 1], 6)
        assert ids[n, : one.shape[1]].tolist() == one[0].tolist() and not ids[n, one.shape[1]:].any()


def _log_probability(model, image, ids):
    tokens = torch.tensor([[BOS] + ids])
    logp = model(image[None], tokens).log_softmax(-1)[0]
    return float(sum(logp[t, w] for t, w in enumerate(ids + [EOS])))


@pytest.mark.parametrize("attention", [False, True])
def test_beam_search_finds_captions_at_least_as_likely_as_greedy(attention):
    torch.manual_seed(0)
    model = _model(attention).eval()
    with torch.no_grad():
        model.head.bias[EOS] = 2.0  # captions end within a few words
    strips, _ = _strips(8)
    ids, _ = greedy(model, strips, 6)
    greedy_ids = [row[: (row + [EOS]).index(EOS)] for row in ids.tolist()]
    ended = [EOS in row for row in ids.tolist()]
    assert sum(ended) >= 4
    with torch.no_grad():
        for image, g, end, one, three in zip(strips, greedy_ids, ended, beam_search(model, strips, 1, 6),
                                             beam_search(model, strips, 3, 6)):
            assert one == g  # beam 1 is greedy decoding
            if end:  # a finished greedy caption is one of the hypotheses beam search weighs
                assert _log_probability(model, image, three) >= _log_probability(model, image, g) - 1e-5


def test_attention_weights_are_distributions_over_the_columns():
    model = _model(attention=True).eval()
    strips, _ = _strips(4)
    ids, weights = greedy(model, strips, 5)
    assert tuple(weights.shape) == (4, ids.shape[1], 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, ids.shape[1]))
    assert greedy(_model(), strips, 5)[1] is None


def test_the_decoder_takes_a_gru_too():
    model = _model(rnn=nn.GRU(6, 8, batch_first=True)).eval()
    strips, y = _strips(4)
    assert tuple(model(strips, y.clamp(min=0)).shape) == (4, y.shape[1], len(WORDS))


# ---- vocabulary in the checkpoint ----

def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected 13 words starting with \['<pad>', '<bos>', '<eos>'\].*different vocabularies"):
        CaptionSystem(_model(), WORDS[:-1])
    with pytest.raises(ValueError, match="different vocabularies"):
        CaptionSystem(_model(), ["<unk>"] + WORDS[1:])
    system = CaptionSystem(_model(), WORDS)
    lk._fit(lk.trainer(max_epochs=1), system, DataLoader(TensorDataset(*_strips(4)), batch_size=4))
    path = tmp_path / "c.ckpt"
    system.trainer.save_checkpoint(path)
    other = CaptionModel(DigitEncoder(32, 4, 8), nn.LSTM(6, 8, batch_first=True), len(WORDS) + 2)
    with pytest.raises(ValueError, match="different vocabularies"):
        CaptionSystem.load_from_checkpoint(path, model=other)


def test_loss_and_accuracy_ignore_padding():
    system = CaptionSystem(_model(), WORDS)
    strips, y = _strips(4)
    system._step((strips, y), "val")
    total = int((y != -100).sum())
    assert system.metrics["val_metric"].tp.sum() + system.metrics["val_metric"].fn.sum() == total


# ---- the system is complete: the checks every LightningModule of the course passes ----

def _system(attention=False):
    pl.seed_everything(0, verbose=False)
    return CaptionSystem(_model(attention), WORDS, lr=0.01)


@pytest.mark.parametrize("attention", [False, True])
def test_predict(attention):
    lk.check_predict(lambda: _system(attention), DataLoader(TensorDataset(*_strips()), batch_size=4))


@pytest.mark.parametrize("attention", [False, True])
def test_checkpoint_round_trip(tmp_path, attention):
    loader = DataLoader(TensorDataset(*_strips()), batch_size=4)
    lk.check_checkpoint(lambda: _system(attention), loader, loader, tmp_path, model=_model(attention))


def test_resume_equals_uninterrupted(tmp_path):
    loader = DataLoader(TensorDataset(*_strips()), batch_size=4)
    lk.check_resume(lambda: _system(True), loader, loader, tmp_path)


def test_ddp_two_processes_equal_one(tmp_path):
    strips, y = _strips()
    same = [i for i in range(len(y)) if int((y[i] != -100).sum()) == int((y[0] != -100).sum())]  # equal lengths
    lk.check_ddp(lambda: _system(True), TensorDataset(strips[same * 4][:8], y[same * 4][:8]), batch_size=4, tmp_path=tmp_path)


def test_bf16_mixed_on_cpu():
    lk.check_bf16(lambda: _system(True), DataLoader(TensorDataset(*_strips()), batch_size=4))


def test_gpu():
    lk.check_gpu(lambda: _system(True), DataLoader(TensorDataset(*_strips()), batch_size=4))


@pytest.mark.parametrize("attention", [False, True])
def test_swap_torch_layer_for_the_lessons_layer_inside_the_system(attention):
    system = CaptionSystem(_model(attention), WORDS)
    strips, y = _strips(4)
    lk.check_swap(system, {nn.LSTM: LSTM.from_torch}, (strips, y.clamp(min=0)))


# ---- a short training, the command line, the reader's own image ----

def test_font_strips_are_learned_and_captioned():
    pl.seed_everything(0, verbose=False)
    data = CaptionData(strips=(2000, 300, 300), seed=0)
    model = CaptionModel(DigitEncoder(), nn.LSTM(32, 64, batch_first=True), len(data.words), attention=True)
    system = CaptionSystem(model, data.words, lr=3e-3)
    trainer = lk._fit(lk.trainer(max_epochs=8), system, data.train_dataloader(), data.val_dataloader())
    assert float(trainer.callback_metrics["val_exact"]) > 0.6
    strips, y = data.parts["test"][:]
    truth = [" ".join(WORDS[i] for i in row if i > 2) for row in y.tolist()]
    assert sum(p == t for p, t in zip(caption(system, strips), truth)) / len(truth) > 0.4
    assert caption(system, strips, beam=3)[0].split()[0] in DIGIT_WORDS["ko"]


def test_command_line_help_and_config(tmp_path):
    run = lambda *a: lk.run_script(captioning.__file__, *a, cwd=tmp_path)  # noqa: E731
    help_text = run("fit", "--help")
    assert help_text.returncode == 0 and "--data.language" in help_text.stdout
    config = run("fit", "--print_config", "--data.language", "en").stdout
    assert "class_path: captioning.CaptionModel" in config and "class_path: torch.nn.LSTM" in config
    assert "language: en" in config


def test_command_line_fits_then_captions_the_readers_image(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    captioning.main(["fit", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "false", "--data.strips", "[200, 50, 50]"])
    (path,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    system = CaptionSystem.load_from_checkpoint(path)  # the model is rebuilt from its saved class path
    assert system.hparams.words == WORDS and system.model.attention
    images, _ = font_digits(3)
    strip = torch.cat(list(images), dim=1)  # (8, 24): three digits, narrower than 32
    numpy = pytest.importorskip("numpy")
    numpy.save(tmp_path / "strip.npy", strip.numpy())
    torch.save(strip[None], tmp_path / "strip.pt")  # (1, 8, 24)
    captions = captioning.main(["caption", "--image", "strip.npy", "--image", "strip.pt", "--beam", "2"])
    assert len(captions) == 2 and captions[0] == captions[1]
    assert all(w in DIGIT_WORDS["ko"] for w in captions[0].split())
    assert capsys.readouterr().out.endswith(f"{captions[1]}\tstrip.pt\n")
    with pytest.raises(ValueError, match="trained on 'en' captions.*--data.language en"):
        captioning.main(["caption", "--image", "strip.npy", "--language", "en"])
    torch.save(torch.rand(3, 8, 8), tmp_path / "rgb.pt")
    with pytest.raises(ValueError, match=r"one grey channel.*got \(3, 8, 8\)"):
        captioning.main(["caption", "--image", "rgb.pt", "--ckpt_path", str(path)])
    with pytest.raises(ValueError, match=r"\.npy or \.pt"):
        captioning.main(["caption", "--image", "strip.png"])


# ---- the benchmark that makes the page's tables and figures ----

def _benchmark():
    return lk.load_script(ROOT / "benchmarks" / "captioning.py", "captioning_benchmark")


def _shape(text):
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [r.split("|")[1] for r in rows if not r.startswith("|---")]


def test_benchmark_quick_mode_writes_the_committed_formats(tmp_path):
    results = _benchmark().main(["--quick", "--out", str(tmp_path)])
    saved = committed("captioning.json")
    assert json.loads((tmp_path / "captioning.json").read_text(encoding="utf-8")).keys() == saved.keys()
    assert results["models"].keys() == saved["models"].keys()
    assert results["models"]["plain"].keys() == saved["models"]["plain"].keys()
    for name in ("captioning.md", "captioning.en.md"):
        quick, full = ((d / name).read_text(encoding="utf-8") for d in (tmp_path, ROOT / "benchmarks" / "results"))
        assert _shape(quick) == _shape(full), name
    for name in ("captioning-samples.png", "captioning-attention.en.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_committed_tables_are_the_render_of_the_committed_json():
    bench, results = _benchmark(), committed("captioning.json")
    for lang, suffix in (("ko", ""), ("en", ".en")):
        path = ROOT / "benchmarks" / "results" / f"captioning{suffix}.md"
        assert path.read_text(encoding="utf-8") == bench.render_table(results, lang)
        for name in ("samples", "attention"):
            assert (ROOT / "docs" / "figures" / f"captioning-{name}{suffix}.png").is_file()


def _check_claims(runs, tol=None):
    """What the pages say about a run (``tol=None``: the committed one, numbers as rounded there)."""
    plain, attention = runs["models"]["plain"], runs["models"]["attention"]
    assert runs["config"]["seeds"] == [0, 1, 2] and runs["config"]["strips"] == [8000, 1000, 1000]
    assert runs["config"]["epochs"] == 25 and runs["config"]["lr"] == 1e-3
    quoted = {("plain", "test_exact_mean"): 0.890, ("plain", "test_exact_std"): 0.006, ("attention", "test_exact_mean"): 0.943,
              ("attention", "test_exact_std"): 0.013, ("plain", "test_beam_exact_mean"): 0.895,
              ("attention", "test_beam_exact_mean"): 0.943, ("plain", "1"): 0.990, ("attention", "1"): 0.999,
              ("plain", "4"): 0.707, ("plain", "4std"): 0.026, ("attention", "4"): 0.870, ("attention", "4std"): 0.024,
              ("plain", "bleu"): 0.834, ("attention", "bleu"): 0.923}
    models = runs["models"]
    actual = {(m, k): (models[m]["by_length"][k[0]]["std" if k.endswith("std") else "mean"] if k[0].isdigit() else
                       models[m]["test_bleu_mean"] if k == "bleu" else models[m][k]) for m, k in quoted}
    check_quoted(actual, quoted, tol, digits=3)
    # the target and the comparison: attention >= 0.90, above the plain decoder beyond both spreads
    assert attention["test_exact_mean"] >= 0.90 > plain["test_exact_mean"]
    assert attention["test_exact_mean"] - attention["test_exact_std"] > plain["test_exact_mean"] + plain["test_exact_std"]
    assert attention["test_bleu_mean"] > plain["test_bleu_mean"]
    # the gap is largest on four-digit strips; one-digit strips are nearly always right for both
    gaps = [attention["by_length"][n]["mean"] - plain["by_length"][n]["mean"] for n in "1234"]
    assert max(gaps) == gaps[3] > 0.1 and min(plain["by_length"]["1"]["mean"], attention["by_length"]["1"]["mean"]) >= 0.99
    # beam 3 changes less than the spread between seeds
    for m in (plain, attention):
        assert abs(m["test_beam_exact_mean"] - m["test_exact_mean"]) <= m["test_exact_std"]
    # attention learns faster; both are still improving at the end of the budget
    assert attention["val_curve_mean"][4] > plain["val_curve_mean"][4] + 0.1
    assert min(plain["best_epochs"] + attention["best_epochs"]) >= runs["config"]["epochs"] - 1
    assert 1.0 < attention["epoch_s"] / plain["epoch_s"] < 1.4 and 1.1 < attention["parameters"] / plain["parameters"] < 1.2
    for model in (plain, attention):
        assert all(r["epoch_s"] * runs["config"]["epochs"] < 5 * 60 for r in model["runs"])  # one job: under 5 minutes
    if tol is None:  # the page's rounded statements about the committed run and its figures
        assert (round(attention["val_curve_mean"][4], 2), round(plain["val_curve_mean"][4], 2)) == (0.71, 0.51)
        assert round(100 * attention["test_bleu_mean"], 1) == 92.3 and round(100 * plain["test_bleu_mean"], 1) == 83.4
        assert round(100 * (attention["test_exact_mean"] - plain["test_exact_mean"]), 1) == 5.2
        assert (round(attention["epoch_s"], 1), round(plain["epoch_s"], 1), round(runs["cpu_seconds"])) == (2.1, 1.9, 341)
        assert round(100 * (attention["parameters"] / plain["parameters"] - 1)) == 14
        s = runs["samples"]
        looked = [[max(range(8), key=lambda j: w[j]) for w in words] for words in s["weights"]]
        shown = sorted(range(len(s["images"])), key=lambda i: -len(s["truth"][i]))[:3]  # the attention figure's strips
        assert shown == [1, 5, 7]
        assert s["truth"][7] == s["attention"][7] == [7, 7, 5, 6] and looked[7][:4] == [0, 2, 4, 6]
        assert s["truth"][1] == s["attention"][1] == [1, 6, 3, 1] and looked[1][:3] == [0, 2, 4]
        assert s["truth"][5] == [1, 0, 8, 5] and s["attention"][5] == [1, 8, 0, 5] and looked[5][:4] == [0, 4, 2, 6]
        assert s["plain"][1] == [1, 6, 1, 3]  # the plain decoder swaps two digits of the second strip


def test_the_pages_claims_hold_in_the_committed_full_run():
    _check_claims(committed("captioning.json"))


@pytest.mark.slow
def test_full_benchmark_reproduces_the_committed_run(tmp_path):
    _check_claims(_benchmark().main(["--out", str(tmp_path), "--figures", str(tmp_path)]), tol=0.03)
