"""SparseDoctor: a contrastive-learning-enhanced LoRA mixture of experts for a frozen causal LM.

The public API is the method alone (`sdoc_model.method`), usable in any training code:

    from sdoc_model import SparseDoctorConfig, build_model

    model = build_model("sparsedoctor", base_model, SparseDoctorConfig(num_experts=8, top_k=2))
    loss = model(**batch).loss + model.aux_loss()  # + load balancing and contrastive losses
    model.save_pretrained("adapter/")  # loads in transformers and lm_eval (trust_remote_code)

The harness around it (data/, base_models/, train/, eval/, report/, benchmark/) is the
reproduction pipeline the Snakemake workflow runs. Names are imported on first use: the method
pulls in torch, transformers and peft (seconds), which the light data steps do not need.
"""

from importlib import import_module

# Public name -> the module that defines it.
_EXPORTS = {
    "SparseDoctorConfig": "sdoc_model.method.config",
    "LoRAMoELinear": "sdoc_model.method.layer",
    "RoutingContext": "sdoc_model.method.layer",
    "ExpertMemoryQueue": "sdoc_model.method.memory_queue",
    "load_balancing_loss": "sdoc_model.method.losses",
    "router_z_loss": "sdoc_model.method.losses",
    "supervised_contrastive_loss": "sdoc_model.method.losses",
    "SparseDoctorModel": "sdoc_model.method.model",
    "inject_adapters": "sdoc_model.method.model",
    "VARIANTS": "sdoc_model.method.variants",
    "build_model": "sdoc_model.method.variants",
    "lora_config": "sdoc_model.method.variants",
    "variant_config": "sdoc_model.method.variants",
    "SparseDoctorHFConfig": "sdoc_model.method.hf_config",
    "SparseDoctorForCausalLM": "sdoc_model.method.hf_model",
    "load_adapted_model": "sdoc_model.method.hf_model",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sdoc_model' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
