"""DeBERTa-V2/V3 tokenizer on a sentencepiece model: [CLS] A [SEP] (B [SEP]), token types 0 / 1.

Matches transformers 4.4.2's DebertaV2Tokenizer as loaded by from_pretrained: special tokens (and the tokens of
added_tokens.json, e.g. deberta-v3's [MASK] = 128000) are never split and swallow the whitespace around them; a
special token missing from both gets the next free id, as 4.4.2's from_pretrained does; the rest of the text goes
through sentencepiece (lower-cased first with do_lower_case, cut at every punctuation character with
split_by_punct); pieces outside the vocabulary become [UNK].
"""
import json
import os
import re
import unicodedata

import sentencepiece as spm

from ...tokenization_utils import PreTrainedTokenizer

VOCAB_FILES_NAMES = {"vocab_file": "spm.model", "added_tokens_file": "added_tokens.json"}


def _is_punctuation(char):
    """ASCII symbols and every Unicode punctuation category (the BERT definition 4.4.2 uses)."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def split_on_punctuation(text):
    """'a,b c' -> ['a', ',', 'b c']: every punctuation character becomes its own chunk."""
    chunks, current = [], []
    for char in text:
        if _is_punctuation(char):
            if current:
                chunks.append("".join(current))
                current = []
            chunks.append(char)
        else:
            current.append(char)
    if current:
        chunks.append("".join(current))
    return chunks


def read_added_tokens(path, base_size):
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        added = json.load(f)
    bad = [t for t, i in added.items() if not isinstance(i, int) or i < base_size]
    if bad:
        raise ValueError(f"{path}: token {bad[0]!r} has id {added[bad[0]]!r}, not an id after the sentencepiece "
                         f"vocabulary (>= {base_size}): fix or delete the file")
    return added


def truncate_pair(first, second, budget, strategy):
    """Cut token lists (from the end) so that len(first) + len(second) <= budget, as 4.4.2 does."""
    excess = len(first) + len(second or []) - budget
    if excess <= 0:
        return first, second
    if strategy == "longest_first":
        rest = list(second or [])
        for _ in range(excess):  # one token at a time from the longer one (the second on ties)
            if len(first) > len(rest):
                first = first[:-1]
            elif rest:
                rest = rest[:-1]
            else:
                raise ValueError(f"cannot truncate to {budget} tokens: max_length leaves no room for the text; "
                                 "use a larger max_length")
        return first, (rest if second is not None else None)
    target = "first" if strategy == "only_first" or second is None else "second"
    seq = first if target == "first" else second
    if excess > len(seq):
        raise ValueError(f"cannot truncate with {strategy!r}: the {target} sequence has {len(seq)} tokens but "
                         f"{excess} must go; use truncation='longest_first' or a larger max_length")
    seq = seq[:len(seq) - excess]
    return (seq, second) if target == "first" else (first, seq)


_HUB_NAMES = ("microsoft/deberta-v2-xlarge", "microsoft/deberta-v2-xxlarge", "microsoft/deberta-v2-xlarge-mnli",
              "microsoft/deberta-v2-xxlarge-mnli")
# hub files of the checkpoints 4.4.2 knew by name (4.4.2's tests list the names from here)
PRETRAINED_VOCAB_FILES_MAP = {"vocab_file": {name: f"https://huggingface.co/{name}/resolve/main/spm.model"
                                             for name in _HUB_NAMES}}


class DebertaV2Tokenizer(PreTrainedTokenizer):
    vocab_files_names = VOCAB_FILES_NAMES
    pretrained_vocab_files_map = PRETRAINED_VOCAB_FILES_MAP
    max_model_input_sizes = {name: 512 for name in _HUB_NAMES}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file=None, added_tokens_file=None, do_lower_case=False, split_by_punct=False,
                 unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                 **kwargs):
        if not os.path.isfile(str(vocab_file)):
            raise ValueError(f"no sentencepiece model (spm.model) at {vocab_file}: pass its path or a folder "
                             "holding it to from_pretrained")
        super().__init__(unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                         mask_token=mask_token, do_lower_case=do_lower_case, split_by_punct=split_by_punct,
                         **kwargs)
        self.do_lower_case = do_lower_case
        self.split_by_punct = split_by_punct
        self.vocab_file = str(vocab_file)
        self.sp_model = spm.SentencePieceProcessor(model_file=self.vocab_file)
        self.added_tokens_encoder = read_added_tokens(added_tokens_file, self.vocab_size)
        for token in self.all_special_tokens:  # 4.4.2 from_pretrained appends special tokens missing from the vocab
            if self.sp_model.piece_to_id(token) == self.sp_model.unk_id() and token != self.unk_token \
                    and token not in self.added_tokens_encoder:
                self.added_tokens_encoder[token] = len(self)
        self._rebuild_splitter()

    def _rebuild_splitter(self):
        self.added_tokens_decoder = {i: t for t, i in self.added_tokens_encoder.items()}
        no_split = sorted(set(self.all_special_tokens) | set(self.added_tokens_encoder), key=len, reverse=True)
        # Split on these tokens, eating the whitespace on both sides (4.4.2's default for special tokens).
        self._no_split = set(no_split)
        self._splitter = re.compile(r"\s*(" + "|".join(re.escape(t) for t in no_split) + r")\s*")

    def _add_tokens(self, new_tokens, special_tokens=False):
        """New tokens get the ids after the vocabulary and are never split (4.4.2's slow-tokenizer behaviour)."""
        added = 0
        for token in new_tokens:
            token = getattr(token, "content", token)
            if not special_tokens and self.do_lower_case:
                token = token.lower()
            known = token in self.added_tokens_encoder or (
                self.sp_model.piece_to_id(token) != self.sp_model.unk_id() or token == self.unk_token)
            if not known:
                self.added_tokens_encoder[token] = len(self)
                added += 1
        self._rebuild_splitter()
        return added

    def get_added_vocab(self):
        return dict(self.added_tokens_encoder)

    # -- vocabulary -------------------------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return self.sp_model.get_piece_size()

    def __len__(self):
        return self.vocab_size + len(getattr(self, "added_tokens_encoder", {}))

    def get_vocab(self):
        vocab = {self.sp_model.id_to_piece(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            if tokens in self.added_tokens_encoder:
                return self.added_tokens_encoder[tokens]
            return self.sp_model.piece_to_id(tokens)
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        if isinstance(ids, int):
            return self._id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._id_to_token(int(i)) for i in ids if int(i) not in special]

    def _id_to_token(self, index):
        if index in self.added_tokens_decoder:
            return self.added_tokens_decoder[index]
        return self.sp_model.id_to_piece(index) if 0 <= index < self.vocab_size else self.unk_token

    # -- tokenizing -------------------------------------------------------------------------------------------
    def _pieces(self, text):
        if self.do_lower_case:
            text = text.lower()
        chunks = split_on_punctuation(text) if self.split_by_punct else [text]
        pieces = [p for chunk in chunks for p in self.sp_model.encode(chunk, out_type=str)]
        unk = self.sp_model.unk_id()
        return [p if self.sp_model.piece_to_id(p) != unk else self.unk_token for p in pieces]

    def tokenize(self, text, pair=None, add_special_tokens=False, **kwargs):
        if pair is not None or add_special_tokens:
            return super().tokenize(text, pair, add_special_tokens=add_special_tokens, **kwargs)
        tokens = []
        for i, part in enumerate(self._splitter.split(text)):
            if i % 2:  # odd entries are the captured special tokens
                tokens.append(part)
            elif part:
                tokens.extend(self._pieces(part))
        return tokens

    def _ids(self, text, is_split_into_words):
        words = text if is_split_into_words else [text]
        return self.convert_tokens_to_ids([t for w in words for t in self.tokenize(w)])

    def _encode_batch(self, texts, pairs, add_special_tokens, truncation, max_length, is_split_into_words):
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        out = []
        for k, text in enumerate(texts):
            first = self._ids(text, is_split_into_words)
            second = self._ids(pairs[k], is_split_into_words) if pairs is not None else None
            if truncation and max_length is not None:
                extra = (2 if second is None else 3) if add_special_tokens else 0
                first, second = truncate_pair(first, second, max_length - extra, truncation)
            if add_special_tokens:
                ids = cls + first + sep
                types = [0] * len(ids)
                if second is not None:
                    ids += second + sep
                    types += [1] * (len(second) + 1)
                special = [1] + [0] * len(first) + [1] + ([0] * len(second) + [1] if second is not None else [])
            else:
                ids = first + (second or [])
                types = [0] * len(first) + [1] * len(second or [])
                special = [0] * len(ids)
            out.append({"input_ids": ids, "token_type_ids": types, "special_tokens_mask": special})
        return out

    def decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=True, **kwargs):
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        parts, pieces = [], []
        for token in self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens):
            if token in self._no_split:
                parts.append(self.sp_model.decode_pieces(pieces))
                parts.append(token)
                pieces = []
            else:
                pieces.append(token)
        parts.append(self.sp_model.decode_pieces(pieces))
        return " ".join(p for p in parts if p)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        prefix = filename_prefix + "-" if filename_prefix else ""
        path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        with open(path + ".tmp", "wb") as f:
            f.write(self.sp_model.serialized_model_proto())
        os.replace(path + ".tmp", path)
        files = [path]
        if self.added_tokens_encoder:
            added = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["added_tokens_file"])
            with open(added + ".tmp", "w", encoding="utf-8") as f:
                json.dump(self.added_tokens_encoder, f, ensure_ascii=False)
            os.replace(added + ".tmp", added)
            files.append(added)
        return tuple(files)

    def __getstate__(self):  # the sentencepiece processor does not pickle: carry its serialized model
        state = dict(self.__dict__)
        state["sp_model"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.sp_model = spm.SentencePieceProcessor(model_proto=state["sp_model"])
