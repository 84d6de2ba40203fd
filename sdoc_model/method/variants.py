"""The compared methods (the README's variant table): every variant name is defined here.

Each variant is built from one SparseDoctorConfig. The mixture-of-experts variants, in order,
form the ablation ladder: each rung adds one ingredient, and the last is the full method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import SparseDoctorConfig

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Variant:
    """One compared method: `kind` is "base" (no training), "lora" (peft LoRA) or "moe"
    (SparseDoctorModel with the config changed by `overrides`)."""

    name: str
    description: str
    kind: str
    overrides: Callable[[SparseDoctorConfig], dict] = lambda config: {}

    @property
    def trained(self) -> bool:
        return self.kind != "base"


BASE, LORA, SPARSEDOCTOR = "base", "lora", "sparsedoctor"
LORA_MOE_DENSE, LORA_MOE, SPARSEDOCTOR_NOQUEUE = (
    "lora_moe_dense",
    "lora_moe",
    "sparsedoctor_noqueue",
)
VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(BASE, "base model, no training", "base"),
        Variant(LORA, "PEFT LoRA, rank k\u00b7r", "lora"),
        Variant(
            LORA_MOE_DENSE,
            "LoRA-MoE, soft routing over all experts",
            "moe",
            lambda c: {"top_k": c.num_experts, "cl_weight": 0.0},
        ),
        Variant(LORA_MOE, "LoRA-MoE, top-k routing", "moe", lambda c: {"cl_weight": 0.0}),
        Variant(
            SPARSEDOCTOR_NOQUEUE,
            "+ contrastive routing loss, in-batch",
            "moe",
            lambda c: {"queue_size": 0},
        ),
        Variant(SPARSEDOCTOR, "+ expert memory queue (full method)", "moe"),
    )
}
TRAINED_VARIANTS = tuple(name for name, variant in VARIANTS.items() if variant.trained)
ABLATION_LADDER = tuple(name for name, variant in VARIANTS.items() if variant.kind == "moe")
FULL_METHOD = SPARSEDOCTOR


def variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; expected one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def variant_config(name: str, config: SparseDoctorConfig) -> SparseDoctorConfig:
    """The config a variant effectively trains with. `base` and `lora` return `config` unchanged:
    they read only target_modules, rank, top_k, alpha and dropout (see `lora_config`)."""
    chosen = variant(name)
    if chosen.kind != "moe":
        return config
    return dataclasses.replace(config, **chosen.overrides(config)).validate()


def lora_config(config: SparseDoctorConfig):
    """PEFT LoRA with the same active adapter size per token as SparseDoctor (rank k*r).

    lora_alpha = alpha * k keeps PEFT's scaling lora_alpha / (k*r) equal to SparseDoctor's
    alpha / r, so both apply their low-rank updates at the same scale.
    """
    from peft import LoraConfig  # 4 s to import; light jobs read the registry above

    config.validate()
    return LoraConfig(
        r=config.top_k * config.rank,
        lora_alpha=config.alpha * config.top_k,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def build_model(name: str, base_model: nn.Module, config: SparseDoctorConfig) -> nn.Module:
    """`base`: the base model itself, frozen; `lora`: a peft PeftModel (save it with its own
    save_pretrained); the others: a SparseDoctorModel with the variant's config."""
    from peft import get_peft_model

    from .model import SparseDoctorModel  # the model stack, not needed to read the registry

    kind = variant(name).kind
    if kind == "base":
        return base_model.requires_grad_(False)
    if kind == "lora":
        return get_peft_model(base_model, lora_config(config))
    return SparseDoctorModel(base_model, variant_config(name, config))
