"""RobertaTokenizerFast: GPT-2 byte-level BPE from vocab.json + merges.txt (or a tokenizer.json), run by `tokenizers`.

Single sequence: <s> A </s>; pair: <s> A </s></s> B </s>. No token type ids (RoBERTa has one segment).
"""
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from ...tokenization_utils_fast import PreTrainedTokenizerFast

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
_HUB_NAMES = ("roberta-base", "roberta-large", "roberta-large-mnli", "distilroberta-base",
              "roberta-base-openai-detector", "roberta-large-openai-detector")
# hub files of the checkpoints 4.4.2 knew by name (4.4.2's tests list the names from here)
PRETRAINED_VOCAB_FILES_MAP = {key: {name: f"https://huggingface.co/{name}/resolve/main/{file}" for name in _HUB_NAMES}
                              for key, file in VOCAB_FILES_NAMES.items()}


class RobertaTokenizerFast(PreTrainedTokenizerFast):
    vocab_files_names = VOCAB_FILES_NAMES
    pretrained_vocab_files_map = PRETRAINED_VOCAB_FILES_MAP
    model_input_names = ["input_ids", "attention_mask"]
    max_model_input_sizes = {name: 512 for name in _HUB_NAMES}

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, errors="replace", bos_token="<s>",
                 eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                 mask_token="<mask>", add_prefix_space=False, trim_offsets=True, model_max_length=512, **kwargs):
        self.add_prefix_space = add_prefix_space
        self.trim_offsets = trim_offsets
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, bos_token=bos_token,
                         eos_token=eos_token, sep_token=sep_token, cls_token=cls_token, unk_token=unk_token,
                         pad_token=pad_token, mask_token=mask_token, add_prefix_space=add_prefix_space,
                         trim_offsets=trim_offsets, model_max_length=model_max_length, **kwargs)

    def _build_tokenizer(self, vocab_file=None, merges_file=None, **_):
        if vocab_file is None or merges_file is None:
            raise ValueError("RobertaTokenizerFast needs vocab.json and merges.txt, or tokenizer.json: "
                             "pass a folder holding them")
        tok = Tokenizer(models.BPE.from_file(vocab_file, merges_file, continuing_subword_prefix="",
                                             end_of_word_suffix="", fuse_unk=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=self.add_prefix_space)
        tok.decoder = decoders.ByteLevel()
        # <mask> swallows the space before it, so "a <mask>" encodes like "a" + mask, as in RoBERTa's pretraining.
        specials = [AddedToken(t, special=True, normalized=False) for t in
                    (self.bos_token, self.pad_token, self.eos_token, self.unk_token) if t is not None]
        specials.append(AddedToken(self.mask_token, lstrip=True, special=True, normalized=False))
        tok.add_special_tokens(specials)
        cls, sep = self.cls_token, self.sep_token
        tok.post_processor = processors.RobertaProcessing(
            (sep, tok.token_to_id(sep)), (cls, tok.token_to_id(cls)),
            add_prefix_space=self.add_prefix_space, trim_offsets=self.trim_offsets)
        return tok

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def save_vocabulary(self, save_directory, filename_prefix=None):
        # tokenizer.json holds everything; vocab.json + merges.txt are written too for tools that read only those.
        legacy = self._tokenizer.model.save(save_directory, filename_prefix)
        return tuple(legacy) + super().save_vocabulary(save_directory, filename_prefix)


RobertaTokenizer = RobertaTokenizerFast  # the slow Python BPE is not shipped: both names give the fast one
