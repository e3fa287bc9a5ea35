"""RobertaTokenizerFast against the reference (latest HF RobertaTokenizerFast) and against its defining structure.

Fixtures (tests/fixtures/make_roberta_fixtures.py):
  roberta_tokenizer/tiny_bpe/                 a tiny byte-level BPE + the oracle's exact ids for many calls
  roberta_tokenizer/glue_roberta_base.json.gz per GLUE file: sha256 over all id lists + full ids of sampled rows,
                                              from roberta-base's tokenizer (tests skip when ../shared is absent)
"""
import gzip
import os
import sys
import json
import shutil
from pathlib import Path

import pytest
import torch

from transformers import AutoTokenizer, RobertaTokenizerFast

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
from fixture_io import ids_digest, read_glue  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "roberta_tokenizer"
SHARED = ROOT / ".." / "shared" / "data"
ROBERTA_BASE = SHARED / "tokenizers" / "roberta-base"
TINY = FIXTURES / "tiny_bpe"


# ------------------------------------------------------------------------------------------ GLUE, roberta-base
@pytest.fixture(scope="module")
def glue_fixture():
    if not (ROBERTA_BASE / "vocab.json").exists() or not (SHARED / "glue").exists():
        pytest.skip("../shared/data (roberta-base tokenizer, GLUE) is absent")
    with gzip.open(FIXTURES / "glue_roberta_base.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


def check_glue_file(tok, name, entry, sample_only=False):
    texts = read_glue(SHARED / "glue" / name, entry["has_header"], entry["columns"])
    assert len(texts[0]) == entry["n_rows"], f"{name}: {len(texts[0])} rows, fixture has {entry['n_rows']}"
    if sample_only:
        rows = sorted(entry["sample"], key=int)
        texts = [[col[int(i)] for i in rows] for col in texts]
    ids = tok(*texts, truncation=True, max_length=128)["input_ids"]
    if sample_only:
        bad = [i for i, x in zip(rows, ids) if x != entry["sample"][i]]
    else:
        bad = [i for i, x in entry["sample"].items() if ids[int(i)] != x]
    assert not bad, f"{name}: rows {bad[:5]} differ from the reference ({len(bad)} sampled rows differ)"
    if not sample_only:
        assert ids_digest(ids) == entry["sha256"], f"{name}: ids of unsampled rows differ from the reference"


def test_glue_ids_match_reference_all_files(glue_fixture):
    tok = RobertaTokenizerFast.from_pretrained(str(ROBERTA_BASE))
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.mask_token_id) == (0, 1, 2, 50264)
    assert tok.model_max_length == 512
    assert len(glue_fixture["files"]) == 15
    for name, entry in glue_fixture["files"].items():
        check_glue_file(tok, name, entry)


@pytest.mark.parametrize("files", [("vocab.json", "merges.txt"), ("tokenizer.json",)])
def test_glue_ids_from_partial_tokenizer_folders(glue_fixture, tmp_path, files):
    for f in files:
        shutil.copy(ROBERTA_BASE / f, tmp_path / f)
    tok = RobertaTokenizerFast.from_pretrained(str(tmp_path))
    for name, entry in glue_fixture["files"].items():
        # The sampled rows (the first 200 and every 97th: about 3,700 rows) keep this fast; the full files are
        # checked once above for the folder with all files.
        check_glue_file(tok, name, entry, sample_only=True)


def test_auto_tokenizer_roberta_base(glue_fixture):
    tok = AutoTokenizer.from_pretrained(str(ROBERTA_BASE))
    assert isinstance(tok, RobertaTokenizerFast)
    entry = glue_fixture["files"]["RTE/dev.tsv"]
    check_glue_file(tok, "RTE/dev.tsv", entry)


# ------------------------------------------------------------------------------------------ tiny BPE, exact ids
def tiny_expected():
    return json.loads((TINY / "expected.json").read_text(encoding="utf-8"))


def test_tiny_fixture_exact_ids():
    exp = tiny_expected()
    tok = RobertaTokenizerFast.from_pretrained(str(TINY))
    ids = exp["special_ids"]
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id) == \
        (ids["bos"], ids["pad"], ids["eos"], ids["unk"], ids["mask"])
    for case in exp["cases"]:
        enc = tok(*case["args"], **case["kwargs"])
        assert enc["input_ids"] == case["input_ids"], case["desc"]
        assert enc["attention_mask"] == case["attention_mask"], case["desc"]
        assert sorted(enc.keys()) == case["keys"], case["desc"]


def test_tiny_fixture_round_trip(tmp_path):
    exp = tiny_expected()
    tok = RobertaTokenizerFast.from_pretrained(str(TINY))
    tok.save_pretrained(str(tmp_path))
    again = RobertaTokenizerFast.from_pretrained(str(tmp_path))
    auto = AutoTokenizer.from_pretrained(str(tmp_path))
    assert isinstance(auto, RobertaTokenizerFast)
    assert again.model_max_length == tok.model_max_length
    for case in exp["cases"]:
        for t in (again, auto):
            assert t(*case["args"], **case["kwargs"])["input_ids"] == case["input_ids"], case["desc"]


# ------------------------------------------------------------------------------------------ tiny BPE, structure
CORPUS = ["the cat sat on the mat", "a dog ran in the park", "cats and dogs are pets",
          "the park is green and the mat is red"] * 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A BPE trained here with `tokenizers`; its raw encodings (no specials) define the expected structure."""
    from tokenizers import ByteLevelBPETokenizer

    d = tmp_path_factory.mktemp("bpe")
    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(CORPUS, vocab_size=300, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    raw.save_model(str(d))
    assert sorted(p.name for p in d.iterdir()) == ["merges.txt", "vocab.json"]
    return RobertaTokenizerFast.from_pretrained(str(d)), raw, d


def raw_ids(raw, text):
    return raw.encode(text).ids


def test_single_and_pair_structure(trained):
    tok, raw, _ = trained
    a, b = "the cat sat", "a dog ran in the park"
    ra, rb = raw_ids(raw, a), raw_ids(raw, b)
    assert len(ra) > 1 and len(rb) > 1
    bos, eos = tok.bos_token_id, tok.eos_token_id
    assert (bos, tok.pad_token_id, eos) == (0, 1, 2)
    enc = tok(a)
    assert enc["input_ids"] == [bos] + ra + [eos]
    assert enc["attention_mask"] == [1] * (len(ra) + 2)
    assert "token_type_ids" not in enc
    enc = tok(a, b)
    assert enc["input_ids"] == [bos] + ra + [eos, eos] + rb + [eos]
    assert tok.encode(a) == [bos] + ra + [eos]
    assert tok(a, add_special_tokens=False)["input_ids"] == ra
    assert tok.decode(tok(a)["input_ids"], skip_special_tokens=True) == a


def test_truncation_longest_first_and_max_length(trained):
    tok, raw, _ = trained
    a, b = "the park is green and the mat is red", "cats and dogs are pets"
    ra, rb = raw_ids(raw, a), raw_ids(raw, b)
    for m in range(6, len(ra) + len(rb) + 6):
        ids = tok(a, b, truncation=True, max_length=m)["input_ids"]
        assert len(ids) == min(m, len(ra) + len(rb) + 4)
        first, second = ids[1:ids.index(2)], ids[ids.index(2) + 2:-1]
        assert first == ra[:len(first)] and second == rb[:len(second)], m
        # longest_first: the longer text is cut first, so the kept lengths never differ by more than the
        # shorter text being kept whole allows.
        if len(first) < len(ra) and len(second) < len(rb):
            assert abs(len(first) - len(second)) <= 1, m
        elif len(first) < len(ra):
            assert len(first) >= len(second), m
    ids = tok(a, truncation=True, max_length=5)["input_ids"]
    assert ids == [0] + ra[:3] + [2]
    assert tok(a, b, truncation="longest_first", max_length=9)["input_ids"] == \
        tok(a, b, truncation=True, max_length=9)["input_ids"]
    # Without truncation nothing is cut, whatever max_length says.
    assert len(tok(a, max_length=5)["input_ids"]) == len(ra) + 2


def test_padding_and_tensors(trained):
    tok, raw, _ = trained
    texts = ["the cat", "a dog ran in the park", "cats"]
    lens = [len(raw_ids(raw, t)) + 2 for t in texts]
    enc = tok(texts, padding=True, return_tensors="pt")
    assert isinstance(enc["input_ids"], torch.Tensor) and enc["input_ids"].dtype == torch.long
    assert enc["input_ids"].shape == (3, max(lens))
    for row, n in zip(range(3), lens):
        assert enc["attention_mask"][row].tolist() == [1] * n + [0] * (max(lens) - n)
        assert enc["input_ids"][row, n:].tolist() == [tok.pad_token_id] * (max(lens) - n)
        assert enc["input_ids"][row, :n].tolist() == [0] + raw_ids(raw, texts[row]) + [2]
    enc = tok(texts, padding="max_length", max_length=16, truncation=True)
    assert [len(x) for x in enc["input_ids"]] == [16] * 3
    assert [sum(m) for m in enc["attention_mask"]] == lens
    enc = tok(texts, padding="max_length", max_length=4, truncation=True, return_tensors="pt")
    assert enc["input_ids"].shape == (3, 4) and enc["input_ids"][:, -1].tolist()[:2] == [2, 2]
    with pytest.raises(ValueError):
        tok(texts, return_tensors="pt")  # ragged without padding


def test_pad_method(trained):
    tok, raw, _ = trained
    rows = [tok("the cat"), tok("a dog ran in the park")]
    for r, label in zip(rows, (0, 1)):
        r["labels"] = label
    out = tok.pad([dict(r) for r in rows], return_tensors="pt")
    n = max(len(r["input_ids"]) for r in rows)
    assert out["input_ids"].shape == (2, n)
    assert out["labels"].tolist() == [0, 1]
    assert out["attention_mask"].sum(1).tolist() == [len(r["input_ids"]) for r in rows]
    assert out["input_ids"][0, len(rows[0]["input_ids"]):].eq(tok.pad_token_id).all()
    out = tok.pad([dict(r) for r in rows], padding="max_length", max_length=12)
    assert [len(x) for x in out["input_ids"]] == [12, 12]


def test_model_max_length(trained):
    tok, raw, d = trained
    assert tok.model_max_length == 512  # 4.4.2's value for roberta-base/large
    long_text = " ".join(["the cat sat on the mat"] * 200)
    assert len(tok(long_text, truncation=True)["input_ids"]) == 512
    assert RobertaTokenizerFast.from_pretrained(str(d), model_max_length=64).model_max_length == 64
    short = RobertaTokenizerFast.from_pretrained(str(d), model_max_length=64)
    assert len(short(long_text, truncation=True)["input_ids"]) == 64


def test_mask_token_swallows_preceding_space(trained):
    tok, raw, _ = trained
    m = tok.mask_token_id
    assert tok("the <mask> sat")["input_ids"] == [0] + raw_ids(raw, "the") + [m] + raw_ids(raw, " sat") + [2]


def test_save_pretrained_round_trip(trained, tmp_path):
    tok, _, _ = trained
    tok.save_pretrained(str(tmp_path))
    again = RobertaTokenizerFast.from_pretrained(str(tmp_path))
    texts = ["the cat sat on the mat", "dogs <mask> pets", "zebra quux"]
    assert again(texts)["input_ids"] == tok(texts)["input_ids"]
    assert again(texts, texts[::-1], truncation=True, max_length=9)["input_ids"] == \
        tok(texts, texts[::-1], truncation=True, max_length=9)["input_ids"]
    assert again.model_max_length == tok.model_max_length
    assert again.special_tokens_map == tok.special_tokens_map


def test_missing_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises((OSError, ValueError)):
        RobertaTokenizerFast.from_pretrained(str(tmp_path))
