"""AdamW and learning-rate schedules against transformers 4.4.2.

Fixtures: tests/fixtures/make_training_fixtures.py, run with the 4.4.2 oracle venv, records
  schedules.json  the learning rate before each of total+3 optimizer steps for every schedule type and several
                  (warmup, total) pairs, and for 4.4.2 Trainer.create_optimizer_and_scheduler with warmup_ratio /
                  warmup_steps;
  adamw.json      6 AdamW steps on a fixed float64 tensor with fixed gradients, weight decay 0 / 0.1 and
                  correct_bias on / off.
Tolerance: 1e-9 relative to each 4.4.2 value (a zero must be matched exactly). Both sides evaluate the same
closed-form expressions in float64 and agree bit for bit today; the bound only leaves room for a reordered sum. It
sits far below real bugs: ignoring lr_end moves the last rates by 1e-7 (relative 1, not 1e-9 as an absolute 1e-7
bound would have let through), a wrong power or num_cycles by >= 1e-6 relative, weight decay applied before the
update instead of after moves parameters by ~1e-5, a missing bias correction by ~1e-2.
"""
import copy
import os
import sys
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from transformers.optimization import (
    AdamW,
    SchedulerType,
    get_cosine_schedule_with_warmup,
    get_cosine_with_hard_restarts_schedule_with_warmup,
    get_polynomial_decay_schedule_with_warmup,
    get_scheduler,
)
from transformers.trainer import Trainer
from transformers.training_args import TrainingArguments

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fixtures"))
from fixture_io import lr_trace  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "training"
REL = 1e-9
SCHEDULES = json.loads((FIXTURES / "schedules.json").read_text())
ADAMW = json.loads((FIXTURES / "adamw.json").read_text())


@pytest.mark.parametrize("case", SCHEDULES["schedules"], ids=lambda c: f"{c['name']}-{c['warmup']}-{c['total']}")
def test_schedule_matches_442(case):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=SCHEDULES["base_lr"])
    sched = get_scheduler(case["name"], opt, num_warmup_steps=case["warmup"], num_training_steps=case["total"])
    assert_close(lr_trace(sched, len(case["lrs"]) - 1), case["lrs"])


def assert_close(ours, theirs):
    assert len(ours) == len(theirs)
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(ours, theirs)) if not abs(a - b) <= REL * abs(b)]
    assert not bad, f"(step, ours, 4.4.2): {bad[:3]}"


FUNCTIONS = {"cosine": get_cosine_schedule_with_warmup,
             "cosine_with_restarts": get_cosine_with_hard_restarts_schedule_with_warmup,
             "polynomial": get_polynomial_decay_schedule_with_warmup}


@pytest.mark.parametrize("case", SCHEDULES["variants"],
                         ids=lambda c: f"{c['name']}-{'-'.join(map(str, c['kwargs'].values()))}-{c['warmup']}")
def test_schedule_parameters_match_442(case):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=SCHEDULES["base_lr"])
    sched = FUNCTIONS[case["name"]](opt, case["warmup"], case["total"], **case["kwargs"])
    assert_close(lr_trace(sched, len(case["lrs"]) - 1), case["lrs"])


def test_schedule_parameter_fixtures_are_not_the_defaults():
    """Each variant differs from the schedule with default parameters (else the test above could not tell)."""
    for case in SCHEDULES["variants"]:
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=SCHEDULES["base_lr"])
        default = lr_trace(FUNCTIONS[case["name"]](opt, case["warmup"], case["total"]), len(case["lrs"]) - 1)
        assert max(abs(a - b) / SCHEDULES["base_lr"] for a, b in zip(default, case["lrs"])) > 1e-5, case["kwargs"]


@pytest.mark.parametrize("case", SCHEDULES["trainer_warmup"],
                         ids=lambda c: f"ratio{c['warmup_ratio']}-steps{c['warmup_steps']}-total{c['total']}")
def test_trainer_warmup_matches_442(case, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, warmup_ratio=case["warmup_ratio"],
                             warmup_steps=case["warmup_steps"], report_to="none", disable_tqdm=True)
    trainer = Trainer(model=nn.Linear(2, 2), args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=case["total"])
    ours = lr_trace(trainer.lr_scheduler, len(case["lrs"]) - 1)
    assert_close(ours, case["lrs"])
    # the ratio is rounded up: the first post-warmup step is the peak
    warmup = case["warmup_steps"] or math.ceil(case["warmup_ratio"] * case["total"])
    assert ours[warmup] == pytest.approx(1e-3)


@pytest.mark.parametrize("case", ADAMW, ids=lambda c: f"wd{c['weight_decay']}-bias{c['correct_bias']}")
def test_adamw_trajectory_matches_442(case):
    p = nn.Parameter(torch.tensor(case["p0"], dtype=torch.float64))
    opt = AdamW([p], lr=case["lr"], betas=tuple(case["betas"]), eps=case["eps"], weight_decay=case["weight_decay"],
                correct_bias=case["correct_bias"])
    for grad, expected in zip(case["grads"], case["trajectory"]):
        p.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        expected = torch.tensor(expected, dtype=torch.float64)
        assert ((p.detach() - expected).abs() <= REL * expected.abs()).all()


def test_adamw_first_step_formula():
    """Step 1 with bias correction moves each coordinate by lr * g/|g| (m_hat/sqrt(v_hat) = sign(g)) up to eps, then
    decays the moved value by lr*wd."""
    p = nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    opt = AdamW([p], lr=0.1, eps=0.0, weight_decay=0.5)
    p.grad = torch.tensor([0.3, -4.0, 0.0001], dtype=torch.float64)
    opt.step()
    moved = torch.tensor([1.0 - 0.1, -2.0 + 0.1, 3.0 - 0.1], dtype=torch.float64)
    assert torch.allclose(p.detach(), moved * (1 - 0.1 * 0.5), atol=1e-12)


def test_adamw_state_dict_roundtrip():
    """Saving and loading the optimizer state continues the exact trajectory (what checkpoint resume relies on)."""
    torch.manual_seed(0)
    grads = [torch.randn(5) for _ in range(4)]
    p1 = nn.Parameter(torch.ones(5))
    o1 = AdamW([p1], lr=0.01, weight_decay=0.1)
    p2 = nn.Parameter(torch.ones(5))
    o2 = AdamW([p2], lr=0.01, weight_decay=0.1)
    for i, g in enumerate(grads):
        p1.grad = g.clone()
        o1.step()
        if i == 1:
            with torch.no_grad():
                p2.copy_(p1)
            o2.load_state_dict(copy.deepcopy(o1.state_dict()))  # as if read back from optimizer.pt
        elif i > 1:
            p2.grad = g.clone()
            o2.step()
    assert torch.equal(p1, p2)


def test_get_scheduler_bad_input():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="not a valid SchedulerType.*linear"):
        get_scheduler("linar", opt, 0, 10)
    with pytest.raises(ValueError, match="num_training_steps"):
        get_scheduler(SchedulerType.LINEAR, opt, num_warmup_steps=2)
    with pytest.raises(ValueError, match="num_warmup_steps"):
        get_scheduler("constant_with_warmup", opt)
    assert get_scheduler("constant", opt).get_last_lr() == [1.0]
    with pytest.raises(ValueError, match="lr_end"):
        get_scheduler("polynomial", torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-8), 0, 10)
    with pytest.raises(ValueError, match="betas"):
        AdamW([nn.Parameter(torch.zeros(1))], betas=(0.9, 1.0))
