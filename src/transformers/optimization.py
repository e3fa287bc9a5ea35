"""AdamW with decoupled weight decay (Loshchilov & Hutter) and the learning-rate schedules used by Trainer.

Every schedule is a `LambdaLR` whose multiplier of the base learning rate is a function of the number of
`scheduler.step()` calls made so far (`step`, starting at 0).
"""
import math
from typing import Callable, Iterable, Optional, Tuple, Union

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .trainer_utils import SchedulerType


class AdamW(Optimizer):
    """Adam with decoupled weight decay, numerically as in transformers 4.4.2.

    Per parameter, at step t (1-based):
        m = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g^2
        p -= step_size * m / (sqrt(v) + eps),   step_size = lr*sqrt(1-b2^t)/(1-b1^t)  (lr if not correct_bias)
        p -= lr * weight_decay * p              (on the already-updated p)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ):
        if lr < 0.0 or eps < 0.0:
            raise ValueError(f"AdamW needs lr >= 0 and eps >= 0, got lr={lr}, eps={eps}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamW betas must each lie in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("AdamW got a sparse gradient (sparse embeddings?): use torch.optim.SparseAdam")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]

                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(eps)

                step_size = lr
                if group["correct_bias"]:
                    step_size = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
                p.addcdiv_(exp_avg, denom, value=-step_size)

                # decoupled weight decay, applied after the Adam update and never through the moments
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-lr * group["weight_decay"])
        return loss


def _warmup(step: int, num_warmup_steps: int) -> float:
    return step / max(1, num_warmup_steps)


def get_constant_schedule(optimizer: Optimizer, last_epoch: int = -1) -> LambdaLR:
    """Multiplier 1 at every step."""
    return LambdaLR(optimizer, lambda step: 1.0, last_epoch=last_epoch)


def get_constant_schedule_with_warmup(optimizer: Optimizer, num_warmup_steps: int, last_epoch: int = -1) -> LambdaLR:
    """Linear ramp 0 -> 1 over `num_warmup_steps`, then 1."""

    def lr_lambda(step):
        return _warmup(step, num_warmup_steps) if step < num_warmup_steps else 1.0

    return LambdaLR(optimizer, lr_lambda, last_epoch=last_epoch)


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1) -> LambdaLR:
    """Linear ramp 0 -> 1 over `num_warmup_steps`, then linear decay to 0 at `num_training_steps` (and 0 after)."""

    def lr_lambda(step):
        if step < num_warmup_steps:
            return _warmup(step, num_warmup_steps)
        return max(0.0, (num_training_steps - step) / max(1, num_training_steps - num_warmup_steps))

    return LambdaLR(optimizer, lr_lambda, last_epoch=last_epoch)


def get_cosine_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5, last_epoch: int = -1
) -> LambdaLR:
    """Linear warmup, then cosine from 1 down, completing `num_cycles` periods (0.5 = half cosine to 0)."""

    def lr_lambda(step):
        if step < num_warmup_steps:
            return _warmup(step, num_warmup_steps)
        progress = (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(2.0 * math.pi * num_cycles * progress)))

    return LambdaLR(optimizer, lr_lambda, last_epoch=last_epoch)


def get_cosine_with_hard_restarts_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, num_cycles: int = 1, last_epoch: int = -1
) -> LambdaLR:
    """Linear warmup, then `num_cycles` half-cosine decays 1 -> 0, each restarting at 1; 0 after training."""

    def lr_lambda(step):
        if step < num_warmup_steps:
            return _warmup(step, num_warmup_steps)
        progress = (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((num_cycles * progress) % 1.0))))

    return LambdaLR(optimizer, lr_lambda, last_epoch=last_epoch)


def get_polynomial_decay_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float = 1e-7,
    power: float = 1.0,
    last_epoch: int = -1,
) -> LambdaLR:
    """Linear warmup, then polynomial decay (of degree `power`) from the optimizer's lr down to `lr_end`."""
    lr_init = optimizer.defaults["lr"]
    if not lr_init > lr_end:
        raise ValueError(f"polynomial decay needs lr_end below the optimizer's lr: got lr_end={lr_end}, lr={lr_init}")

    def lr_lambda(step):
        if step < num_warmup_steps:
            return _warmup(step, num_warmup_steps)
        if step > num_training_steps:
            return lr_end / lr_init
        remaining = 1.0 - (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        return ((lr_init - lr_end) * remaining**power + lr_end) / lr_init

    return LambdaLR(optimizer, lr_lambda, last_epoch=last_epoch)


# Each schedule with the step counts it takes besides the optimizer.
_SCHEDULES = {
    SchedulerType.LINEAR: (get_linear_schedule_with_warmup, ("num_warmup_steps", "num_training_steps")),
    SchedulerType.COSINE: (get_cosine_schedule_with_warmup, ("num_warmup_steps", "num_training_steps")),
    SchedulerType.COSINE_WITH_RESTARTS: (get_cosine_with_hard_restarts_schedule_with_warmup,
                                         ("num_warmup_steps", "num_training_steps")),
    SchedulerType.POLYNOMIAL: (get_polynomial_decay_schedule_with_warmup, ("num_warmup_steps", "num_training_steps")),
    SchedulerType.CONSTANT: (get_constant_schedule, ()),
    SchedulerType.CONSTANT_WITH_WARMUP: (get_constant_schedule_with_warmup, ("num_warmup_steps",)),
}
TYPE_TO_SCHEDULER_FUNCTION = {kind: schedule for kind, (schedule, _) in _SCHEDULES.items()}  # 4.4.2's public name


def get_scheduler(
    name: Union[str, SchedulerType],
    optimizer: Optimizer,
    num_warmup_steps: Optional[int] = None,
    num_training_steps: Optional[int] = None,
) -> LambdaLR:
    """The schedule called `name` (a `SchedulerType` value); step counts it does not use are ignored."""
    schedule, takes = _SCHEDULES[SchedulerType(name)]
    given = {"num_warmup_steps": num_warmup_steps, "num_training_steps": num_training_steps}
    missing = [arg for arg in takes if given[arg] is None]
    if missing:
        raise ValueError(f"the {SchedulerType(name).value} schedule needs {' and '.join(missing)}: "
                         "pass it to get_scheduler")
    return schedule(optimizer, **{arg: given[arg] for arg in takes})


from .adafactor import Adafactor  # noqa: E402,F401  (4.4.2 defined it in this module)
