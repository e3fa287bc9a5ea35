"""scripts/: the fork's 28 GLUE scripts (dry runs against the fork's own values, fixes and the paper preset), the
batch arithmetic on fewer GPUs, the seed protocol and summarize.py, and end-to-end runs of the scripts on tiny
models (R-Drop and Cutoff through run_glue.py, an MNLI -> RTE warm start under the protocol)."""
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
FIXTURES = ROOT / "tests" / "fixtures"
FORK = json.loads((FIXTURES / "fork_scripts.json").read_text())["scripts"]
FIXES = json.loads((FIXTURES / "fork_scripts_fixes.json").read_text())
RUN_GLUE = str(ROOT / "examples" / "text-classification" / "run_glue.py")
# what the scripts read from the environment: cleared so that the caller's settings do not leak in
SCRIPT_ENV = ("NUM_GPUS", "DEVICE", "MODEL", "GLUE_DIR", "OUTPUT_ROOT", "OUTPUT_DIR", "SEED", "PRESET", "MNLI_LORA",
              "MNLI_SEED", "GLOBAL_BATCH", "MAX_PER_DEVICE_BATCH", "DRY_RUN", "PYTHON", "TORCHRUN", "TORCHRUN_ARGS",
              "SEEDS", "RERUN", "KEEP_GOING", "SUMMARY", "CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG",
              "PYTHONHASHSEED")

sys.path.insert(0, str(SCRIPTS))
import summarize  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from glue_utils import FILLER, MARKERS, ODD, write_glue_task  # noqa: E402


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def script(name, *args, **env):
    return subprocess.run(["bash", str(SCRIPTS / f"{name}.sh"), *args], env=clean_env(**env), capture_output=True,
                          text=True, timeout=120)


def dry_run(name, *args, **env):
    """Run a script with DRY_RUN=1 (on 'cuda' with the fork's GPU count unless told otherwise); return its notes,
    the environment and launcher words before run_glue.py, and run_glue.py's arguments as a dict."""
    env = {"DRY_RUN": 1, "DEVICE": "cuda", "NUM_GPUS": FORK[name]["num_gpus"], "OUTPUT_ROOT": "out",
           "TORCHRUN": "torchrun", **env}
    result = script(name, *args, **{k: v for k, v in env.items() if v is not None})
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    commands = [line for line in result.stdout.splitlines() if not line.startswith("# ")]
    assert len(commands) == 1, result.stdout
    words = shlex.split(commands[0])
    at = words.index(RUN_GLUE)
    return notes, words[:at], parse_args(words[at + 1:])


def parse_args(words):
    args, i = {}, 0
    while i < len(words):
        assert words[i].startswith("--"), words[i:]
        key = words[i][2:]
        assert key not in args, f"--{key} given twice"
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            args[key], i = words[i + 1], i + 2
        else:
            args[key], i = True, i + 1
    return args


def expected_args(name, preset="fork", root="out", seed=None):
    """The fork's arguments with the documented fixes (and the paper's values under PRESET=paper)."""
    fork = FORK[name]
    args = dict(fork["args"])
    seed = args["seed"] if seed is None else str(seed)
    suffix = "-paper" if preset == "paper" else ""
    run = FIXES["run_folder"].format(root=root, script=name, suffix=suffix, seed=seed)
    args.update({k: v.format(run=run) for k, v in FIXES["paths"].items()})
    args["seed"] = seed
    mnli = FIXES["warm_start"]["scripts"].get(name)
    assert ("lora_path" in args) == (mnli is not None), name
    if mnli:
        args["lora_path"] = FIXES["warm_start"]["lora_path"].format(root=root, mnli=mnli, suffix=suffix)
    if preset == "paper":
        for key, value in FIXES["paper"].get(name, {}).items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
    return args


NAMES = sorted(FORK)


def test_one_script_per_fork_script():
    ours = {p.name[:-3] for p in SCRIPTS.glob("*.sh")} - {"quickstart", "cleanroom", "glue_protocol"}
    assert ours == set(FORK) and len(ours) == 28
    assert all(os.access(SCRIPTS / f"{name}.sh", os.X_OK) for name in ours)
    assert set(FIXES["paper"]) <= set(FORK)


@pytest.mark.parametrize("name", NAMES)
def test_dry_run_is_the_fork_script_fixed(name):
    notes, launch, args = dry_run(name)
    assert args == expected_args(name)
    gpus = FORK[name]["num_gpus"]
    # the fork's exports, and torchrun with the fork's GPU count
    assert launch == [f"{k}={FORK[name]['exports'][k]}" for k in ("CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED")] + [
        "torchrun", "--standalone", f"--nproc_per_node={gpus}"]
    batch = int(args["per_device_train_batch_size"])
    assert any(f"effective batch {batch * gpus} = {batch} per device x {gpus} process(es) x 1 accumulation" in n
               for n in notes), notes


@pytest.mark.parametrize("name", NAMES)
def test_one_gpu_keeps_the_fork_global_batch_by_accumulation(name):
    notes, launch, args = dry_run(name, NUM_GPUS=1)
    gpus = FORK[name]["num_gpus"]
    batch = int(FORK[name]["args"]["per_device_train_batch_size"])
    assert args == {**expected_args(name), "gradient_accumulation_steps": str(gpus)}
    assert launch[-1] == "--nproc_per_node=1"
    assert any(f"effective batch {batch * gpus} = {batch} per device x 1 process(es) x {gpus} accumulation step(s)"
               in n for n in notes), notes


@pytest.mark.parametrize("name", NAMES)
def test_paper_preset(name):
    _, _, args = dry_run(name, PRESET="paper")
    assert args == expected_args(name, preset="paper")
    for key, value in FIXES["paper"].get(name, {}).items():  # each listed difference is a real difference
        assert FORK[name]["args"].get(key) != value, (name, key)


def test_paper_preset_values_spot_check():
    # Table 9 / Table 10 of arXiv:2106.09685, read off the tables
    _, _, args = dry_run("roberta_large_cola", PRESET="paper")
    assert args["learning_rate"] == "2e-4"
    _, _, args = dry_run("deberta_v2_xxlarge_mnli", PRESET="paper")
    assert (args["lora_r"], args["lora_alpha"], args["warmup_ratio"]) == ("8", "8", "0.1")
    assert "warmup_steps" not in args
    _, _, args = dry_run("roberta_base_sst2", PRESET="paper")
    assert args["lora_alpha"] == "8" and args["output_dir"] == "out/roberta_base_sst2-paper/seed0/model"


def test_device_detection(tmp_path):
    """NUM_GPUS/DEVICE unset: nvidia-smi's GPUs (cut to CUDA_VISIBLE_DEVICES), else torch's count, else the CPU."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nfor i in 0 1 2 3; do echo \"GPU $i: Fake GPU (UUID: GPU-$i)\"; done\n")
    smi.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    cases = [({}, 4, "cuda"), ({"CUDA_VISIBLE_DEVICES": "1,3"}, 2, "cuda"), ({"CUDA_VISIBLE_DEVICES": ""}, 1, "cpu")]
    for extra, nproc, device in cases:
        notes, launch, args = dry_run("deberta_v2_xxlarge_mnli", NUM_GPUS=None, DEVICE=None, PATH=path, **extra)
        assert launch[-1] == f"--nproc_per_node={nproc}", extra
        assert f"{nproc} process(es) on {device}" in notes[0]
        assert ("fp16" in args) == (device == "cuda")
    # no working nvidia-smi: torch's count (a stand-in python here), 0 -> one process on the CPU
    smi.write_text("#!/bin/sh\nexit 9\n")
    fake_python = bin_dir / "fake-python"
    for count, nproc, device in (("0", 1, "cpu"), ("2", 2, "cuda")):
        fake_python.write_text(f"#!/bin/sh\necho {count}\n")
        fake_python.chmod(0o755)
        notes, launch, args = dry_run("roberta_base_mnli", NUM_GPUS=None, DEVICE=None, PATH=path,
                                      PYTHON=str(fake_python))
        assert launch[-1] == f"--nproc_per_node={nproc}" and f"on {device}" in notes[0]


def test_cpu_drops_fp16_and_says_so():
    notes, _, args = dry_run("mnli.cutoff", DEVICE="cpu", NUM_GPUS=1)
    assert "fp16" not in args and args["gradient_accumulation_steps"] == "8"
    assert any("--fp16 dropped" in n for n in notes)
    assert {k: v for k, v in args.items() if k != "gradient_accumulation_steps"} == {
        k: v for k, v in expected_args("mnli.cutoff").items() if k != "fp16"}


@pytest.mark.parametrize("name,env,per_device,accumulation", [
    ("roberta_base_mnli", {"NUM_GPUS": 4}, 16, 2),
    ("roberta_base_mnli", {"NUM_GPUS": 8, "MAX_PER_DEVICE_BATCH": 4}, 4, 4),
    ("roberta_base_mnli", {"NUM_GPUS": 3, "GLOBAL_BATCH": 96}, 16, 2),
    ("roberta_base_cola", {"NUM_GPUS": 8}, 8, 1),       # the fork ran CoLA on 2 GPUs: 64 over 8 processes
    ("deberta_v2_xxlarge_qnli", {"NUM_GPUS": 3}, 4, 4),  # 48 = 6 x 8: 6 x 3 does not divide it, 4 x 3 x 4 does
    ("roberta_large_mnli", {"NUM_GPUS": 16}, 2, 1),
])
def test_batch_split(name, env, per_device, accumulation):
    notes, _, args = dry_run(name, **env)
    assert args["per_device_train_batch_size"] == str(per_device)
    assert args.get("gradient_accumulation_steps", "1") == str(accumulation)
    world = env["NUM_GPUS"]
    global_batch = env.get("GLOBAL_BATCH") or FORK[name]["num_gpus"] * int(FORK[name]["args"][
        "per_device_train_batch_size"])
    assert per_device * world * accumulation == global_batch
    assert any(f"effective batch {global_batch} = {per_device} per device x {world} process(es)" in n for n in notes)


def test_refusals():
    result = script("roberta_base_mnli", DRY_RUN=1, DEVICE="cuda", NUM_GPUS=3)
    assert result.returncode == 2 and "cannot be split evenly over 3 processes" in result.stderr
    result = script("roberta_base_mnli", "--per_device_train_batch_size", "4", DRY_RUN=1, NUM_GPUS=1)
    assert result.returncode == 2 and "GLOBAL_BATCH" in result.stderr
    result = script("roberta_base_mnli", DRY_RUN=1, PRESET="best", NUM_GPUS=1)
    assert result.returncode == 2 and "PRESET must be fork or paper" in result.stderr
    result = script("roberta_base_mnli", DRY_RUN=1, NUM_GPUS="two")
    assert result.returncode == 2 and "NUM_GPUS must be a positive integer" in result.stderr


def test_environment_and_extra_arguments(tmp_path):
    _, _, args = dry_run("roberta_large_rte", "--max_train_samples", "10",
                         MODEL="/models/rl", SEED=3, GLUE_DIR="/data/glue", OUTPUT_ROOT="/r", MNLI_SEED=2)
    assert args["model_name_or_path"] == "/models/rl" and args["seed"] == "3"
    assert args["data_dir"] == "/data/glue/RTE"
    assert args["output_dir"] == "/r/roberta_large_rte/seed3/model" and args["logging_dir"] == "/r/roberta_large_rte/seed3/log"
    assert args["lora_path"] == "/r/roberta_large_mnli/seed2/model/pytorch_model_lora.bin"
    assert args["max_train_samples"] == "10"
    _, _, args = dry_run("deberta_v2_xxlarge_stsb", MNLI_LORA="mine.bin", OUTPUT_DIR="here")
    assert args["lora_path"] == "mine.bin" and args["output_dir"] == "here/model"
    # extra arguments come last, so that they win over the script's (argparse keeps the last occurrence)
    result = script("roberta_base_sst2", "--num_train_epochs", "1", DRY_RUN=1, NUM_GPUS=1, DEVICE="cuda")
    words = shlex.split(result.stdout.splitlines()[-1])
    assert words[-2:] == ["--num_train_epochs", "1"] and words.count("--num_train_epochs") == 2
    # no script writes where another does (the fork's Pfeiffer run wrote into the Houlsby folder)
    outputs = {dry_run(name)[2]["output_dir"] for name in ("adapter_houlsby_roberta_large_mnli",
                                                          "adapter_pfeiffer_roberta_large_mnli", "mnli.rdrop",
                                                          "mnli.cutoff", "deberta_v2_xxlarge_mnli")}
    assert len(outputs) == 5


def test_real_run_checks_before_launching(tmp_path):
    result = script("roberta_base_rte", NUM_GPUS=1, DEVICE="cpu", OUTPUT_ROOT=tmp_path, TORCHRUN="false")
    assert result.returncode == 2
    assert "run scripts/roberta_base_mnli.sh first" in result.stderr and "MNLI_LORA" in result.stderr
    result = script("roberta_base_sst2", NUM_GPUS=1, DEVICE="cpu", GLUE_DIR=tmp_path, TORCHRUN="false")
    assert result.returncode == 2 and f"{tmp_path}/SST-2 not found" in result.stderr


def test_protocol_dry_run_runs_every_seed():
    result = subprocess.run(["bash", str(SCRIPTS / "glue_protocol.sh"), "roberta_base_rte.sh", "mnli.rdrop", "--",
                             "--max_train_samples", "8"],
                            env=clean_env(DRY_RUN=1, NUM_GPUS=1, DEVICE="cuda", SEEDS="0,2 4", TORCHRUN="torchrun"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines() if not line.startswith("#")]
    seeds = [(Path(c[c.index("--output_dir") + 1]).parts[-3], c[c.index("--seed") + 1]) for c in commands]
    assert seeds == [("roberta_base_rte", s) for s in "024"] + [("mnli.rdrop", s) for s in "024"]
    assert all(c[-2:] == ["--max_train_samples", "8"] for c in commands)


# ---- summarize.py on made-up output folders ----

def write_run(folder, task, values, *, epochs=None, steps=None, final=None, global_step=None, mm=None,
              in_checkpoint=False, fork_txt=False):
    """An output folder as run_glue.py leaves it: config.json, trainer_state.json (eval entries between training
    logs), all_results.json with the evaluation after training."""
    folder.mkdir(parents=True)
    key = f"eval_{summarize.metric_of(task)}"
    (folder / "config.json").write_text(json.dumps({"finetuning_task": task, "model_type": "roberta"}))
    epochs = epochs or list(range(1, len(values) + 1))
    steps = steps or [10 * e for e in epochs]
    history = []
    for epoch, step, value in zip(epochs, steps, values):
        history.append({"loss": 0.5, "learning_rate": 1e-4, "epoch": epoch, "step": step})
        history.append({key: value, "eval_loss": 0.3, "eval_runtime": 1.0, "epoch": epoch, "step": step})
    state = {"global_step": global_step or steps[-1], "epoch": epochs[-1], "log_history": history}
    if in_checkpoint:
        for n in (steps[0], steps[-1]):
            (folder / f"checkpoint-{n}").mkdir()
        (folder / f"checkpoint-{steps[0]}" / "trainer_state.json").write_text(
            json.dumps({**state, "log_history": history[:2]}))
        (folder / f"checkpoint-{steps[-1]}" / "trainer_state.json").write_text(json.dumps(state))
        return
    (folder / "trainer_state.json").write_text(json.dumps(state))
    results = {"epoch": epochs[-1], "train_loss": 0.4, key: values[-1] if final is None else final}
    if mm is not None:
        results["eval_mnli-mm_accuracy"] = mm
    if fork_txt:
        (folder / f"eval_results_{task}.txt").write_text("".join(f"{k} = {v}\n" for k, v in results.items()))
    else:
        (folder / "all_results.json").write_text(json.dumps(results))


@pytest.fixture
def made_up(tmp_path):
    root = tmp_path / "runs"
    rte = {0: [0.70, 0.80, 0.75], 1: [0.72, 0.74, 0.79], 2: [0.60, 0.85, 0.85], 3: [0.81, 0.77, 0.78],
           4: [0.66, 0.70, 0.83]}
    for seed, values in rte.items():
        write_run(root / "roberta_base_rte" / f"seed{seed}" / "model", "rte", values)
    cola = {0: [0.0, 0.55, 0.61, 0.60], 1: [0.58, 0.63, 0.62, 0.59], 2: [0.0, 0.0, 0.64, 0.66]}
    for seed, values in cola.items():
        write_run(root / "roberta_base_cola" / f"seed{seed}" / "model", "cola", values)
    # steps-based (DeBERTa): the evaluation after training is at step 57, after the last scheduled one (50)
    for seed, (values, final) in {0: ([0.89, 0.91], 0.905), 1: ([0.90, 0.90], 0.93), 2: ([0.88, 0.92], 0.90)}.items():
        write_run(root / "deberta_v2_xxlarge_stsb" / f"seed{seed}" / "model", "stsb", values, epochs=[0.9, 1.8],
                  steps=[25, 50], final=final, global_step=57)
    write_run(root / "roberta_base_mnli" / "seed0" / "model", "mnli", [0.85, 0.87], mm=0.868)
    write_run(root / "roberta_base_mnli" / "seed1" / "model", "mnli", [0.86, 0.86], mm=0.862, fork_txt=True)
    write_run(root / "roberta_base_mnli" / "seed2" / "model", "mnli", [0.84, 0.88], in_checkpoint=True)
    return root, rte, cola


def test_summarize_medians_best_and_last(made_up, tmp_path):
    root, rte, cola = made_up
    results = {(r["experiment"], r["task"]): r for r in summarize.main([str(root), "--json", str(tmp_path / "s.json"),
                                                                        "--out", str(tmp_path / "s.md")])}
    r = results[("roberta_base_rte", "rte")]
    best = {seed: max(values) for seed, values in rte.items()}
    assert r["seeds"] == [0, 1, 2, 3, 4] and r["metric"] == "accuracy"
    assert r["best_median"] == pytest.approx(statistics.median(best.values())) == pytest.approx(0.81)
    assert (r["best_min"], r["best_max"]) == (pytest.approx(0.79), pytest.approx(0.85))
    assert r["last_median"] == pytest.approx(statistics.median(v[-1] for v in rte.values()))
    # best epochs: the first of equal values (seed 2 reaches 0.85 at epochs 2 and 3)
    assert [run["best"]["epoch"] for run in r["runs"]] == [2, 3, 2, 1, 3]
    r = results[("roberta_base_cola", "cola")]
    assert r["metric"] == "matthews_correlation"
    assert r["best_median"] == pytest.approx(0.63) and r["last_median"] == pytest.approx(0.60)
    assert [run["best"]["epoch"] for run in r["runs"]] == [3, 2, 4]
    r = results[("deberta_v2_xxlarge_stsb", "stsb")]
    assert r["metric"] == "pearson"
    # seed 1's evaluation after training (0.93 at step 57) is its best and its last
    assert [run["best"]["step"] for run in r["runs"]] == [50, 57, 50]
    assert [run["last"]["value"] for run in r["runs"]] == [0.905, 0.93, 0.90]
    assert r["best_median"] == pytest.approx(0.92) and r["last_median"] == pytest.approx(0.905)
    r = results[("roberta_base_mnli", "mnli")]
    assert [run["best"]["value"] for run in r["runs"]] == [0.87, 0.86, 0.88]  # seed 2 from its newest checkpoint
    assert r["runs"][2]["best_checkpoint"].endswith("checkpoint-20")
    assert r["mnli_mm_last_median"] == pytest.approx(0.865)
    assert json.loads((tmp_path / "s.json").read_text())[0]["task"] in summarize.TASKS

    text = (tmp_path / "s.md").read_text()
    assert "| roberta_base | 87.0 (86.0-88.0, n=3) | - | - | 63.0 (61.0-66.0, n=3) | - | - | 81.0 (79.0-85.0, n=5) | - | - |" \
        in text
    assert "| deberta_v2_xxlarge | - | - | - | - | - | - | - | 92.0 (91.0-93.0, n=3) | - |" in text
    assert "MNLI-mm after training: 86.5" in text
    assert "| roberta_base_rte | RTE | 2 | 85.0 | epoch 2 (step 20) | 85.0 | epoch 3 (step 30) |" in text


def test_summarize_paper_rows_and_average(tmp_path):
    root = tmp_path / "runs"
    for i, task in enumerate(summarize.TASKS):
        write_run(root / f"x_{task}" / "seed0" / "model", task, [0.5 + i / 100])
    text = subprocess.run([sys.executable, str(SCRIPTS / "summarize.py"), str(root), "--paper"],
                          capture_output=True, text=True, check=True).stdout
    row = next(line for line in text.splitlines() if line.startswith("| x |"))
    assert row.endswith(f"| {statistics.mean(50 + i for i in range(8)):.1f} |"), row
    assert "| paper: RoBERTa-base LoRA (0.3M) | 87.5±.3 | 95.1±.2 |" in text


def test_summarize_plots(made_up, tmp_path):
    pytest.importorskip("matplotlib")
    root, _, _ = made_up
    summarize.main([str(root), "--out", str(tmp_path / "s.md"), "--plots", str(tmp_path / "plots")])
    for task in ("rte", "cola", "stsb", "mnli"):
        png = tmp_path / "plots" / f"{task}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "plots" / "sst2.png").exists()


def test_summarize_without_matplotlib(made_up, tmp_path):
    root, _, _ = made_up
    code = ("import runpy, sys; sys.modules['matplotlib'] = None; "  # makes `import matplotlib` fail
            f"sys.argv = ['summarize.py', {str(root)!r}, '--out', {str(tmp_path / 's.md')!r}, '--plots', "
            f"{str(tmp_path / 'plots')!r}]; runpy.run_path({str(SCRIPTS / 'summarize.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "matplotlib is not installed" in result.stderr
    assert (tmp_path / "s.md").is_file() and not (tmp_path / "plots").exists()


def test_summarize_nothing_found(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / "summarize.py"), str(tmp_path)], capture_output=True,
                            text=True)
    assert result.returncode == 1 and "no GLUE run with evaluations" in result.stderr


# ---- the scripts for real, on tiny models, one process on the CPU ----

def losses(folder):
    history = json.loads((Path(folder) / "trainer_state.json").read_text())["log_history"]
    return [e["loss"] for e in history if "loss" in e]


@pytest.fixture(scope="module")
def tiny_deberta(tmp_path_factory):
    from transformers import DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    root = tmp_path_factory.mktemp("tiny_deberta")
    shutil.copy(FIXTURES / "deberta_v2" / "tokenizer" / "tiny_spm.model", root / "spm.model")
    tokenizer = DebertaV2Tokenizer.from_pretrained(root)
    # wider initial weights than DeBERTa's 0.02, so that the frozen random encoder passes the words on to LoRA
    config = DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=64, relative_attention=True,
                             position_buckets=8, pos_att_type="p2c|c2p", share_att_key=True,
                             norm_rel_ebd="layer_norm", position_biased_input=False, conv_kernel_size=3,
                             initializer_range=0.1)
    torch.manual_seed(0)
    DebertaV2Model(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    # MNLI-like: the label is the marker word in the premise; 96 train, 48 dev examples, chance 1/3
    write_glue_task("mnli", str(root / "glue"), n=48, seed=1, sizes={"train": 96})
    return root


@pytest.mark.parametrize("method", ["rdrop", "cutoff"])
def test_rdrop_and_cutoff_scripts_learn_on_a_toy_task(tiny_deberta, tmp_path, method):
    """mnli.rdrop.sh / mnli.cutoff.sh for real (torchrun, run_glue.py): their flags (--reg_loss_wgt 1.0, Cutoff's
    --masking_prob 0.1, --cls_dropout 0.15, LoRA r 16 alpha 32, --use_deterministic_algorithms) reach the model and
    the run learns; only the schedule is shortened for a tiny model."""
    result = script(f"mnli.{method}", "--learning_rate", "2e-2", "--num_train_epochs", "10", "--warmup_steps", "0",
                    "--eval_steps", "24", "--save_steps", "100000", "--max_seq_length", "48", "--logging_steps", "6",
                    "--report_to", "none", "--disable_tqdm", "true",
                    MODEL=tiny_deberta / "model", GLUE_DIR=tiny_deberta / "glue", OUTPUT_ROOT=tmp_path,
                    GLOBAL_BATCH=8, DEVICE="cpu", NUM_GPUS=1, OMP_NUM_THREADS=1, PYTHON=sys.executable)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "effective batch 8 = 8 per device x 1 process(es) x 1 accumulation step(s)" in result.stdout
    out = tmp_path / f"mnli.{method}" / "seed42" / "model"
    config = json.loads((out / "config.json").read_text())
    assert (config["reg_loss_wgt"], config["masking_prob"]) == (1.0, 0.1 if method == "cutoff" else 0.0)
    assert (config["cls_dropout"], config["lora_r"], config["lora_alpha"]) == (0.15, 16, 32)
    seen = losses(out)
    assert len(seen) >= 15 and statistics.mean(seen[-3:]) < 0.6 * statistics.mean(seen[:3]), seen
    metrics = json.loads((out / "eval_results.json").read_text())
    assert metrics["eval_accuracy"] >= 0.6 and metrics["eval_loss"] < math.log(3), metrics


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tiny", ROOT / "examples" / "text-classification" /
                                                  "make_tiny.py")
    make_tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tiny)
    root = tmp_path_factory.mktemp("tiny_roberta")
    texts = [" ".join(FILLER + MARKERS + ODD)] * 2 + make_tiny.write_sst2_like(str(root / "unused"), 256, 32, 8)
    vocab = make_tiny.train_tokenizer(texts, str(root / "model"), vocab_size=400, model_max_length=64)
    make_tiny.make_model(str(root / "model"), vocab, hidden_size=32, heads=2, layers=2, max_seq_length=64)
    for task in ("mnli", "rte"):
        write_glue_task(task, str(root / "glue"), n=32, seed=2)
    return root


def test_protocol_mnli_then_rte_warm_start_and_summary(tiny_roberta, tmp_path):
    """glue_protocol.sh for real: roberta_base_mnli (seed 0), then roberta_base_rte over seeds 0 and 1, each
    warm-started from the MNLI run's pytorch_model_lora.bin; then the summary and the plots."""
    env = clean_env(MODEL=tiny_roberta / "model", GLUE_DIR=tiny_roberta / "glue", OUTPUT_ROOT=tmp_path / "runs",
                    GLOBAL_BATCH=16, DEVICE="cpu", NUM_GPUS=1, OMP_NUM_THREADS=1, PYTHON=sys.executable)
    extra = ["--", "--learning_rate", "1e-2", "--num_train_epochs", "3", "--max_seq_length", "64", "--report_to",
             "none", "--disable_tqdm", "true"]

    def protocol(name, seeds):
        return subprocess.run(["bash", str(SCRIPTS / "glue_protocol.sh"), name, *extra], env={**env, "SEEDS": seeds},
                              capture_output=True, text=True, timeout=600)

    for name, seeds in (("roberta_base_mnli", "0"), ("roberta_base_rte", "0,1")):
        result = protocol(name, seeds)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = tmp_path / "runs"
    mnli_lora = runs / "roberta_base_mnli" / "seed0" / "model" / "pytorch_model_lora.bin"
    assert result.stdout.count(f"warm start from {mnli_lora}") == 2
    assert result.stdout.count(f"Applied the LoRA state dict of {mnli_lora}") == 2
    for seed in (0, 1):  # evaluated and saved every epoch, as the script says
        state = json.loads((runs / "roberta_base_rte" / f"seed{seed}" / "model" / "trainer_state.json").read_text())
        assert [e["epoch"] for e in state["log_history"] if "eval_accuracy" in e] == [1, 2, 3]
    text = (runs / "summary.md").read_text()
    assert "| roberta_base_rte | RTE | accuracy | 0, 1 |" in text and "| roberta_base_mnli | MNLI | accuracy | 0 |" in text
    assert next(line for line in text.splitlines() if line.startswith("| roberta_base |")).count("n=") == 2
    if _has_matplotlib():
        assert (runs / "plots" / "rte.png").is_file() and (runs / "plots" / "mnli.png").is_file()
    # a second call skips the seeds that finished
    again = protocol("roberta_base_rte", "0 1")
    assert again.returncode == 0 and again.stdout.count("finished before") == 2


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
