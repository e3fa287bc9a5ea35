"""4.4.2's module for Python ("slow") tokenizers: PreTrainedTokenizer, and AddedToken (tokenizers' class).

Here only DeBERTa-V2's sentencepiece tokenizer is a Python tokenizer; RobertaTokenizer and BertTokenizer are the
names of the fast tokenizers (see the README, "Transformers 4.4.2 tests").
"""
from tokenizers import AddedToken  # noqa: F401

from .tokenization_utils_base import BatchEncoding, PreTrainedTokenizerBase  # noqa: F401


class PreTrainedTokenizer(PreTrainedTokenizerBase):
    """Base class of the tokenizers implemented in Python (not backed by a `tokenizers.Tokenizer`)."""

    @property
    def is_fast(self):
        return False
