"""Benchmark section 1: one adapted up_proj layer, forward + backward, against peft LoRA and the
naive per-expert loops; and the stacked against the grouped dispatch over E, r and k."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from peft import inject_adapter_in_model
from torch import nn

from sdoc_model.base_models.shapes import LLAMA2_7B, MODEL_SHAPES, SMOLLM2_135M, TINY
from sdoc_model.benchmark.measure import MiB, best_times, peak_allocated_bytes, print_table
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.layer import LoRAMoELinear
from sdoc_model.method.reference import DispatchExpertLoop, MaskedExpertLoop
from sdoc_model.method.variants import lora_config

# Tokens per timed forward + backward, by model shape.
LAYER_TOKENS = {TINY: 64, SMOLLM2_135M: 2048, LLAMA2_7B: 512}


def up_proj_size(shape: str) -> tuple[int, int]:
    return MODEL_SHAPES[shape]["hidden_size"], MODEL_SHAPES[shape]["intermediate_size"]


class _Holder(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, x):
        return self.linear(x)


def peft_lora_layer(base: nn.Linear, config: SparseDoctorConfig) -> nn.Module:
    """peft's own LoRA Linear around `base`: the `lora` variant's settings
    (rank k*r, same scaling)."""
    lora = lora_config(dataclasses.replace(config, target_modules=["linear"]))
    return inject_adapter_in_model(lora, _Holder(base))


def layer_cases(d_in: int, d_out: int, config: SparseDoctorConfig) -> dict[str, nn.Module]:
    base = nn.Linear(d_in, d_out, bias=False).requires_grad_(False)

    def moe(top_k: int) -> LoRAMoELinear:
        layer = LoRAMoELinear(base, dataclasses.replace(config, top_k=top_k))
        nn.init.normal_(layer.lora_B, std=0.02)  # trained-looking weights: same cost, real values
        return layer

    sparse, dense = moe(config.top_k), moe(config.num_experts)
    k, e, r = config.top_k, config.num_experts, config.rank
    form = "grouped" if sparse.grouped_dispatch else "stacked"
    return {
        "base (frozen)": base,
        f"peft LoRA r={k * r}": peft_lora_layer(copy.deepcopy(base), config),
        f"LoRAMoE E={e} r={r} k={k} ({form})": sparse,
        f"LoRAMoE E={e} r={r} dense (stacked)": dense,
        "masked loop (MOELoRA/LoRAMoE)": MaskedExpertLoop(sparse),
        "dispatch loop (MixLoRA/Mixtral)": DispatchExpertLoop(sparse),
    }


def forward_backward(module: nn.Module, x: torch.Tensor, grad_out: torch.Tensor) -> Callable:
    def run():
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x).backward(grad_out)

    return run


def bench_layer(shape: str, tokens: int, config: SparseDoctorConfig, repeats: int, memory: bool):
    d_in, d_out = up_proj_size(shape)
    torch.manual_seed(0)
    cases = layer_cases(d_in, d_out, config)
    x = torch.randn(tokens, d_in, requires_grad=True)
    grad_out = torch.randn(tokens, d_out)
    runs = {name: forward_backward(module.train(), x, grad_out) for name, module in cases.items()}
    times = best_times(runs, repeats)
    peaks = {name: peak_allocated_bytes(run) for name, run in runs.items()} if memory else {}
    base, peft, sparse, _, masked, dispatch = cases
    added = {name: t - times[base] for name, t in times.items()}
    rows = [
        [
            name,
            f"{1e3 * t:.1f}",
            f"{1e3 * added[name]:.1f}",
            f"{t / times[peft]:.2f}x",
            f"{added[name] / added[peft]:.2f}x" if name != base else "-",
            f"{peaks[name] / MiB:.1f}" if memory else "-",
        ]
        for name, t in times.items()
    ]
    print_table(
        f"layer forward+backward, {shape} up_proj {d_in}->{d_out}, {tokens} tokens, "
        f"dropout {config.dropout}",
        rows,
        ["implementation", "ms", "added ms", "time/peft", "added/peft", "peak MiB"],
    )
    print(
        f"added time vs LoRAMoE top-k: masked loop {added[masked] / added[sparse]:.2f}x "
        f"(target >= 4), dispatch loop {added[dispatch] / added[sparse]:.2f}x (target >= 2); "
        f"LoRAMoE top-k/base {times[sparse] / times[base]:.2f}x"
    )


def bench_dispatch(shape: str, tokens: int, config: SparseDoctorConfig, repeats: int) -> None:
    """Added time of the stacked and the grouped (sorted dispatch) forms over a grid of E, r, k:
    where the `auto` dispatch rule comes from."""
    d_in, d_out = up_proj_size(shape)
    torch.manual_seed(0)
    base = nn.Linear(d_in, d_out, bias=False).requires_grad_(False)
    x = torch.randn(tokens, d_in, requires_grad=True)
    grad_out = torch.randn(tokens, d_out)
    rows = []
    grid = [(e, r, k) for e in (4, 8, 16) for r in (8, 16) for k in (1, 2, 4) if k < e]
    for num_experts, rank, top_k in grid:
        point = dataclasses.replace(config, num_experts=num_experts, rank=rank, top_k=top_k)
        layers = {
            dispatch: LoRAMoELinear(base, dataclasses.replace(point, dispatch=dispatch))
            for dispatch in ("stacked", "grouped")
        }
        runs = {"base layer": forward_backward(base, x, grad_out)}
        runs |= {name: forward_backward(layer, x, grad_out) for name, layer in layers.items()}
        times = best_times(runs, repeats)
        stacked, grouped = (times[name] - times["base layer"] for name in layers)
        auto = LoRAMoELinear(base, dataclasses.replace(point, dispatch="auto")).grouped_dispatch
        rows.append(
            [
                f"E={num_experts} r={rank} k={top_k}",
                f"{num_experts * rank}",
                f"{1e3 * stacked:.1f}",
                f"{1e3 * grouped:.1f}",
                "grouped" if grouped < stacked else "stacked",
                "grouped" if auto else "stacked",
            ]
        )
    print_table(
        f"dispatch sweep: added ms over the base layer, {shape} {d_in}->{d_out}, {tokens} tokens",
        rows,
        ["experts", "E*r", "stacked", "grouped", "faster", "auto picks"],
    )
