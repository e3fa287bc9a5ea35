"""DebertaV2Tokenizer (sentencepiece) and DebertaV2TokenizerFast (tokenizers) against transformers 4.4.2's slow
tokenizer: ids recorded by tests/fixtures/make_deberta_fixtures.py on a tiny trained sentencepiece model (three flag
sets, tricky texts) and, when ../shared is present, on every GLUE sentence with deberta-v3's spm.model.
"""
import hashlib
import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest

from transformers import AutoTokenizer
from transformers.models.deberta_v2 import DebertaV2Tokenizer, DebertaV2TokenizerFast

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "deberta_v2" / "tokenizer"
SHARED = ROOT / "../shared/data"
EXPECTED = json.loads((FIX / "tiny_expected.json").read_text(encoding="utf-8"))
CLASSES = [DebertaV2Tokenizer, DebertaV2TokenizerFast]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_spm")
    shutil.copy(FIX / "tiny_spm.model", d / "spm.model")
    return d


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("flags", sorted(EXPECTED["flags"]))
def test_tiny_model_ids_match_442(cls, flags, tiny_dir):
    tok = cls.from_pretrained(tiny_dir, **EXPECTED["flags"][flags])
    want = EXPECTED["ids"][flags]
    for text, ids, tokens in zip(EXPECTED["texts"], want["single"], want["tokens"]):
        assert tok(text)["input_ids"] == ids, text
        assert tok.convert_ids_to_tokens(ids[1:-1]) == tokens
    for (a, b), ids, types in zip(EXPECTED["pairs"], want["pair"], want["pair_types"]):
        enc = tok(a, b)
        assert enc["input_ids"] == ids and enc["token_type_ids"] == types and enc["attention_mask"] == [1] * len(ids)


@pytest.mark.parametrize("cls", CLASSES)
def test_pair_layout_truncation_padding(cls, tiny_dir):
    tok = cls.from_pretrained(tiny_dir)
    a, b = tok("the quick brown fox jumps over the lazy dog", add_special_tokens=False)["input_ids"], tok("a dog", add_special_tokens=False)["input_ids"]
    enc = tok("the quick brown fox jumps over the lazy dog", "a dog")
    assert enc["input_ids"] == [tok.cls_token_id] + a + [tok.sep_token_id] + b + [tok.sep_token_id]
    assert enc["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert (tok.pad_token_id, tok.cls_token_id, tok.sep_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(a) > 2 * len(b) + 1
    cut = tok("the quick brown fox jumps over the lazy dog", "a dog", truncation=True, max_length=2 * len(b) + 3)
    assert cut["input_ids"] == [1] + a[:len(b)] + [2] + b + [2]  # longest_first trims the longer A down to B
    cut = tok("the quick brown fox jumps over the lazy dog", "a dog", truncation=True, max_length=2 * len(b) + 1)
    assert cut["input_ids"] == [1] + a[:len(b) - 1] + [2] + b[:-1] + [2]  # then one from each, B first on ties
    batch = tok(["the cat", "a dog sat on the mat"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[0] == 2 and batch["input_ids"][0, -1] == 0 and batch["attention_mask"][0, -1] == 0
    with pytest.raises(ValueError, match="truncat"):
        tok("the quick brown fox jumps over the lazy dog", "a", truncation="only_second", max_length=5)


@pytest.mark.parametrize("cls", CLASSES)
def test_save_reload_and_pickle(cls, tiny_dir, tmp_path):
    tok = cls.from_pretrained(tiny_dir, do_lower_case=True, split_by_punct=True)
    text = "Hello, World! [MASK] don't"
    tok.save_pretrained(tmp_path)
    again = cls.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert pickle.loads(pickle.dumps(tok))(text)["input_ids"] == tok(text)["input_ids"]
    ids = tok("the cat sat")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "the cat sat"


def test_auto_tokenizer_picks_deberta(tmp_path, tiny_dir):
    DebertaV2Tokenizer.from_pretrained(tiny_dir).save_pretrained(tmp_path)
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path), DebertaV2TokenizerFast)  # use_fast=True, as 4.4.2
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path, use_fast=False), DebertaV2Tokenizer)


def test_missing_vocab_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="sentencepiece model"):
        DebertaV2Tokenizer(str(tmp_path / "nope.model"))


# ---- deberta-v3's real vocabulary on GLUE (skipped without ../shared) ----
V3 = SHARED / "tokenizers" / "deberta-v3"
needs_shared = pytest.mark.skipif(not (V3 / "spm.model").is_file() or not (SHARED / "glue").is_dir(),
                                  reason="../shared data absent")


def glue_texts():
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    from make_deberta_fixtures import _glue_texts  # the same reader that recorded the fixture

    return _glue_texts()


def digests(seqs, chunk):
    blocks = [seqs[i:i + chunk] for i in range(0, len(seqs), chunk)]
    return [hashlib.sha256(json.dumps(b, separators=(",", ":")).encode()).hexdigest()[:16] for b in blocks]


@needs_shared
@pytest.mark.parametrize("cls", CLASSES)
def test_glue_ids_match_442_with_deberta_v3_vocab(cls):
    tok = cls.from_pretrained(V3)
    assert tok.mask_token_id == 128000 and len(tok) == 128001
    expected = json.loads((FIX / "glue_deberta_v3.json").read_text())
    chunk = expected["chunk"]
    for key, rows in glue_texts().items():
        want = expected["files"][key]
        texts = [t for row in rows for t in row]
        ids = tok(texts)["input_ids"]
        got = digests(ids, chunk)
        bad = [i for i, (g, w) in enumerate(zip(got, want["single"])) if g != w]
        assert len(ids) == want["n"] and not bad, f"{key}: sentences {bad[0] * chunk}..{bad[0] * chunk + chunk}"
        if "pair" in want:
            enc = tok([r[0] for r in rows], [r[1] for r in rows])
            pairs = [[i, t] for i, t in zip(enc["input_ids"], enc["token_type_ids"])]
            assert digests(pairs, chunk) == want["pair"], key
