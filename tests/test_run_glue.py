"""End-to-end runs of examples/text-classification/run_glue.py on a tiny random RoBERTa: train, eval and predict for
each GLUE task's file layout (and CSV/JSON files), then runs that check reproducibility, padding and packed tokens,
warm starts, label order, refused flags and bad input, the quickstart script and resuming."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import transformers
from transformers.trainer import Trainer

sys.path.insert(0, os.path.dirname(__file__))
from glue_utils import FILLER, MARKERS, ODD, write_glue_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "../shared/data"
EXAMPLES = ROOT / "examples" / "text-classification"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_glue = _load("run_glue")
make_tiny = _load("make_tiny")

LORA = ["--apply_lora", "--lora_r", "2", "--lora_alpha", "4"]
SPEED = ("_runtime", "_per_second")  # wall-clock metrics legitimately differ between runs


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_glue")
    texts = [" ".join(FILLER + MARKERS + ODD)] * 2 + make_tiny.write_sst2_like(str(root / "sst2like"), 256, 32, 8)
    model = str(root / "model")
    vocab = make_tiny.train_tokenizer(texts, model, vocab_size=400, model_max_length=64)
    make_tiny.make_model(model, vocab, hidden_size=32, heads=2, layers=2, max_seq_length=64)
    return {"root": root, "model": model, "trained": {}}


def run(work, out, *args):
    argv = ["--model_name_or_path", work["model"], "--output_dir", str(out), "--overwrite_output_dir",
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--learning_rate", "1e-2",
            "--num_train_epochs", "1", "--seed", "0", "--report_to", "none", "--disable_tqdm", "true",
            "--save_strategy", "no", *args]
    return run_glue.main(argv)


def error_of(work, out, *args):
    with pytest.raises(SystemExit) as info:
        run(work, out, *args)
    message = str(info.value.code)
    assert "\n" not in message
    return message


def eval_metrics(folder, prefix="eval"):
    data = json.loads((Path(folder) / f"{prefix}_results.json").read_text())
    return {k: v for k, v in data.items() if k.startswith("eval") and not k.endswith(SPEED)}


# MNLI's mismatched files are shorter (and drawn apart from the matched ones): a run that read the matched split
# twice would give itself away in the counts as well as in the scores
SIZES = {"validation_mismatched": 12, "test_mismatched": 10}
AX_ROWS = 9  # GLUE's diagnostic set, beside MNLI: a length of its own again


def trained(work, task):
    """Train `task` once per module (LoRA, train+eval+predict); later tests reuse its output folder."""
    if task not in work["trained"]:
        data = write_glue_task(task, str(work["root"] / "glue"), n=16, seed=1, sizes=SIZES)[0]
        if task == "mnli":
            write_glue_task("ax", str(work["root"] / "glue"), n=AX_ROWS, seed=2)
        out = work["root"] / f"out_{task}"
        run(work, out, "--task_name", task, "--data_dir", data, "--do_train", "--do_eval", "--do_predict", *LORA)
        work["trained"][task] = (data, out)
    return work["trained"][task]


EXPECTED_METRICS = {
    "cola": {"matthews_correlation"}, "sst2": {"accuracy"}, "mrpc": {"accuracy", "f1", "combined_score"},
    "qqp": {"accuracy", "f1", "combined_score"}, "stsb": {"pearson", "spearmanr", "combined_score"},
    "mnli": {"accuracy"}, "qnli": {"accuracy"}, "rte": {"accuracy"}, "wnli": {"accuracy"},
}
SUBMISSION = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "qnli": "QNLI",
              "rte": "RTE", "wnli": "WNLI"}
NAMED = {"mnli": ["entailment", "neutral", "contradiction"], "qnli": ["entailment", "not_entailment"],
         "rte": ["entailment", "not_entailment"]}


@pytest.mark.parametrize("task", list(EXPECTED_METRICS))
def test_train_eval_predict_and_reload_from_lora_path(work, tmp_path, task):
    data, out = trained(work, task)
    for name in ("eval_results.json", "all_results.json", "train_results.json", "trainer_state.json",
                 "pytorch_model_lora.bin", "config.json"):
        assert (out / name).is_file(), name
    metrics = eval_metrics(out)
    assert {k[len("eval_"):] for k in metrics} == EXPECTED_METRICS[task] | {"loss", "samples"}
    assert metrics["eval_samples"] == 16
    if task == "mnli":  # matched and mismatched are both kept, in separate files and in all_results.json
        mm = eval_metrics(out, "eval_mnli-mm")
        assert set(mm) == {"eval_mnli-mm_accuracy", "eval_mnli-mm_loss", "eval_mnli-mm_samples"}
        assert mm["eval_mnli-mm_samples"] == SIZES["validation_mismatched"]
        everything = json.loads((out / "all_results.json").read_text())
        assert {**metrics, **mm}.items() <= everything.items()

    # test predictions: 4.4.2's test_results file and the GLUE server file
    predictions = {"mnli": ["mnli", "mnli-mm"]}.get(task, [task])
    for name in predictions:
        n = SIZES["test_mismatched"] if name == "mnli-mm" else 16
        lines = (out / f"test_results_{name}.txt").read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == n + 1
        server = {"mnli": "MNLI-m", "mnli-mm": "MNLI-mm"}.get(name) or SUBMISSION[task]
        rows = [line.split("\t") for line in (out / f"{server}.tsv").read_text().splitlines()]
        assert rows[0] == ["index", "prediction"] and [r[0] for r in rows[1:]] == [str(i) for i in range(n)]
        values = [r[1] for r in rows[1:]]
        if task == "stsb":
            [float(v) for v in values]
        elif task in NAMED:
            assert set(values) <= set(NAMED[task])
        else:
            assert set(values) <= {"0", "1"}

    # the LoRA file alone (+ the untouched base model) gives back exactly the same evaluation
    again = tmp_path / "again"
    run(work, again, "--task_name", task, "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(out / "pytorch_model_lora.bin"))
    assert eval_metrics(again) == metrics
    if task == "mnli":
        assert eval_metrics(again, "eval_mnli-mm") == eval_metrics(out, "eval_mnli-mm")


def score_file(out, path, text_columns, label_column=None):
    """Score a GLUE file with the saved model, outside run_glue and the Trainer: (predicted class ids, accuracy,
    mean cross-entropy) for its rows; the last two are None without labels."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header, rows = lines[0].split("\t"), [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]
    assert all(len(r) == len(header) for r in rows)
    texts = [[r[c] for r in rows] for c in text_columns]
    with torch.no_grad():
        logits = model(**tokenizer(*texts, padding=True, truncation=True, return_tensors="pt")).logits
    predicted = logits.argmax(-1)
    if label_column is None:
        return predicted.tolist(), None, None
    gold = torch.tensor([model.config.label2id.get(r[label_column], NAMED["mnli"].index(r[label_column]))
                         for r in rows])
    loss = torch.nn.functional.cross_entropy(logits, gold).item()
    return predicted.tolist(), (predicted == gold).double().mean().item(), loss


def test_mnli_scores_each_split_from_its_own_files(work):
    data, out = trained(work, "mnli")
    pair = ["sentence1", "sentence2"]
    matched, mismatched = eval_metrics(out), eval_metrics(out, "eval_mnli-mm")
    for split, metrics, prefix in (("dev_matched", matched, "eval"), ("dev_mismatched", mismatched, "eval_mnli-mm")):
        _, accuracy, loss = score_file(out, os.path.join(data, f"{split}.tsv"), pair, "gold_label")
        assert metrics[f"{prefix}_accuracy"] == pytest.approx(accuracy, abs=1e-12), split
        assert metrics[f"{prefix}_loss"] == pytest.approx(loss, rel=1e-5), split
    for split, server, results in (("test_matched", "MNLI-m", "mnli"), ("test_mismatched", "MNLI-mm", "mnli-mm")):
        predicted, _, _ = score_file(out, os.path.join(data, f"{split}.tsv"), pair)
        names = [NAMED["mnli"][i] for i in predicted]
        for name in (f"{server}.tsv", f"test_results_{results}.txt"):
            assert [line.split("\t")[1] for line in (out / name).read_text().splitlines()[1:]] == names, name


def predictions_of(path):
    rows = [line.split("\t") for line in Path(path).read_text().splitlines()]
    assert rows[0] == ["index", "prediction"]
    return rows[1:]


def test_mnli_run_predicts_ax_with_its_model(work):
    data, out = trained(work, "mnli")
    predicted, _, _ = score_file(out, Path(data).parent / "diagnostic" / "AX.tsv", ["sentence1", "sentence2"])
    expected = [[str(i), NAMED["mnli"][p]] for i, p in enumerate(predicted)]
    assert len(expected) == AX_ROWS
    assert predictions_of(out / "AX.tsv") == predictions_of(out / "test_results_ax.txt") == expected
    with pytest.raises(ValueError, match="GLUE scores it with the MNLI model"):  # not a task of its own
        run_glue.DataTrainingArguments(task_name="AX")


@pytest.mark.parametrize("where", ["AX/AX.tsv", "diagnostic/diagnostic.tsv", "nowhere", "hub", "hub without ax"])
def test_ax_is_found_where_glue_puts_it(work, tmp_path, monkeypatch, caplog, where):
    """Predict only, with the trained MNLI model: the diagnostic file is read from the folder beside MNLI (either
    name, --data_dir the GLUE root or its MNLI folder) or from the Hub; without it the MNLI files are still written."""
    import shutil

    data, out = trained(work, "mnli")
    root = tmp_path / "glue"
    shutil.copytree(data, root / "MNLI")
    data_dir = root / "MNLI"
    if where in ("AX/AX.tsv", "diagnostic/diagnostic.tsv"):
        (root / where).parent.mkdir()
        shutil.copy(Path(data).parent / "diagnostic" / "AX.tsv", root / where)
        data_dir = root if where.startswith("AX") else data_dir
    elif where.startswith("hub"):
        load_local = run_glue.load_glue

        def hub(task, data_dir=None, cache_dir=None, splits=None):
            assert data_dir is None and task in ("mnli", "ax")
            if task == "ax" and where == "hub without ax":
                raise run_glue.GlueDataError("cannot load nyu-mll/glue/ax from the Hub")
            return load_local(task, data_dir=str(Path(data).parent / {"mnli": "MNLI", "ax": "diagnostic"}[task]))
        monkeypatch.setattr(run_glue, "load_glue", hub)
        data_dir = None
    predict = tmp_path / "predict"
    run(work, predict, "--model_name_or_path", str(out), "--task_name", "mnli", "--do_predict", *LORA,
        *(["--data_dir", str(data_dir)] if data_dir else []))
    for name in ("MNLI-m.tsv", "MNLI-mm.tsv"):
        assert predictions_of(predict / name) == predictions_of(out / name)
    if where in ("nowhere", "hub without ax"):
        assert not (predict / "AX.tsv").exists() and "AX.tsv is not written" in caplog.text
    else:
        assert predictions_of(predict / "AX.tsv") == predictions_of(out / "AX.tsv")


def test_training_is_reproducible_and_trains_only_lora_and_head(work, tmp_path):
    from safetensors.torch import load_file

    data = str(work["root"] / "sst2like")
    args = ["--task_name", "sst2", "--data_dir", data, "--do_train", "--do_eval", "--apply_lora", "--lora_r", "8",
            "--lora_alpha", "16", "--num_train_epochs", "2", "--learning_rate", "5e-3"]
    results = [{k: v for k, v in run(work, tmp_path / d, *args).items() if not k.endswith(SPEED)} for d in "ab"]
    assert results[0] == results[1]  # set_seed comes before the model (LoRA A, head) is drawn
    a, b = (torch.load(tmp_path / d / "pytorch_model_lora.bin") for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all("lora_" in k or k.startswith("classifier.") for k in a)  # LoRA tensors and the head only
    # the fork's rule: every other backbone tensor stays exactly as pretrained
    base = load_file(os.path.join(work["model"], "model.safetensors"))
    tuned = load_file(tmp_path / "a" / "model.safetensors")
    frozen = [k for k in tuned if k.startswith("roberta.") and "lora_" not in k]
    assert frozen and all(torch.equal(tuned[k], base.get(k, base.get(k[len("roberta."):]))) for k in frozen)
    assert any(not torch.equal(a[k], torch.zeros_like(a[k])) for k in a if "lora_B" in k)  # LoRA did train


def test_padding_to_max_length_changes_nothing(work, tmp_path):
    data, out = trained(work, "rte")
    run(work, tmp_path / "padded", "--task_name", "rte", "--data_dir", data, "--do_eval", *LORA,
        "--lora_path", str(out / "pytorch_model_lora.bin"), "--pad_to_max_length", "--max_seq_length", "64")
    padded, dynamic = eval_metrics(tmp_path / "padded"), eval_metrics(out)
    assert padded["eval_accuracy"] == dynamic["eval_accuracy"]
    # padded keys are masked out exactly; only float summation order over longer rows may differ
    assert padded["eval_loss"] == pytest.approx(dynamic["eval_loss"], abs=1e-6)


def test_packed_tokens_train_like_the_padded_computation(work, tmp_path, monkeypatch):
    """--pack_tokens (default) skips the padding rows' per-token work; --pack_tokens false computes them, as 4.4.2.
    The tiny model is given hidden and attention dropout 0.1 here (the shared one has none), so the packed rows'
    dropout is under test: same seed, same batches, and the packed run must apply the very dropout masks the padded
    run draws. The trained LoRA + head tensors agree to float32 rounding over 2 layers and 64 AdamW steps (1e-5,
    room for GEMM blocking to change with the row count; measured 0.0 at this size), and the eval loss to 1e-6.
    Packed rows that skip dropout (packing.dropout returning its input) move the tensors by far more: red."""
    import shutil

    model = tmp_path / "model_with_dropout"
    shutil.copytree(work["model"], model)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (model / "config.json").write_text(json.dumps(config))
    data = str(work["root"] / "sst2like")
    args = ["--model_name_or_path", str(model), "--task_name", "sst2", "--data_dir", data, "--do_train", "--do_eval",
            *LORA, "--num_train_epochs", "2"]
    from transformers import packing

    packed_batches, for_batch = [], packing.PackedTokens.for_batch
    monkeypatch.setattr(packing.PackedTokens, "for_batch",
                        staticmethod(lambda mask: packed_batches.append(for_batch(mask)) or packed_batches[-1]))
    results = {}
    for flag in ("true", "false"):
        packed_batches.clear()
        results[flag] = run(work, tmp_path / flag, *args, "--pack_tokens", flag)
        used = sum(p is not None for p in packed_batches)
        assert used > 0 if flag == "true" else used == 0  # the flag reaches the model
        trained = json.loads((tmp_path / flag / "config.json").read_text())
        assert trained["hidden_dropout_prob"] == trained["attention_probs_dropout_prob"] == 0.1  # and the dropout
    assert results["true"]["eval_accuracy"] == results["false"]["eval_accuracy"]
    assert results["true"]["eval_loss"] == pytest.approx(results["false"]["eval_loss"], abs=1e-6)
    packed, padded = (torch.load(tmp_path / flag / "pytorch_model_lora.bin") for flag in ("true", "false"))
    assert packed.keys() == padded.keys()
    moved = [k for k in packed if "lora_B" in k and packed[k].abs().max() > 1e-3]
    assert moved  # LoRA trained, so the comparison below compares something
    for k in packed:
        assert torch.allclose(packed[k], padded[k], rtol=0, atol=1e-5), k


def first_training_forward(monkeypatch):
    """Make run_glue's Trainer record the model's tensors as its first training forward pass sees them (main()
    imports Trainer from transformers after parsing its arguments: the patch goes there)."""
    seen = {}

    class Recording(Trainer):
        def train(self, *args, **kwargs):
            def hook(module, inputs):
                if module.training and not seen:
                    seen.update({k: v.detach().clone() for k, v in module.state_dict().items()})
            handle = self.model.register_forward_pre_hook(hook)
            try:
                return super().train(*args, **kwargs)
            finally:
                handle.remove()

    monkeypatch.setattr(transformers, "Trainer", Recording)
    return seen


def test_mnli_lora_warm_starts_a_two_label_task(work, tmp_path, caplog, monkeypatch):
    _, mnli_out = trained(work, "mnli")
    mnli = torch.load(mnli_out / "pytorch_model_lora.bin")
    data = write_glue_task("rte", str(tmp_path), n=8)[0]
    args = ["--task_name", "rte", "--data_dir", data, "--do_train", "--do_eval", *LORA, "--use_deterministic_algorithms"]
    warm = first_training_forward(monkeypatch)
    run(work, tmp_path / "warm", *args, "--lora_path", str(mnli_out / "pytorch_model_lora.bin"))
    assert "head is re-initialised" in caplog.text
    cold = first_training_forward(monkeypatch)  # the same run without the MNLI file
    run(work, tmp_path / "cold", *args)

    lora = [k for k in mnli if "lora_" in k]
    head = [k for k in warm if k.startswith("classifier.")]
    assert lora and head and all(k.startswith("classifier.") for k in set(mnli) - set(lora))
    # training starts from the file's LoRA tensors (trained ones: B is no longer zero) ...
    assert all(torch.equal(warm[k], mnli[k]) for k in lora)
    assert all(mnli[k].abs().sum() > 0 for k in lora if "lora_B" in k)
    # ... and from the head a run without the file draws, none of the MNLI head (not even the same-shape dense layer)
    assert all(torch.equal(warm[k], cold[k]) for k in head)
    assert warm["classifier.out_proj.weight"].shape == (2, 32)
    assert not torch.equal(warm["classifier.dense.weight"], mnli["classifier.dense.weight"])
    # everything else is the base model, as in the run without the file; then training moves LoRA on from there
    assert all(torch.equal(warm[k], cold[k]) for k in warm if "lora_" not in k)
    final = torch.load(tmp_path / "warm" / "pytorch_model_lora.bin")
    assert all(not torch.equal(final[k], mnli[k]) for k in lora if "lora_B" in k)
    assert eval_metrics(tmp_path / "warm")["eval_samples"] == 8


def test_model_label_order_is_followed(work, tmp_path):
    """A model whose config orders the labels its own way (positive=0) is trained and scored in that order, and
    its predictions are written back as dataset labels."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(work["model"], model)
    config = json.loads((model / "config.json").read_text())
    config.update(id2label={"0": "POSITIVE", "1": "NEGATIVE"}, label2id={"POSITIVE": 0, "NEGATIVE": 1})
    (model / "config.json").write_text(json.dumps(config))
    data = str(work["root"] / "sst2like")
    argv = ["--model_name_or_path", str(model), "--output_dir", str(tmp_path / "o"), "--task_name", "sst2",
            "--data_dir", data, "--do_train", "--do_eval", "--do_predict", *LORA, "--num_train_epochs", "1",
            "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", "--max_train_samples", "32"]
    run_glue.main(argv)
    names = [line.split("\t")[1] for line in (tmp_path / "o" / "test_results_sst2.txt").read_text().splitlines()[1:]]
    ids = [line.split("\t")[1] for line in (tmp_path / "o" / "SST-2.tsv").read_text().splitlines()[1:]]
    assert [{"negative": "0", "positive": "1"}[n] for n in names] == ids
    # independently: the saved model's own id2label names its argmax
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tuned = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "o"))
    assert tuned.config.label2id == {"POSITIVE": 0, "NEGATIVE": 1}
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "o"))
    sentences = [line.split("\t")[1] for line in open(os.path.join(data, "test.tsv")).read().splitlines()[1:]]
    with torch.no_grad():
        logits = tuned(**tokenizer(sentences, padding=True, return_tensors="pt")).logits
    assert [tuned.config.id2label[int(i)].lower() for i in logits.argmax(-1)] == names


def test_flags_the_model_cannot_honour_are_refused(work, tmp_path):
    # RoBERTa and DeBERTa-V2 have adapters; BERT has none, and says so in one line instead of training without them
    from transformers import BertConfig, BertForSequenceClassification

    bert = tmp_path / "bert"
    BertForSequenceClassification(BertConfig(vocab_size=400, hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64,
                                             max_position_embeddings=66)).save_pretrained(bert)
    message = error_of(work, tmp_path / "o", "--model_name_or_path", str(bert), "--tokenizer_name", work["model"],
                       "--task_name", "sst2", "--data_dir", str(work["root"] / "sst2like"), "--do_eval",
                       "--apply_adapter")
    assert message.endswith("apply_adapter is not supported for BERT: use apply_lora (or apply_bitfit)"), message


@pytest.fixture(scope="module")
def bad_checkpoints(work):
    _, out = trained(work, "sst2")
    good = torch.load(out / "pytorch_model_lora.bin")
    folder = work["root"] / "bad"
    folder.mkdir()
    missing = dict(good)
    del missing[next(k for k in good if "lora_A" in k)]
    torch.save(missing, folder / "missing.bin")
    (folder / "notes.txt").write_text("not a checkpoint\n")
    torch.manual_seed(0)
    from transformers import RobertaConfig, RobertaForSequenceClassification
    from transformers.lora import lora_state_dict

    wide = RobertaConfig(vocab_size=400, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=96, max_position_embeddings=66, apply_lora=True, lora_r=2, lora_alpha=4)
    torch.save(lora_state_dict(RobertaForSequenceClassification(wide)), folder / "wide.bin")
    return {"good": out / "pytorch_model_lora.bin", "folder": folder, "data": trained(work, "sst2")[0]}


@pytest.mark.parametrize(
    "case, flags, expected",
    [
        ("good", ["--lora_r", "4", "--lora_alpha", "4"], r"lora_A has shape \[2, 32\] in the file but \[4, 32\]"),
        ("wide.bin", ["--lora_r", "2", "--lora_alpha", "4"], r"has shape \[\d+, 48\] in the file but \[\d+, 32\]"),
        ("missing.bin", ["--lora_r", "2", "--lora_alpha", "4"], r"1 LoRA tensor\(s\) of the model are missing"),
        ("notes.txt", ["--lora_r", "2", "--lora_alpha", "4"], r"notes.txt"),
        ("absent.bin", ["--lora_r", "2", "--lora_alpha", "4"], r"absent.bin"),
    ],
)
def test_wrong_lora_path_fails_with_one_line(work, tmp_path, bad_checkpoints, case, flags, expected):
    path = bad_checkpoints["good"] if case == "good" else bad_checkpoints["folder"] / case
    message = error_of(work, tmp_path / "out", "--task_name", "sst2", "--data_dir", bad_checkpoints["data"],
                       "--do_eval", "--apply_lora", *flags, "--lora_path", str(path))
    assert message.startswith("run_glue.py: error: ") and str(path) in message
    assert re.search(expected, message), message
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_input_fails_with_one_line(work, tmp_path):
    data = write_glue_task("rte", str(tmp_path), n=4)[0]
    os.remove(os.path.join(data, "test.tsv"))
    message = error_of(work, tmp_path / "o", "--task_name", "rte", "--data_dir", data, "--do_predict")
    assert message == f"run_glue.py: error: {data}/test.tsv not found: the test split of rte is needed"
    os.makedirs(tmp_path / "full")
    (tmp_path / "full" / "x").write_text("x")
    argv = ["--model_name_or_path", work["model"], "--output_dir", str(tmp_path / "full"), "--task_name", "rte",
            "--data_dir", data, "--do_train"]
    with pytest.raises(SystemExit, match="exists and is not empty: pass --overwrite_output_dir"):
        run_glue.main(argv)
    message = error_of(work, tmp_path / "o", "--task_name", "rte", "--data_dir", data, "--do_eval",
                       "--lora_path", "x.bin")
    assert "--lora_path needs --apply_lora" in message


def test_cli_errors_exit_nonzero_with_one_line(work, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    base = [sys.executable, str(EXAMPLES / "run_glue.py"), "--model_name_or_path", work["model"],
            "--output_dir", str(tmp_path / "o"), "--do_eval"]
    unknown = subprocess.run(base + ["--task_name", "sst3"], capture_output=True, text=True, env=env, timeout=120)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [unknown.stderr.strip()]
    assert "unknown task 'sst3'" in unknown.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run(base + ["--task_name", "sst2", "--data_dir", str(empty)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == f"run_glue.py: error: {empty}/dev.tsv not found: the " \
                                                      "validation split of sst2 is needed"


def test_csv_and_json_files(work, tmp_path, capsys):
    import csv

    rows = [("the good film", "lovely scene", "pos"), ("a bad plot", "awful story", "neg")] * 8
    with open(tmp_path / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("sentence1", "sentence2", "label"), *rows])
    with open(tmp_path / "dev.json", "w") as f:
        f.writelines(json.dumps(dict(zip(("sentence1", "sentence2", "label"), r))) + "\n" for r in rows)
    with pytest.raises(SystemExit) as info:
        run(work, tmp_path / "o", "--train_file", str(tmp_path / "train.csv"),
            "--validation_file", str(tmp_path / "dev.json"), "--do_train")
    assert info.value.code == 2 and "must all be .csv or all be .json" in capsys.readouterr().err
    with open(tmp_path / "dev.csv", "w", newline="") as f:
        csv.writer(f).writerows([("sentence1", "sentence2", "label"), *rows])
    result = run(work, tmp_path / "o", "--train_file", str(tmp_path / "train.csv"), "--validation_file",
                 str(tmp_path / "dev.csv"), "--do_train", "--do_eval", *LORA, "--cache_dir", str(tmp_path / "cache"),
                 "--num_train_epochs", "20")
    # the two pairs are learnable (and dev is the train set): a run that learns gets them all right, with a loss
    # well under chance's ln 2 = 0.69 (0.20 at this seed)
    assert result["eval_samples"] == 16 and result["eval_accuracy"] == 1.0 and result["eval_loss"] < 0.35, result


@pytest.mark.skipif(not (SHARED / "glue" / "RTE").is_dir(), reason="needs ../shared/data")
def test_real_rte_files_with_the_roberta_base_tokenizer(tmp_path):
    model = str(tmp_path / "model")
    make_tiny.make_model(model, 50265, hidden_size=16, max_seq_length=128)
    result = run_glue.main([
        "--model_name_or_path", model, "--tokenizer_name", str(SHARED / "tokenizers" / "roberta-base"),
        "--task_name", "rte", "--data_dir", str(SHARED / "glue" / "RTE"), "--output_dir", str(tmp_path / "o"),
        "--do_train", "--do_eval", "--do_predict", *LORA, "--max_train_samples", "16", "--max_test_samples", "8",
        "--num_train_epochs", "1", "--per_device_eval_batch_size", "64", "--report_to", "none",
        "--disable_tqdm", "true", "--save_strategy", "no"])
    assert result["train_samples"] == 16 and result["eval_samples"] == 277  # the whole RTE dev set
    rows = (tmp_path / "o" / "RTE.tsv").read_text().splitlines()
    assert len(rows) == 9 and {r.split("\t")[1] for r in rows[1:]} <= {"entailment", "not_entailment"}


def test_quickstart_script(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "quickstart.sh"), str(tmp_path / "qs")],
                          capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "OK: identical metrics" in proc.stdout
    accuracy = json.loads((tmp_path / "qs" / "train" / "eval_results.json").read_text())["eval_accuracy"]
    assert accuracy > 0.75  # learnable made-up task, chance 0.5


def test_lora_run_resumes_from_the_last_checkpoint_bit_exact(work, tmp_path):
    """A run cut short is started again with the same command: it resumes from the newest checkpoint-N in
    output_dir and ends exactly where the uninterrupted run ends, with dropout drawing random numbers throughout."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(work["model"], model)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (model / "config.json").write_text(json.dumps(config))
    # 4 steps an epoch, 3 epochs, a checkpoint every 2 steps: checkpoint-4 ends an epoch, checkpoint-6 is mid-epoch.
    # Evaluating at the same steps puts each evaluation into the checkpoint saved right after it.
    def command(out):
        return ["--model_name_or_path", str(model), "--output_dir", str(out), "--task_name", "sst2",
                "--data_dir", str(work["root"] / "sst2like"), "--do_train", "--do_eval", *LORA,
                "--max_train_samples", "32", "--per_device_train_batch_size", "8", "--num_train_epochs", "3",
                "--learning_rate", "1e-2", "--warmup_ratio", "0.2", "--weight_decay", "0.1", "--seed", "3",
                "--evaluation_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
                "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true"]

    def history(out):
        # train_loss too: the checkpoint carries the loss sums, so a resumed run's mean covers every step
        state = json.loads((out / "trainer_state.json").read_text())
        return [{k: v for k, v in entry.items() if not k.endswith(SPEED)} for entry in state["log_history"]]

    full = tmp_path / "full"
    run_glue.main(command(full))
    assert len([entry for entry in history(full) if "loss" in entry]) == 12  # logged to 4 decimals, as 4.4.2 did
    final = torch.load(full / "pytorch_model_lora.bin")
    # LoRA checkpoints hold the trained tensors and a reference to the base; the final save the whole model
    assert (full / "checkpoint-4" / "model_trainable.safetensors").is_file() and (full / "model.safetensors").is_file()
    assert not (full / "checkpoint-4" / "model.safetensors").exists()
    for step in (4, 6):
        cut = tmp_path / f"cut_at_{step}"  # what a run killed after saving checkpoint-<step> leaves behind
        shutil.copytree(full / f"checkpoint-{step}", cut / f"checkpoint-{step}")
        shutil.copytree(full / "checkpoint-2", cut / "checkpoint-2")  # an older one, which must not be taken
        run_glue.main(command(cut))
        assert history(cut) == history(full), step  # every step's loss and learning rate, every epoch's eval
        resumed = torch.load(cut / "pytorch_model_lora.bin")
        assert resumed.keys() == final.keys() and all(torch.equal(resumed[k], final[k]) for k in final), step
        assert eval_metrics(cut) == eval_metrics(full)
