"""The 4.4.2 public API added for issue 24: availability helpers, testing_utils, Auto mappings, tokenizer methods
(add_tokens, special-token layout, prepare_for_model, sequence_ids, init_kwargs, the too-long warning), model
helpers, Trainer pieces users import, Adafactor, the LM / token-classification collators, argparser spellings."""
import logging as std_logging
import os
import pickle
import unittest
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

import transformers
from transformers import (AddedToken, BertConfig, BertModel, BertTokenizer, DataCollatorForLanguageModeling,
                          DataCollatorForTokenClassification, DebertaV2Tokenizer, HfArgumentParser,
                          PreTrainedTokenizer, RobertaConfig, RobertaModel, RobertaTokenizer, RobertaTokenizerFast)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BPE = FIXTURES / "roberta_tokenizer" / "tiny_bpe"


def _roberta():
    return RobertaTokenizerFast(vocab_file=str(BPE / "vocab.json"), merges_file=str(BPE / "merges.txt"))


def _bert_vocab(tmp_path):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "a"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return str(path)


def _deberta_spm():
    found = sorted((FIXTURES / "deberta_v2").rglob("*.model"))
    if not found:
        pytest.skip("no sentencepiece fixture")
    return str(found[0])


# -- availability helpers and testing_utils -------------------------------------------------------------------
def test_availability_helpers():
    from transformers import file_utils

    assert transformers.is_torch_available() and transformers.is_tokenizers_available()
    assert transformers.is_sentencepiece_available()
    assert transformers.is_tf_available() is False and transformers.is_flax_available() is False
    assert file_utils.is_torch_available is transformers.is_torch_available
    assert file_utils.ModelOutput is transformers.ModelOutput


def test_testing_utils_decorators_and_capture(monkeypatch):
    from transformers import testing_utils as tu

    calls = []

    class Case(unittest.TestCase):
        @tu.require_torch
        def test_a(self):
            calls.append("a")

        @tu.require_tf
        def test_b(self):
            calls.append("b")

        @tu.slow
        def test_c(self):
            calls.append("c")

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert calls == ["a"] and len(result.skipped) == 2  # RUN_SLOW is not set under pytest here
    assert tu.torch_device in ("cpu", "cuda")
    assert tu.get_tests_dir() == str(Path(__file__).resolve().parent)
    assert tu.get_tests_dir("fixtures") == str(FIXTURES)

    logger = transformers.logging.get_logger("transformers.test_capture")
    with tu.CaptureLogger(logger) as cl:
        logger.warning("hello")
    assert cl.out == "hello\n"
    with tu.mockenv(SOME_FLAG="1"):
        assert os.environ["SOME_FLAG"] == "1"
    assert "SOME_FLAG" not in os.environ


def test_test_case_plus_removes_its_tmp_dir():
    from transformers.testing_utils import TestCasePlus

    seen = {}

    class Case(TestCasePlus):
        def test_x(self):
            seen["dir"] = self.get_auto_remove_tmp_dir()
            assert os.path.isdir(seen["dir"])

    result = unittest.TestResult()
    Case("test_x").run(result)
    assert result.wasSuccessful() and not os.path.exists(seen["dir"])


def test_logging_reset_reads_verbosity_again(monkeypatch):
    from transformers.utils import logging

    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    logging._reset_library_root_logger()
    logging.get_logger("transformers.x")
    assert logging.get_verbosity() == logging.log_levels["error"]
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "")
    logging._reset_library_root_logger()
    logging.get_logger("transformers.x")
    assert logging.get_verbosity() == logging.WARNING


# -- Auto mappings ------------------------------------------------------------------------------------------------
def test_auto_mappings():
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING, MODEL_MAPPING
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING

    keys = list(CONFIG_MAPPING)
    assert not any(k in later for i, k in enumerate(keys) for later in keys[i + 1:])
    assert MODEL_MAPPING[RobertaConfig] is RobertaModel and MODEL_FOR_MASKED_LM_MAPPING == {}
    assert TOKENIZER_MAPPING[BertConfig] == (BertTokenizer, transformers.BertTokenizerFast)
    assert transformers.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[BertConfig] is transformers.BertForSequenceClassification
    assert BertConfig.is_composition is False


# -- tokenizer API -------------------------------------------------------------------------------------------------
def test_slow_names_and_modules():
    from transformers.models.bert.tokenization_bert import VOCAB_FILES_NAMES as bert_files
    from transformers.models.roberta.tokenization_roberta import VOCAB_FILES_NAMES as roberta_files
    from transformers.tokenization_utils import AddedToken as added

    assert RobertaTokenizer is RobertaTokenizerFast and added is AddedToken
    assert bert_files == {"vocab_file": "vocab.txt"} and set(roberta_files) == {"vocab_file", "merges_file"}
    assert issubclass(DebertaV2Tokenizer, PreTrainedTokenizer)
    for cls in (RobertaTokenizerFast, BertTokenizer, DebertaV2Tokenizer):
        names = list(cls.pretrained_vocab_files_map.values())[0]
        assert list(names) == list(cls.max_model_input_sizes)


def test_add_tokens_and_special_tokens_fast():
    tok = _roberta()
    size = len(tok)
    assert tok.add_tokens(["aaaaa bbbbbb", "cccccccccdddddddd"]) == 2 and len(tok) == size + 2
    assert tok.add_tokens(["aaaaa bbbbbb"]) == 0
    ids = tok.encode("aaaaa bbbbbb low cccccccccdddddddd l", add_special_tokens=False)
    assert ids[0] >= tok.vocab_size and ids[-2] >= tok.vocab_size
    assert tok.add_special_tokens({"eos_token": ">>>>|||<||<<|<<", "additional_special_tokens": ["<x>"]}) == 2
    assert tok.eos_token == ">>>>|||<||<<|<<" and tok.additional_special_tokens == ["<x>"]
    assert tok.special_tokens_map["additional_special_tokens"] == ["<x>"]
    assert "<x>" in tok.all_special_tokens and tok.additional_special_tokens_ids == [len(tok) - 1]
    with pytest.raises(ValueError):
        tok.add_special_tokens({"not_a_token": "x"})


def test_added_tokens_survive_save_and_pickle(tmp_path):
    tok = _roberta()
    tok.add_tokens(["newword"])
    tok.save_pretrained(str(tmp_path))
    again = RobertaTokenizerFast.from_pretrained(str(tmp_path))
    assert again.encode("a newword", add_special_tokens=False) == tok.encode("a newword", add_special_tokens=False)
    assert pickle.loads(pickle.dumps(tok)).convert_tokens_to_ids("newword") == tok.convert_tokens_to_ids("newword")


def test_special_token_layouts(tmp_path):
    rob = _roberta()
    c, s = rob.cls_token_id, rob.sep_token_id
    assert rob.build_inputs_with_special_tokens([7], [8]) == [c, 7, s, s, 8, s]
    assert rob.get_special_tokens_mask([7], [8]) == [1, 0, 1, 1, 0, 1]
    assert rob.create_token_type_ids_from_sequences([7], [8]) == [0] * 6
    assert rob.num_special_tokens_to_add(pair=True) == 4
    bert = BertTokenizer(_bert_vocab(tmp_path))
    assert bert.build_inputs_with_special_tokens([5], [6]) == [2, 5, 3, 6, 3]
    assert bert.create_token_type_ids_from_sequences([5], [6]) == [0, 0, 0, 1, 1]
    assert bert.get_special_tokens_mask([2, 5, 3], already_has_special_tokens=True) == [1, 0, 1]
    # the layout the tokenizer itself produces
    assert bert("cat", "mat")["input_ids"] == bert.build_inputs_with_special_tokens(*[
        bert.encode(t, add_special_tokens=False) for t in ("cat", "mat")])


def test_prepare_for_model_matches_call(tmp_path):
    bert = BertTokenizer(_bert_vocab(tmp_path))
    ids = bert.encode("the cat sat on the mat", add_special_tokens=False)
    prepared = bert.prepare_for_model(ids)
    assert dict(prepared) == dict(bert("the cat sat on the mat"))
    short = bert.prepare_for_model(ids, max_length=5, truncation=True, return_overflowing_tokens=True, stride=1)
    assert len(short["input_ids"]) == 5 and short["overflowing_tokens"] == ids[2:]
    padded = bert.prepare_for_model(ids[:2], padding="max_length", max_length=6, return_tensors="pt",
                                    prepend_batch_axis=True)
    assert padded["input_ids"].shape == (1, 6) and padded["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0]]


def test_overflow_rows_and_sequence_ids_fast(tmp_path):
    bert = BertTokenizer(_bert_vocab(tmp_path))
    ids = bert.encode("the cat sat on the mat", add_special_tokens=False)
    out = bert("the cat sat on the mat", max_length=4, truncation=True, stride=1, return_overflowing_tokens=True,
               add_special_tokens=False)
    assert out["input_ids"][0] == ids[:4] and out["input_ids"][1] == ids[3:]
    assert out["overflow_to_sample_mapping"] == [0, 0]
    enc = bert("cat", "mat")
    assert enc.sequence_ids(0) == [None, 0, None, 1, None] and enc.is_fast


def test_init_kwargs_hold_the_whole_signature():
    tok = _roberta()
    for name in ("vocab_file", "merges_file", "errors", "bos_token", "add_prefix_space", "trim_offsets"):
        assert name in tok.init_kwargs
    deberta = DebertaV2Tokenizer(_deberta_spm())
    assert {"vocab_file", "do_lower_case", "split_by_punct", "unk_token"} <= set(deberta.init_kwargs)
    assert not deberta.is_fast and tok.is_fast


def test_too_long_warning_padding_aliases_and_multiple(tmp_path, caplog):
    bert = BertTokenizer(_bert_vocab(tmp_path), model_max_length=5)
    with caplog.at_level(std_logging.WARNING, logger="transformers"):
        bert("the cat sat on the mat")
    assert any(r.getMessage().startswith("Token indices sequence length is longer than the specified maximum")
               for r in caplog.records)
    assert len(bert("cat", pad_to_max_length=True)["input_ids"]) == 5
    assert len(bert("cat", pad_to_multiple_of=8)["input_ids"]) == 3  # no padding asked: none done, as in 4.4.2
    assert len(bert("cat", padding=True, pad_to_multiple_of=8)["input_ids"]) == 8
    with pytest.raises(ValueError):
        bert("cat", padding=True, truncation=True, max_length=12, pad_to_multiple_of=8)


def test_deberta_slow_add_tokens_and_pretokenized():
    tok = DebertaV2Tokenizer(_deberta_spm())
    size = len(tok)
    assert tok.add_tokens(["[ABC]", "[DEF]"]) == 2 and len(tok) == size + 2
    assert tok.tokenize("x [ABC] y")[1:2] == ["[ABC]"] or "[ABC]" in tok.tokenize("x [ABC] y")
    assert tok.convert_tokens_to_ids("[DEF]") == size + 1
    words = ["hello", "world"]
    batch = tok.batch_encode_plus([(words, words)], is_split_into_words=True)
    single = tok.encode_plus(words, words, is_split_into_words=True)
    assert batch["input_ids"][0] == single["input_ids"]


# -- models ----------------------------------------------------------------------------------------------------------
def _tiny(config_cls, model_cls):
    config = config_cls(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64)
    return model_cls(config).eval()


def test_resize_token_embeddings_and_output_embeddings():
    model = _tiny(BertConfig, BertModel)
    before = model.get_input_embeddings().weight.detach().clone()
    table = model.resize_token_embeddings(109)
    assert table.weight.shape[0] == 109 and model.config.vocab_size == 109
    assert torch.equal(table.weight[:99], before)
    model(torch.tensor([[1, 108]]))
    assert model.resize_token_embeddings(90).weight.shape[0] == 90 and model.get_output_embeddings() is None


def test_roberta_positions_from_embeddings():
    model = _tiny(RobertaConfig, RobertaModel)
    embeds = torch.randn(2, 3, 32)
    pos = model.embeddings.create_position_ids_from_inputs_embeds(embeds)
    pad = model.config.pad_token_id
    assert pos.tolist() == [[pad + 1, pad + 2, pad + 3]] * 2


def test_unwrap_model():
    from transformers.modeling_utils import unwrap_model

    inner = torch.nn.Linear(2, 2)
    assert unwrap_model(torch.nn.DataParallel(inner)) is inner and unwrap_model(inner) is inner


# -- Trainer pieces, optimizer, collators, outputs, argparser --------------------------------------------------------
def test_trainer_pt_utils_helpers():
    from transformers.modeling_outputs import SequenceClassifierOutput
    from transformers.trainer_pt_utils import (DistributedTensorGatherer, LabelSmoother, SequentialDistributedSampler,
                                               get_parameter_names)

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    assert get_parameter_names(model, [torch.nn.LayerNorm]) == ["0.weight", "0.bias"]
    logits, labels = torch.randn(3, 4), torch.tensor([0, 2, -100])
    smoothed = LabelSmoother(0.0)(SequenceClassifierOutput(logits=logits), labels)
    assert torch.allclose(smoothed, torch.nn.functional.cross_entropy(logits, labels))
    shards = [list(SequentialDistributedSampler(list(range(5)), num_replicas=2, rank=r)) for r in (0, 1)]
    assert shards == [[0, 1, 2], [3, 4, 0]]
    data = np.arange(10).reshape(5, 2)
    gatherer = DistributedTensorGatherer(world_size=2, num_samples=5)
    gatherer.add_arrays(np.concatenate([data[0:2], data[3:5]]))
    gatherer.add_arrays(np.concatenate([data[2:3], data[0:1]]))
    assert np.array_equal(gatherer.finalize(), data)


def test_trainer_constants_and_early_stopping():
    from transformers.trainer import DEFAULT_CALLBACKS
    from transformers.trainer_callback import EarlyStoppingCallback, TrainerControl, TrainerState

    assert transformers.DefaultFlowCallback in DEFAULT_CALLBACKS

    class Args:
        greater_is_better, metric_for_best_model = True, "accuracy"

    cb, state, control = EarlyStoppingCallback(2), TrainerState(), TrainerControl()
    state.best_metric = 0.9
    for _ in range(2):
        cb.on_evaluate(Args(), state, control, metrics={"eval_accuracy": 0.5})
    assert control.should_training_stop


def test_adafactor_fits_a_target():
    from transformers import Adafactor

    w = torch.tensor([0.1, -0.2, -0.1], requires_grad=True)
    target = torch.tensor([0.4, 0.2, -0.5])
    opt = Adafactor([w], lr=1e-2, relative_step=False, scale_parameter=False, warmup_init=False)
    for _ in range(300):
        torch.nn.functional.mse_loss(w, target).backward()
        opt.step()
        w.grad = None
    assert torch.allclose(w, target, atol=1e-2)
    matrix = torch.nn.Linear(4, 3)
    opt = Adafactor(matrix.parameters())  # factored second moment, relative step
    matrix(torch.randn(2, 4)).sum().backward()
    opt.step()
    assert "exp_avg_sq_row" in opt.state[matrix.weight]
    with pytest.raises(ValueError):
        Adafactor([w], lr=1e-3, relative_step=True)


def test_lm_and_token_classification_collators(tmp_path):
    tok = BertTokenizer(_bert_vocab(tmp_path))
    torch.manual_seed(0)
    mlm = DataCollatorForLanguageModeling(tok, mlm_probability=0.5)
    batch = mlm([{"input_ids": [2] + list(range(5, 12)) + [3]}, {"input_ids": [2, 5, 6, 3]}])
    assert batch["input_ids"].shape == (2, 9) == batch["labels"].shape
    masked = batch["labels"] != -100
    assert masked.any() and not masked[:, 0].any()  # [CLS] is never a target
    clm = DataCollatorForLanguageModeling(tok, mlm=False)(
        [torch.tensor([5, 6]), torch.tensor([5])])
    assert clm["labels"].tolist() == [[5, 6], [5, -100]]
    tc = DataCollatorForTokenClassification(tok)([{"input_ids": [2, 5, 3], "labels": [0, 1, 0]},
                                                  {"input_ids": [2, 3], "labels": [0, 0]}])
    assert tc["labels"].tolist() == [[0, 1, 0], [0, 0, -100]]


def test_model_output_refuses_dict_updates():
    out = transformers.SequenceClassifierOutput(logits=torch.zeros(1))
    for call in (lambda: out.update({"a": 1}), lambda: out.pop("logits"), lambda: out.setdefault("a", 1)):
        with pytest.raises(Exception):
            call()


@dataclass
class _Flags:
    plain: bool
    maybe: Optional[bool] = None
    foo_bar: int = 1


def test_argparser_442_actions_and_spellings():
    parser = HfArgumentParser(_Flags)
    options = [a.option_strings for a in parser._actions[1:]]
    assert options == [["--plain"], ["--maybe"], ["--foo_bar"]]  # no extra dashed spellings registered
    (flags,) = parser.parse_args_into_dataclasses([])
    assert flags.plain is True and flags.maybe is None  # 4.4.2: a bool without a default defaults to True
    (flags,) = parser.parse_args_into_dataclasses(["--foo-bar=3", "--maybe"])
    assert flags.foo_bar == 3 and flags.maybe is True
