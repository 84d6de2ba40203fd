"""Naive per-expert loops: the reference the stacked layer must equal, and what it replaces.

Both hold a LoRAMoELinear's weights as per-expert nn.Linear pairs, as loop-based implementations
keep them, and route with the layer's own router, so all compute the same function. The layer
tests compare against them (values and gradients) and the benchmark times them.
"""

from __future__ import annotations

import torch
from torch import nn

from sdoc_model.method.layer import LoRAMoELinear


class _ExpertLoop(nn.Module):
    """A LoRAMoELinear's weights held as per-expert nn.Linear pairs, as the loop-based
    implementations keep them; routing is the layer's own, so all compute the same function."""

    def __init__(self, layer: LoRAMoELinear):
        super().__init__()
        self.layer = layer
        num_experts, rank, d_in = layer.lora_A.shape
        d_out = layer.lora_B.shape[1]
        factory = {"bias": False, "dtype": layer.lora_A.dtype, "device": layer.lora_A.device}
        self.experts_A = nn.ModuleList(nn.Linear(d_in, rank, **factory) for _ in range(num_experts))
        self.experts_B = nn.ModuleList(
            nn.Linear(rank, d_out, **factory) for _ in range(num_experts)
        )
        with torch.no_grad():
            for e in range(num_experts):
                self.experts_A[e].weight.copy_(layer.lora_A[e])
                self.experts_B[e].weight.copy_(layer.lora_B[e])


class MaskedExpertLoop(_ExpertLoop):
    """MOELoRA / LoRAMoE: every expert runs on every token (dropout inside the loop, as they
    do); experts outside the top-k are masked by a zero gate."""

    def forward(self, x):
        result = self.layer.base_layer(x)
        _, _, gates, _ = self.layer.route(x)
        for e, (lora_A, lora_B) in enumerate(zip(self.experts_A, self.experts_B, strict=True)):
            expert_out = lora_B(lora_A(self.layer.lora_dropout(x)))
            result = result + gates[..., e : e + 1] * expert_out * self.layer.scaling
        return result


class DispatchExpertLoop(_ExpertLoop):
    """MixLoRA / HF Mixtral: each expert gathers the tokens routed to it (a host sync per
    expert), runs on them, and scatters its weighted output back with index_add_."""

    def forward(self, x):
        result = self.layer.base_layer(x)
        tokens = x.reshape(-1, x.shape[-1])
        _, _, gates, top_idx = self.layer.route(tokens)
        delta = tokens.new_zeros(tokens.shape[0], result.shape[-1])
        for e, (lora_A, lora_B) in enumerate(zip(self.experts_A, self.experts_B, strict=True)):
            token_idx, _ = torch.where(top_idx == e)
            expert_out = lora_B(lora_A(self.layer.lora_dropout(tokens[token_idx])))
            delta.index_add_(
                0, token_idx, expert_out * gates[token_idx, e].unsqueeze(-1) * self.layer.scaling
            )
        return result + delta.view(result.shape)
