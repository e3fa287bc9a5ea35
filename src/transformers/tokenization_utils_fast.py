"""PreTrainedTokenizerFast: a PreTrainedTokenizerBase whose work is done by a `tokenizers.Tokenizer`."""
import os

from tokenizers import AddedToken, Tokenizer

from .tokenization_utils_base import SPECIAL_TOKENS, TOKENIZER_FILE, PreTrainedTokenizerBase


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    """Subclasses build `self._tokenizer` in `_build_tokenizer(**files)` unless a tokenizer.json is given."""

    def __init__(self, *args, tokenizer_object=None, tokenizer_file=None, **kwargs):
        super().__init__(**kwargs)
        if tokenizer_object is not None:
            self._tokenizer = tokenizer_object
        elif tokenizer_file is not None:
            self._tokenizer = Tokenizer.from_file(tokenizer_file)
        else:
            self._tokenizer = self._build_tokenizer(*args, **kwargs)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()  # padding is done by PreTrainedTokenizerBase, the same for every tokenizer
        # Special tokens named in the config must be single, unsplittable tokens.
        specials = [getattr(self, n) for n in SPECIAL_TOKENS if getattr(self, n) is not None]
        specials += self.additional_special_tokens
        unknown = [t for t in specials if self._tokenizer.token_to_id(t) is None]
        if unknown:
            self._tokenizer.add_special_tokens([AddedToken(t, special=True) for t in unknown])
        known = {t.content for t in self._tokenizer.get_added_tokens_decoder().values()}
        missing = [t for t in self.additional_special_tokens if t not in known]
        if missing:  # in the vocabulary but not yet unsplittable
            self._tokenizer.add_special_tokens([AddedToken(t, special=True) for t in missing])

    def _add_tokens(self, new_tokens, special_tokens=False):
        tokens = [t if isinstance(t, AddedToken) else AddedToken(t, special=special_tokens, normalized=not special_tokens)
                  for t in new_tokens]
        if special_tokens:
            return self._tokenizer.add_special_tokens(tokens)
        return self._tokenizer.add_tokens(tokens)

    def get_added_vocab(self):
        base = self._tokenizer.get_vocab(with_added_tokens=False)
        return {t: i for t, i in self._tokenizer.get_vocab(with_added_tokens=True).items() if t not in base}

    def _build_tokenizer(self, *args, **kwargs):
        raise ValueError(f"{type(self).__name__} needs a tokenizer.json (tokenizer_file=...) or its vocabulary files")

    @property
    def backend_tokenizer(self):
        return self._tokenizer

    @property
    def vocab_size(self):
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self):
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self):
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def is_fast(self):
        return True

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            found = self._tokenizer.token_to_id(tokens)
            if found is None:
                unk = self.__dict__.get("_unk_token")
                found = self._tokenizer.token_to_id(unk) if unk is not None else None
            return found
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(i)) for i in ids if int(i) not in special]

    def decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=True, **kwargs):
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        return self._tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)

    def _encode_batch(self, texts, pairs, add_special_tokens, truncation, max_length, is_split_into_words):
        if truncation and max_length is not None:
            self._tokenizer.enable_truncation(max_length, stride=getattr(self, "_stride", 0), strategy=truncation)
        else:
            self._tokenizer.no_truncation()
        inputs = texts if pairs is None else list(zip(texts, pairs))
        try:
            encodings = self._tokenizer.encode_batch(inputs, add_special_tokens=add_special_tokens,
                                                     is_pretokenized=is_split_into_words)
        except Exception as e:  # tokenizers reports e.g. impossible truncation as a bare Exception
            raise ValueError(f"tokenization failed: {e}") from None
        finally:
            self._tokenizer.no_truncation()
        def row(e):
            return {"input_ids": e.ids, "token_type_ids": e.type_ids, "special_tokens_mask": e.special_tokens_mask,
                    "offset_mapping": e.offsets, "encoding": e}
        return [{**row(e), "overflowing": [row(o) for o in e.overflowing]} for e in encodings]

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + TOKENIZER_FILE)
        self._tokenizer.save(path + ".tmp")
        os.replace(path + ".tmp", path)
        return (path,)

    def __getstate__(self):
        # `datasets` fingerprints map() functions by pickling the tokenizer: store the backend as its JSON.
        state = dict(self.__dict__)
        state["_tokenizer"] = self._tokenizer.to_str()
        return state

    def __setstate__(self, state):
        state = dict(state)
        state["_tokenizer"] = Tokenizer.from_str(state["_tokenizer"])
        self.__dict__.update(state)
