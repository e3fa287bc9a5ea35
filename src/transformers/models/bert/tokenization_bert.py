"""4.4.2's module path for BertTokenizer. The WordPiece tokenizer runs in `tokenizers`: BertTokenizer is
BertTokenizerFast (see the README, "Transformers 4.4.2 tests"); it reads the same vocab.txt."""
from .tokenization_bert_fast import PRETRAINED_VOCAB_FILES_MAP, BertTokenizer, load_vocab  # noqa: F401

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt"}
