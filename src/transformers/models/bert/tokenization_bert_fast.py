"""BERT WordPiece tokenizer on the `tokenizers` library: `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` with token types
0 for the first segment (and its [SEP]) and 1 for the second.

Built from tokenizer.json when the folder has one, else from vocab.txt (one token per line, id = line number).
do_lower_case / strip_accents / tokenize_chinese_chars always win over what a tokenizer.json says, as in 4.4.2.
"""
import json
import os

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from ...tokenization_utils_fast import PreTrainedTokenizerFast

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt", "tokenizer_file": "tokenizer.json"}

# Hub names whose folder has no model_max_length in tokenizer_config.json (positional-embedding size).
_MAX_SIZES = {name: 512 for name in (
    "bert-base-uncased", "bert-large-uncased", "bert-base-cased", "bert-large-cased", "bert-base-multilingual-uncased",
    "bert-base-multilingual-cased", "bert-base-chinese",
)}
# hub files of the checkpoints 4.4.2 knew by name (4.4.2's tests list the names from here)
PRETRAINED_VOCAB_FILES_MAP = {key: {name: f"https://huggingface.co/{name}/resolve/main/{file}" for name in _MAX_SIZES}
                              for key, file in VOCAB_FILES_NAMES.items()}


def load_vocab(vocab_file):
    """vocab.txt -> {token: id}, the id being the 0-based line number."""
    with open(vocab_file, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    if tokens and tokens[-1] == "":
        tokens.pop()  # trailing newline at the end of the file
    if not tokens:
        raise ValueError(f"{vocab_file} is empty: pass a BERT vocab.txt with one token per line")
    return {token: i for i, token in enumerate(tokens)}  # a repeated token keeps its last line, as in 4.4.2


class BertTokenizerFast(PreTrainedTokenizerFast):
    vocab_files_names = VOCAB_FILES_NAMES
    max_model_input_sizes = _MAX_SIZES
    pretrained_vocab_files_map = PRETRAINED_VOCAB_FILES_MAP
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file=None, tokenizer_file=None, do_lower_case=True, unk_token="[UNK]",
                 sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                 tokenize_chinese_chars=True, strip_accents=None, **kwargs):
        if vocab_file is None and tokenizer_file is None and kwargs.get("tokenizer_object") is None:
            raise ValueError("BertTokenizerFast needs a vocab.txt (vocab_file=...) or a tokenizer.json "
                             "(tokenizer_file=...): use BertTokenizerFast.from_pretrained(folder)")
        super().__init__(vocab_file=vocab_file, tokenizer_file=tokenizer_file, do_lower_case=do_lower_case,
                         unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                         mask_token=mask_token, tokenize_chinese_chars=tokenize_chinese_chars,
                         strip_accents=strip_accents, **kwargs)
        self._sync_normalizer(do_lower_case, strip_accents, tokenize_chinese_chars)

    def _build_tokenizer(self, vocab_file=None, do_lower_case=True, tokenize_chinese_chars=True,
                         strip_accents=None, **kwargs):
        vocab = load_vocab(vocab_file)
        unk, cls, sep = kwargs["unk_token"], kwargs["cls_token"], kwargs["sep_token"]
        for token in (unk, cls, sep):
            if token not in vocab:
                raise ValueError(f"{vocab_file} has no {token} token: pass the matching *_token argument")
        tok = Tokenizer(WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=tokenize_chinese_chars,
                                                    strip_accents=strip_accents, lowercase=do_lower_case)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])
        tok.decoder = decoders.WordPiece(prefix="##")
        # Registered as special so that they are never split in text and are dropped by skip_special_tokens.
        specials = [kwargs.get(k) for k in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")]
        tok.add_special_tokens([t for t in specials if t is not None and t in vocab])
        return tok

    def _sync_normalizer(self, do_lower_case, strip_accents, tokenize_chinese_chars):
        """Rebuild the BertNormalizer when tokenizer.json disagrees with the requested options."""
        normalizer = self._tokenizer.normalizer
        state = json.loads(normalizer.__getstate__()) if normalizer is not None else {}
        if state.get("type") != "BertNormalizer":
            return
        wanted = {"lowercase": do_lower_case, "strip_accents": strip_accents,
                  "handle_chinese_chars": tokenize_chinese_chars}
        if any(state.get(k) != v for k, v in wanted.items()):
            self._tokenizer.normalizer = normalizers.BertNormalizer(
                clean_text=state.get("clean_text", True), handle_chinese_chars=tokenize_chinese_chars,
                strip_accents=strip_accents, lowercase=do_lower_case)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        """tokenizer.json plus vocab.txt (what slow BERT tokenizers, e.g. 4.4.2's, read)."""
        files = super().save_vocabulary(save_directory, filename_prefix)
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "vocab.txt")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(token + "\n" for token, _ in sorted(vocab.items(), key=lambda kv: kv[1]))
        os.replace(path + ".tmp", path)
        return files + (path,)


# Only the fast tokenizer exists here; the slow name resolves to it.
BertTokenizer = BertTokenizerFast
