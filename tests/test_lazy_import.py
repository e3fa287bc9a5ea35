"""`import transformers` is lazy: it loads no heavy dependency, yet every public name still resolves on first use.

Each check runs in a fresh interpreter, since this test process has long imported everything.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ["torch", "datasets", "sklearn", "scipy", "tokenizers", "sentencepiece", "transformers.models",
         "transformers.trainer"]


def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=SRC))
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_module():
    loaded = _run(f"import json, sys, transformers; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert loaded == []


def test_every_public_name_resolves():
    # `from transformers import X` for each name of __all__, each in a fresh interpreter would be slow: one
    # interpreter, names imported in __all__ order, each through the import statement itself
    result = _run(
        "import json, transformers\n"
        "missing = []\n"
        "for name in transformers.__all__:\n"
        "    try:\n"
        "        exec(f'from transformers import {name}')\n"
        "    except ImportError:\n"
        "        missing.append(name)\n"
        "print(json.dumps({'missing': missing, 'count': len(transformers.__all__),\n"
        "                  'star': sorted(n for n in transformers.__all__ if n not in dir(transformers))}))")
    assert result["missing"] == [] and result["star"] == []
    assert result["count"] > 60  # every name the eager __init__ exported


def test_attribute_access_resolves_names_and_submodules():
    result = _run(
        "import json, transformers as t\n"
        "print(json.dumps([t.PreTrainedTokenizerBase.__name__, t.lora.__name__, t.utils.logging.__name__,\n"
        "                  t.RobertaModel.__module__, hasattr(t, 'NoSuchName'), 'ACT2FN' in dir(t)]))")
    assert result == ["PreTrainedTokenizerBase", "transformers.lora", "transformers.utils.logging",
                      "transformers.models.roberta.modeling_roberta", False, True]


def test_datasets_hashes_a_tokenizer_through_the_lazy_package():
    # datasets finds PreTrainedTokenizerBase as an attribute of an already imported `transformers` to pickle a
    # tokenizer for its cache fingerprint; the attribute must resolve although nothing imported it yet
    fixture = str(Path(__file__).resolve().parent / "fixtures" / "roberta_tokenizer" / "tiny_bpe")
    result = _run(
        "import json, transformers, datasets\n"
        "from datasets.fingerprint import Hasher\n"
        f"tok = transformers.RobertaTokenizerFast(vocab_file={fixture + '/vocab.json'!r},\n"
        f"                                        merges_file={fixture + '/merges.txt'!r})\n"
        "print(json.dumps([Hasher.hash(tok), Hasher.hash(tok)]))")
    assert result[0] == result[1] and len(result[0]) == 16


RUN_GLUE = str(Path(__file__).resolve().parents[1] / "examples" / "text-classification" / "run_glue.py")


def _run_glue(*argv):
    """run_glue.py with `argv` in a fresh interpreter: its exit status, stdout, stderr and the heavy modules that
    were loaded by the time it exited."""
    code = (
        "import json, runpy, sys\n"
        f"sys.argv = ['run_glue.py', *{list(argv)!r}]\n"
        "status = 0\n"
        "try:\n"
        f"    runpy.run_path({RUN_GLUE!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    status = e.code\n"
        f"print(json.dumps([status, [m for m in {HEAVY!r} if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=SRC))
    *text, last = out.stdout.strip().splitlines()
    status, loaded = json.loads(last)
    return status, "\n".join(text), out.stderr, loaded


def test_run_glue_help_loads_no_heavy_module():
    status, text, _, loaded = _run_glue("--help")
    assert status == 0 and loaded == []
    # the whole parser was built: the script's own flags and TrainingArguments'
    assert all(flag in text for flag in ("--task_name", "--apply_lora", "--learning_rate", "--cls_dropout"))


def test_run_glue_argument_errors_are_one_line_without_heavy_modules():
    required = ["--model_name_or_path", "m", "--output_dir", "o", "--task_name", "sst2"]
    for extra, words in ((["--no_such_flag"], "unrecognized arguments: --no_such_flag"),
                         (["--learning_rate", "fast"], "--learning_rate"),
                         (["--do_train", "maybe"], "'maybe' is not a boolean")):
        status, _, err, loaded = _run_glue(*required, *extra)
        assert status == 2 and loaded == [], extra
        assert len(err.strip().splitlines()) == 1 and err.startswith("run_glue.py: error: ") and words in err, err
