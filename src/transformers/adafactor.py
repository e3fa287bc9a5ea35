"""Adafactor (Shazeer & Stern, 2018, arXiv:1804.04235): Adam-like steps whose second moment is kept factored for
matrices (one running mean per row and one per column instead of one per weight), with update clipping and an
optional step size relative to the parameter scale. 4.4.2 exposed it as transformers.optimization.Adafactor.
"""
import math

import torch
from torch.optim import Optimizer


def _rms(tensor):
    return tensor.norm(2) / math.sqrt(tensor.numel())


class Adafactor(Optimizer):
    """lr: a fixed step size, or None with relative_step=True (then min(1e-2, 1/sqrt(step)), or 1e-6 * step with
    warmup_init, times the parameter's RMS when scale_parameter). eps: (added to squared gradients, floor of the
    parameter scale). decay_rate: the second-moment decay is 1 - step ** decay_rate. beta1: first-moment decay
    (None: no first moment). Updates are scaled down to RMS <= clip_threshold."""

    def __init__(self, params, lr=None, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta1=None,
                 weight_decay=0.0, scale_parameter=True, relative_step=True, warmup_init=False):
        if lr is not None and relative_step:
            raise ValueError("Adafactor: pass lr=None with relative_step=True, or relative_step=False with an lr")
        if warmup_init and not relative_step:
            raise ValueError("Adafactor: warmup_init=True needs relative_step=True")
        defaults = dict(lr=lr, eps=eps, clip_threshold=clip_threshold, decay_rate=decay_rate, beta1=beta1,
                        weight_decay=weight_decay, scale_parameter=scale_parameter, relative_step=relative_step,
                        warmup_init=warmup_init)
        super().__init__(params, defaults)

    @staticmethod
    def _step_size(group, state, param):
        if group["relative_step"]:
            ceiling = 1e-6 * state["step"] if group["warmup_init"] else 1e-2
            size = min(ceiling, 1.0 / math.sqrt(state["step"]))
        else:
            size = group["lr"]
        if group["scale_parameter"]:
            size *= max(group["eps"][1], state["RMS"])
        return size

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                if grad.is_sparse:
                    raise RuntimeError("Adafactor needs dense gradients: use a dense embedding (sparse=False) or another optimizer")
                state = self.state[p]
                factored = grad.dim() >= 2
                if not state:
                    state["step"] = 0
                    if group["beta1"] is not None:
                        state["exp_avg"] = torch.zeros_like(grad)
                    if factored:
                        state["exp_avg_sq_row"] = grad.new_zeros(grad.shape[:-1])
                        state["exp_avg_sq_col"] = grad.new_zeros(grad.shape[:-2] + grad.shape[-1:])
                    else:
                        state["exp_avg_sq"] = torch.zeros_like(grad)
                    state["RMS"] = 0
                state["step"] += 1
                weights = p.float()
                state["RMS"] = _rms(weights).item()
                lr = self._step_size(group, state, p)
                decay = 1.0 - math.pow(state["step"], group["decay_rate"])
                squared = grad * grad + group["eps"][0]
                if factored:
                    row, col = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
                    row.mul_(decay).add_(squared.mean(dim=-1), alpha=1.0 - decay)
                    col.mul_(decay).add_(squared.mean(dim=-2), alpha=1.0 - decay)
                    row_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt().unsqueeze(-1)
                    update = row_factor * col.rsqrt().unsqueeze(-2) * grad
                else:
                    second = state["exp_avg_sq"]
                    second.mul_(decay).add_(squared, alpha=1.0 - decay)
                    update = second.rsqrt() * grad
                update.div_(max(1.0, (_rms(update) / group["clip_threshold"]).item())).mul_(lr)
                if group["beta1"] is not None:
                    first = state["exp_avg"]
                    first.mul_(group["beta1"]).add_(update, alpha=1.0 - group["beta1"])
                    update = first
                if group["weight_decay"] != 0:
                    weights.add_(weights, alpha=-group["weight_decay"] * lr)
                weights.add_(-update)
                if p.dtype != torch.float32:
                    p.copy_(weights)
        return loss
