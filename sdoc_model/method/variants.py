"""The compared methods (the README's variant table), each built from one SparseDoctorConfig."""

from __future__ import annotations

import dataclasses

from peft import LoraConfig, get_peft_model
from torch import nn

from .config import SparseDoctorConfig
from .model import SparseDoctorModel

VARIANTS = ("base", "lora", "lora_moe_dense", "lora_moe", "sparsedoctor_noqueue", "sparsedoctor")

# How each mixture-of-experts variant departs from the full method.
_MOE_OVERRIDES = {
    "lora_moe_dense": lambda c: {"top_k": c.num_experts, "cl_weight": 0.0},
    "lora_moe": lambda c: {"cl_weight": 0.0},
    "sparsedoctor_noqueue": lambda c: {"queue_size": 0},
    "sparsedoctor": lambda c: {},
}


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def variant_config(variant: str, config: SparseDoctorConfig) -> SparseDoctorConfig:
    """The config a variant effectively trains with. `base` and `lora` return `config` unchanged:
    they read only target_modules, rank, top_k, alpha and dropout (see `lora_config`)."""
    _check_variant(variant)
    if variant not in _MOE_OVERRIDES:
        return config
    return dataclasses.replace(config, **_MOE_OVERRIDES[variant](config)).validate()


def lora_config(config: SparseDoctorConfig) -> LoraConfig:
    """PEFT LoRA with the same active adapter size per token as SparseDoctor (rank k*r).

    lora_alpha = alpha * k keeps PEFT's scaling lora_alpha / (k*r) equal to SparseDoctor's
    alpha / r, so both apply their low-rank updates at the same scale.
    """
    config.validate()
    return LoraConfig(
        r=config.top_k * config.rank,
        lora_alpha=config.alpha * config.top_k,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def build_model(variant: str, base_model: nn.Module, config: SparseDoctorConfig) -> nn.Module:
    """`base`: the base model itself, frozen; `lora`: a peft PeftModel (save it with its own
    save_pretrained); the others: a SparseDoctorModel with the variant's config."""
    _check_variant(variant)
    if variant == "base":
        return base_model.requires_grad_(False)
    if variant == "lora":
        return get_peft_model(base_model, lora_config(config))
    return SparseDoctorModel(base_model, variant_config(variant, config))
