"""--deepspeed: the config filled from the flags (pure functions, no deepspeed needed), and 2-process CPU (gloo) runs of
run_glue.py under ZeRO-2 and ZeRO-3 against plain DDP, with checkpoints written and resumed through the engine.

The engine runs need deepspeed: without it they fail under CI=true and skip elsewhere (tests/needs.py). Its first
use on a machine compiles a small CPU communication op (a few minutes on a busy 2-core box; cached afterwards)."""
import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from transformers import TrainingArguments
from transformers.deepspeed_support import fill_deepspeed_config, load_deepspeed_config, resolve_batch_sizes

sys.path.insert(0, os.path.dirname(__file__))
from test_distributed import (  # noqa: E402,F401
    N_DEV, N_TEST, assert_never_resumed, common, launch, lora_file, max_diff, tiny,
)
from test_run_glue import run_glue  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
ZERO2, ZERO3 = SCRIPTS / "ds_config_zero2.json", SCRIPTS / "ds_config_zero3.json"


def flags(**changes):
    """The TrainingArguments fields the config filling reads."""
    values = dict(deepspeed="ds.json", per_device_train_batch_size=8, gradient_accumulation_steps=2, max_grad_norm=0.5,
                  learning_rate=3e-4, adam_beta1=0.8, adam_beta2=0.98, adam_epsilon=1e-6, weight_decay=0.1,
                  fp16=False, bf16=False)
    return SimpleNamespace(**{**values, **changes})


# -- the config, without deepspeed ------------------------------------------------------------------------------------
def test_batch_sizes_come_from_the_flags():
    for config in ({}, {"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
                        "train_batch_size": "auto"},
                   {"train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 2, "train_batch_size": 48}):
        assert resolve_batch_sizes(config, 8, 2, 3) == (8, 2, 48)  # 8 per device x 2 accumulated x 3 processes
        assert config["train_batch_size"] == 48


@pytest.mark.parametrize("key,value,says", [
    ("train_micro_batch_size_per_gpu", 4, "--per_device_train_batch_size 8"),
    ("gradient_accumulation_steps", 1, "--gradient_accumulation_steps 2"),
    ("train_batch_size", 32, "8 per device x 2 accumulated x 3 process(es) = 48"),
])
def test_batch_sizes_against_the_flags_are_one_line_errors(key, value, says):
    with pytest.raises(ValueError) as info:
        resolve_batch_sizes({key: value}, 8, 2, 3, "my.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"my.json: {key} is {value}") and says in message
    assert '"auto"' in message


def test_auto_values_are_filled_from_the_flags():
    config = {
        "gradient_clipping": "auto",
        "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto",
                                                  "weight_decay": "auto"}},
        "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": "auto", "warmup_max_lr": "auto",
                                                          "warmup_num_steps": "auto", "total_num_steps": "auto"}},
        "fp16": {"enabled": "auto", "loss_scale": 0},
        "zero_optimization": {"stage": 3, "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto",
                              "stage3_param_persistence_threshold": "auto", "sub_group_size": 7},
    }
    filled = fill_deepspeed_config(config, flags(), 2, num_training_steps=100, num_warmup_steps=6, hidden_size=10)
    assert filled["train_micro_batch_size_per_gpu"] == 8 and filled["train_batch_size"] == 32
    assert filled["gradient_clipping"] == 0.5
    assert filled["optimizer"]["params"] == {"lr": 3e-4, "betas": [0.8, 0.98], "eps": 1e-6, "weight_decay": 0.1}
    assert filled["scheduler"]["params"] == {"warmup_min_lr": 0, "warmup_max_lr": 3e-4, "warmup_num_steps": 6,
                                             "total_num_steps": 100}
    assert filled["fp16"] == {"enabled": False, "loss_scale": 0} and filled["bf16"] == {"enabled": False}
    assert filled["zero_optimization"] == {"stage": 3, "reduce_bucket_size": 100, "stage3_prefetch_bucket_size": 90,
                                           "stage3_param_persistence_threshold": 100, "sub_group_size": 7}
    assert "zero_allow_untested_optimizer" not in filled  # DeepSpeed builds its own optimizer here
    assert config["gradient_clipping"] == "auto"  # the caller's dict is left as it was
    # without an optimizer block the engine gets the Trainer's AdamW, which ZeRO must be told to accept
    assert fill_deepspeed_config({}, flags(bf16=True), 1, 10, 0)["zero_allow_untested_optimizer"] is True
    assert fill_deepspeed_config({}, flags(bf16=True), 1, 10, 0)["bf16"] == {"enabled": True}


@pytest.mark.parametrize("config,args,says", [
    ({"fp16": {"enabled": True}}, flags(), "fp16.enabled is true but --fp16 is off"),
    ({"bf16": {"enabled": False}}, flags(bf16=True), "bf16.enabled is false but --bf16 is on"),
    ({"zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}}, flags(),
     'nothing fills "auto" at zero_optimization.reduce_bucket_size'),
    ({"zero_optimization": {"sub_group_size": "auto"}, "gradient_clipping": "auto"}, flags(),
     'nothing fills "auto" at zero_optimization.sub_group_size'),
])
def test_conflicts_and_unfillable_autos_are_one_line_errors(config, args, says):
    with pytest.raises(ValueError) as info:
        fill_deepspeed_config(config, args, 1, 10, 0)  # no hidden size: the ZeRO bucket autos have no source
    assert "\n" not in str(info.value) and str(info.value).startswith("ds.json: ") and says in str(info.value)


@pytest.mark.parametrize("path,stage", [(ZERO2, 2), (ZERO3, 3)])
def test_shipped_configs_fill_completely(path, stage):
    filled = fill_deepspeed_config(load_deepspeed_config(str(path)), flags(deepspeed=str(path)), 2, 100, 6, 768)
    assert filled["zero_optimization"]["stage"] == stage and filled["train_batch_size"] == 32
    assert filled["zero_optimization"]["reduce_bucket_size"] == 768 * 768
    assert "auto" not in json.dumps(filled)


def test_bad_config_is_refused_when_the_flags_are_parsed(tmp_path, monkeypatch):
    def refused(path):
        with pytest.raises(ValueError) as info:
            TrainingArguments(output_dir=str(tmp_path / "o"), deepspeed=str(path))
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "no such file" in refused(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"train_batch_size": }')
    assert "not valid json" in refused(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1]")
    assert "must be a json object" in refused(tmp_path / "list.json")
    (tmp_path / "b.json").write_text('{"train_batch_size": 16}')
    monkeypatch.setenv("WORLD_SIZE", "3")  # the launcher's world: 8 x 1 x 3 = 24, not 16
    assert "train_batch_size is 16 but the run has 8 per device x 1 accumulated x 3 process(es)" in refused(
        tmp_path / "b.json")


def test_run_glue_reports_a_config_conflict_in_one_line(tiny, tmp_path, capsys):
    (tmp_path / "fp16.json").write_text('{"fp16": {"enabled": true}}')
    with pytest.raises(SystemExit) as info:
        run_glue.main([*common(tiny, tmp_path / "o"), "--do_train", "--deepspeed", str(tmp_path / "fp16.json")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "fp16.enabled is true but --fp16 is off" in err[-1]
    assert not (tmp_path / "o").exists()  # refused before anything was written


# -- the engine, 2 processes on the CPU -------------------------------------------------------------------------------
# checked before any fixture: without deepspeed these fail at once under CI=true and skip elsewhere (tests/needs.py)
engine = pytest.mark.needs("deepspeed")
# 40 rows over 2 processes in batches of 4 with accumulation 2: 5 batches per epoch, so every epoch leaves one
# batch over, whose gradient joins the next epoch's first update: the engine must step where the Trainer says
RUN = ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--max_train_samples", "40",
       "--num_train_epochs", "3", "--warmup_steps", "2", "--max_grad_norm", "0.05", "--do_train", "--do_eval",
       "--do_predict"]


def run_args(tiny, out, *extra):
    args = common(tiny, out)
    at = args.index("--per_device_train_batch_size")
    del args[at:at + 4]  # RUN sets batch and accumulation
    return [*args, *RUN, *extra]


@pytest.fixture(scope="module")
def ddp(tiny):
    out = tiny / "ds_ref_ddp"
    launch("torchrun", run_args(tiny, out, "--save_strategy", "no"))
    return out


@pytest.fixture(scope="module")
def zero2(tiny):
    out = tiny / "ds_zero2"
    assert_never_resumed(launch("torchrun", run_args(tiny, out, "--save_steps", "3", "--deepspeed", str(ZERO2))))
    return out


@engine
def test_zero2_trains_like_ddp_and_saves_through_the_engine(ddp, zero2):
    # same data, same AdamW and schedule, clipping by the engine instead of torch: equal to rounding (seen: 1.3e-7)
    assert max_diff(lora_file(zero2), lora_file(ddp)) < 1e-5
    state = json.loads((zero2 / "trainer_state.json").read_text())
    assert state["global_step"] == 6  # 2 updates per epoch x 3
    one, two = (json.loads((o / "eval_results.json").read_text()) for o in (ddp, zero2))
    assert two["eval_samples"] == N_DEV and abs(two["eval_loss"] - one["eval_loss"]) < 1e-5
    assert len((zero2 / "SST-2.tsv").read_text().splitlines()) == N_TEST + 1
    ckpt = zero2 / "checkpoint-3"
    tag = (ckpt / "latest").read_text().strip()
    assert {p.name for p in (ckpt / tag).iterdir()} >= {"zero_pp_rank_0_mp_rank_00_optim_states.pt",
                                                       "zero_pp_rank_1_mp_rank_00_optim_states.pt"}
    assert not (ckpt / "optimizer.pt").exists()  # the optimizer state is the engine's, one slice per process
    for name in ("pytorch_model_lora.bin", "model_lora.safetensors", "peft_adapter/adapter_model.safetensors",
                 "rng_state_0.pth", "rng_state_1.pth", "trainer_state.json"):
        assert (ckpt / name).is_file(), name


@engine
def test_zero2_resumes_from_its_checkpoint_bit_exact(tiny, zero2, tmp_path):
    """Step 3 is mid-epoch, with the previous epoch's leftover batch already in it: the engine restores its optimizer
    slices and schedule, the Trainer the data order and random state, and the end is the same to the bit."""
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(zero2 / "checkpoint-3", resumed / "checkpoint-3")
    result = launch("torchrun", run_args(tiny, resumed, "--save_steps", "3", "--deepspeed", str(ZERO2)))
    assert "resuming from" in result.stdout + result.stderr
    assert max_diff(lora_file(resumed), lora_file(zero2)) == 0.0


@engine
def test_zero3_slices_the_weights_and_still_saves_and_evaluates_them_whole(tiny, zero2):
    out = tiny / "ds_zero3"
    launch("torchrun", run_args(tiny, out, "--save_strategy", "no", "--deepspeed", str(ZERO3)))
    # ZeRO-3 reduces in another order than ZeRO-2 (seen: 2.2e-7)
    assert max_diff(lora_file(out), lora_file(zero2)) < 1e-5
    three, two = (json.loads((o / "eval_results.json").read_text()) for o in (out, zero2))
    assert three["eval_samples"] == N_DEV and abs(three["eval_loss"] - two["eval_loss"]) < 1e-5
    assert len((out / "SST-2.tsv").read_text().splitlines()) == N_TEST + 1
    # the saved model is whole: ZeRO-3 leaves empty slices in the module, saving gathers them first
    from safetensors.torch import load_file

    sliced, whole = (load_file(o / "model.safetensors") for o in (out, zero2))
    assert {k: v.shape for k, v in sliced.items()} == {k: v.shape for k, v in whole.items()}
    assert max((sliced[k] - whole[k]).abs().max().item() for k in whole) < 1e-5


class _Payload:
    """Unpickled with a full unpickler, this creates the file at `marker`: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


@engine
def test_a_crafted_deepspeed_file_is_refused_unread(tiny, zero2, tmp_path):
    """A ZeRO-2 checkpoint whose optimizer slice was replaced by a pickle payload, its manifest rewritten to match:
    resuming stops in one line naming the file and the class, on every rank, and the payload never runs."""
    from transformers.trainer_utils import write_checkpoint_manifest

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    ckpt = resumed / "checkpoint-3"
    shutil.copytree(zero2 / "checkpoint-3", ckpt)
    tag = (ckpt / "latest").read_text().strip()
    marker = tmp_path / "payload_ran"
    torch.save({"optimizer_state_dict": _Payload(str(marker))}, ckpt / tag / "zero_pp_rank_1_mp_rank_00_optim_states.pt")
    write_checkpoint_manifest(str(ckpt))
    result = launch("torchrun", run_args(tiny, resumed, "--save_steps", "3", "--deepspeed", str(ZERO2)), check=False)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if "zero_pp_rank_1_mp_rank_00_optim_states.pt holds a " in line]
    assert lines and "refused unread" in lines[0], result.stderr[-3000:]
    assert not marker.exists()


@engine
def test_genuine_classes_pass_and_others_are_refused(tmp_path):
    """The allow-list check on its own: the classes DeepSpeed stores load, anything else is named and refused."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum

    from transformers.deepspeed_support import check_deepspeed_checkpoint
    from transformers.safe_loading import UnreadableCheckpoint

    step = tmp_path / "global_step1"
    step.mkdir()
    (tmp_path / "latest").write_text("global_step1")
    scaler = DynamicLossScaler(init_scale=2 ** 16, scale_window=1000, min_scale=1, delayed_shift=2,
                               consecutive_hysteresis=False)
    torch.save({"loss_scaler": scaler, "zero_stage": ZeroStageEnum.gradients,
                "state": {"exp_avg": torch.ones(2)}}, step / "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    check_deepspeed_checkpoint(str(tmp_path))
    marker = tmp_path / "ran"
    torch.save([_Payload(str(marker))], step / "mp_rank_00_model_states.pt")
    with pytest.raises(UnreadableCheckpoint, match=r"mp_rank_00_model_states.pt holds a [\w.]+ object, which DeepSpeed never writes"):
        check_deepspeed_checkpoint(str(tmp_path))
    assert not marker.exists()
    (tmp_path / "latest").write_text("../elsewhere")
    with pytest.raises(UnreadableCheckpoint, match="not a folder of the checkpoint"):
        check_deepspeed_checkpoint(str(tmp_path))
