"""4.4.2's module path for RobertaTokenizer. The byte-level BPE runs in `tokenizers`: RobertaTokenizer is
RobertaTokenizerFast (see the README, "Transformers 4.4.2 tests"); it reads the same vocab.json + merges.txt."""
from .tokenization_roberta_fast import PRETRAINED_VOCAB_FILES_MAP, RobertaTokenizer  # noqa: F401

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
