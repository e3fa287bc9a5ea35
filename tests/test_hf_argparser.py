"""HfArgumentParser and TrainingArguments.

Parity: tests/fixtures/training/argparse.json holds command lines parsed by transformers 4.4.2's HfArgumentParser
into its TrainingArguments (tests/fixtures/make_training_fixtures.py); every field we share must come out equal.
"""
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import List, Optional

import pytest

from transformers.hf_argparser import HfArgumentParser
from transformers.trainer_utils import IntervalStrategy, SchedulerType
from transformers.training_args import TrainingArguments

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "training"


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Example:
    name: str
    flag: bool = False
    on_by_default: bool = True
    maybe: Optional[bool] = None
    color: Color = Color.RED
    sizes: List[int] = field(default_factory=lambda: [1, 2])
    ratio: Optional[float] = None
    count: int = 3


@dataclass
class Other:
    extra: str = "x"


def parse(argv, *types):
    return HfArgumentParser(types or [Example]).parse_args_into_dataclasses(args=argv)


@pytest.mark.parametrize("case", json.loads((FIXTURES / "argparse.json").read_text()), ids=lambda c: " ".join(c["argv"][2:8]))
def test_training_args_parse_like_442(case):
    (ours,) = parse(case["argv"], TrainingArguments)
    mine = ours.to_dict()
    shared = [k for k in case["parsed"] if k in mine]
    assert len(shared) >= 45  # the 4.4.2 fields we carry (not: TPU, apex, sharded DDP, adafactor...)
    assert {k: mine[k] for k in shared} == {k: case["parsed"][k] for k in shared}


def test_bool_forms():
    assert parse(["--name", "a"])[0].flag is False
    assert parse(["--name", "a", "--flag"])[0].flag is True
    for word, value in [("True", True), ("false", False), ("yes", True), ("no", False), ("1", True), ("0", False)]:
        assert parse(["--name", "a", "--flag", word])[0].flag is value
    assert parse(["--name", "a", "--no_on_by_default"])[0].on_by_default is False
    assert parse(["--name", "a", "--on_by_default", "false"])[0].on_by_default is False
    assert parse(["--name", "a", "--maybe"])[0].maybe is True
    assert parse(["--name", "a"])[0].maybe is None


def test_enum_list_optional_and_types():
    ex = parse(["--name", "a", "--color", "blue", "--sizes", "4", "5", "6", "--ratio", "0.5", "--count", "9"])[0]
    assert ex.color == "blue" or ex.color == Color.BLUE
    assert ex.sizes == [4, 5, 6] and ex.ratio == 0.5 and ex.count == 9
    ex = parse(["--name", "a"])[0]
    assert ex.sizes == [1, 2] and ex.ratio is None


def test_training_args_types_and_aliases(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    (args,) = parse(["--output_dir", "o", "--evaluation_strategy", "epoch", "--lr_scheduler_type", "cosine",
                     "--cls_dropout", "0.1", "--use_deterministic_algorithms", "--local-rank=0"], TrainingArguments)
    assert args.evaluation_strategy is IntervalStrategy.EPOCH and args.lr_scheduler_type is SchedulerType.COSINE
    assert args.cls_dropout == 0.1 and args.use_deterministic_algorithms is True and args.local_rank == 0
    assert parse(["--output_dir", "o", "--local_rank", "0"], TrainingArguments)[0].local_rank == 0
    assert parse(["--output_dir", "o"], TrainingArguments)[0].local_rank == -1
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert parse(["--output_dir", "o"], TrainingArguments)[0].local_rank == 0


def test_several_dataclasses_and_remaining_strings():
    ex, other, rest = HfArgumentParser([Example, Other]).parse_args_into_dataclasses(
        args=["--name", "a", "--extra", "y", "--what", "1"], return_remaining_strings=True)
    assert (ex.name, other.extra, rest) == ("a", "y", ["--what", "1"])


def test_json_file_and_dict(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"name": "j", "flag": True, "sizes": [7], "extra": "z"}))
    parser = HfArgumentParser([Example, Other])
    ex, other = parser.parse_json_file(path)
    assert (ex.name, ex.flag, ex.sizes, other.extra) == ("j", True, [7], "z")
    ex, other = parser.parse_args_into_dataclasses(args=[str(path)])  # a lone .json argument
    assert ex.name == "j" and other.extra == "z"
    assert parser.parse_dict({"name": "d", "count": 1})[0].count == 1
    path.write_text(json.dumps({"name": "j", "nmae": 1}))
    with pytest.raises(ValueError, match="unknown argument.*nmae"):
        parser.parse_json_file(path)
    with pytest.raises(ValueError, match="unknown argument.*bogus"):
        parser.parse_dict({"name": "d", "bogus": 1})


@pytest.mark.parametrize("argv, expected", [
    (["--output_dir", "o", "--learning_rat", "1e-3"], "unrecognized arguments: --learning_rat 1e-3"),
    (["--output_dir", "o", "--evaluation_strategy", "daily"], "invalid choice: 'daily'"),
    (["--output_dir", "o", "--do_train", "maybe"], "'maybe' is not a boolean"),
    ([], "--output_dir"),
    (["--output_dir", "o", "--load_best_model_at_end", "--evaluation_strategy", "epoch"],
     "--save_strategy epoch"),
    (["--output_dir", "o", "--load_best_model_at_end"], "--evaluation_strategy steps or epoch"),
    (["--output_dir", "o", "--warmup_ratio", "1.5"], "warmup_ratio must lie in [0, 1]"),
    (["--output_dir", "o", "--fp16", "--bf16"], "mutually exclusive"),
])
def test_bad_command_lines_fail_in_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(argv, TrainingArguments)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_training_args_derived_values():
    args = TrainingArguments(output_dir="~/o", do_eval=False, evaluation_strategy="steps", logging_steps=7,
                             load_best_model_at_end=True)
    assert not args.output_dir.startswith("~")
    assert args.do_eval is True and args.eval_steps == 7
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False
    assert TrainingArguments(output_dir="o", metric_for_best_model="accuracy").greater_is_better is True
    assert args.train_batch_size == 8 and args.world_size == 1 and args.process_index == 0
    # TensorBoard goes under output_dir (4.4.2: ./runs in the current folder)
    assert args.logging_dir.startswith(os.path.join(args.output_dir, "runs", "")) and args.run_name == args.output_dir
    assert TrainingArguments(output_dir="o", report_to="none").report_to == []
    d = json.loads(args.to_json_string())
    assert d["evaluation_strategy"] == "steps" and d["lr_scheduler_type"] == "linear"
    with pytest.raises(ValueError, match="not a valid IntervalStrategy"):
        TrainingArguments(output_dir="o", save_strategy="sometimes")
