"""DeBERTa-V2/V3 tokenizer on the `tokenizers` library, built from the same sentencepiece model.

The sentencepiece model becomes a Unigram model with the same pieces, scores and byte fallback; its normalizer
(the precompiled NFKC character map, whitespace collapsing and stripping) and the "▁" word prefix are reproduced
with tokenizers' Precompiled / Replace / Strip normalizers and the Metaspace pre-tokenizer. Control pieces
([PAD]/[CLS]/[SEP]) can never be produced by sentencepiece from text, so they get a prohibitive score here.
Ids equal DebertaV2Tokenizer's (tests compare both against 4.4.2 on every GLUE sentence).
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

import sentencepiece as spm

from ...tokenization_utils_base import SPECIAL_TOKENS
from ...tokenization_utils_fast import PreTrainedTokenizerFast
from .tokenization_deberta_v2 import VOCAB_FILES_NAMES, read_added_tokens

_UNREACHABLE = -1e9  # score for pieces sentencepiece never emits from text


def _fields(buf):
    """Top-level (field number, value) pairs of a protobuf message (only varint and length-delimited fields)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}: not a sentencepiece model")
        yield number, value


def _varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def sentencepiece_normalizer_spec(model_file):
    """(precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces) from ModelProto.normalizer_spec (field 3)."""
    with open(model_file, "rb") as f:
        spec = {}
        for number, value in _fields(f.read()):
            if number == 3:
                spec = dict(_fields(value))
    return spec.get(2, b""), bool(spec.get(3, 1)), bool(spec.get(4, 1))


def build_deberta_tokenizer(vocab_file, added_tokens_file=None, do_lower_case=False, split_by_punct=False,
                            special_tokens=()):
    sp = spm.SentencePieceProcessor(model_file=str(vocab_file))
    vocab = []
    for i in range(sp.get_piece_size()):
        reachable = not (sp.is_control(i) or sp.is_unused(i))
        vocab.append((sp.id_to_piece(i), sp.get_score(i) if reachable else _UNREACHABLE))
    byte_fallback = any(sp.is_byte(i) for i in range(sp.get_piece_size()))
    tok = Tokenizer(Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=byte_fallback))

    charsmap, dummy_prefix, collapse = sentencepiece_normalizer_spec(vocab_file)
    steps = [normalizers.Lowercase()] if do_lower_case else []
    if charsmap:
        steps.append(normalizers.Precompiled(charsmap))
    if collapse:
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    tok.normalizer = normalizers.Sequence(steps)
    prepend = "always" if dummy_prefix else "never"
    # split_by_punct: sentencepiece sees each punctuation mark and each stretch between them on its own, so a
    # whitespace-only stretch yields nothing: drop whitespace before isolating punctuation.
    splits = [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")] if split_by_punct else []
    tok.pre_tokenizer = pre_tokenizers.Sequence(splits + [pre_tokenizers.Metaspace("▁", prepend_scheme=prepend)])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace("▁", prepend_scheme=prepend)])

    # Added tokens keep the ids of added_tokens.json; special tokens missing everywhere are appended (as 4.4.2).
    added = read_added_tokens(added_tokens_file, sp.get_piece_size())
    for token in special_tokens:
        if sp.piece_to_id(token) == sp.unk_id() and token not in added and token != sp.id_to_piece(sp.unk_id()):
            added[token] = sp.get_piece_size() + len(added)
    for token, _ in sorted(added.items(), key=lambda kv: kv[1]):
        # tokenizers gives the next id: sorted order reproduces the file's ids. Matched in the raw text and eating
        # the whitespace around it, like every unsplittable token in 4.4.2.
        tok.add_tokens([AddedToken(token, lstrip=True, rstrip=True, normalized=False)])
        if tok.token_to_id(token) != added[token]:
            raise ValueError(f"{added_tokens_file}: ids must follow the vocabulary without gaps ({token!r})")
    tok.add_special_tokens([AddedToken(t, lstrip=True, rstrip=True, special=True) for t in special_tokens])
    return tok


class DebertaV2TokenizerFast(PreTrainedTokenizerFast):
    vocab_files_names = {**VOCAB_FILES_NAMES, "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file=None, added_tokens_file=None, tokenizer_file=None, do_lower_case=False,
                 split_by_punct=False, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                 mask_token="[MASK]", **kwargs):
        self.vocab_file = vocab_file
        super().__init__(vocab_file=vocab_file, added_tokens_file=added_tokens_file, tokenizer_file=tokenizer_file,
                         do_lower_case=do_lower_case, split_by_punct=split_by_punct, unk_token=unk_token,
                         sep_token=sep_token, pad_token=pad_token, cls_token=cls_token, mask_token=mask_token,
                         **kwargs)
        self.do_lower_case = do_lower_case
        self.split_by_punct = split_by_punct
        cls, sep = str(self.cls_token), str(self.sep_token)
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, self.cls_token_id), (sep, self.sep_token_id)])

    def _build_tokenizer(self, vocab_file=None, added_tokens_file=None, do_lower_case=False, split_by_punct=False,
                         **kwargs):
        if vocab_file is None:
            raise ValueError("DebertaV2TokenizerFast needs spm.model (vocab_file=...) or tokenizer.json")
        specials = [kwargs[n] for n in SPECIAL_TOKENS if kwargs.get(n) is not None]
        specials = [t.get("content") if isinstance(t, dict) else t for t in specials]
        return build_deberta_tokenizer(vocab_file, added_tokens_file, do_lower_case, split_by_punct,
                                       list(dict.fromkeys(specials)))

    def save_vocabulary(self, save_directory, filename_prefix=None):
        """tokenizer.json plus, when built from one, spm.model and added_tokens.json: the files the sentencepiece
        DebertaV2Tokenizer (and 4.4.2, which has no fast DeBERTa tokenizer) reads."""
        files = super().save_vocabulary(save_directory, filename_prefix)
        if self.vocab_file is None:  # loaded from a tokenizer.json alone: there is no sentencepiece model to copy
            return files
        with open(self.vocab_file, "rb") as f:
            outputs = {VOCAB_FILES_NAMES["vocab_file"]: f.read()}
        added = {t.content: i for i, t in self._tokenizer.get_added_tokens_decoder().items() if i >= self.vocab_size}
        if added:  # e.g. deberta-v3's [MASK] = 128000, after the sentencepiece pieces
            outputs[VOCAB_FILES_NAMES["added_tokens_file"]] = json.dumps(added, ensure_ascii=False).encode()
        prefix = filename_prefix + "-" if filename_prefix else ""
        for name, content in outputs.items():
            path = os.path.join(save_directory, prefix + name)
            with open(path + ".tmp", "wb") as f:
                f.write(content)
            os.replace(path + ".tmp", path)
            files += (path,)
        return files
