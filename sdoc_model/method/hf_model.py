"""Adapter folders that stock transformers, and so the `lm_eval` CLI, load as a causal LM.

`SparseDoctorModel.save_pretrained` writes, next to the adapter files, a `config.json` with
`model_type: "sparsedoctor"` and an `auto_map` to two small shim files copied into the folder.
Then

    AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    lm_eval --model hf --model_args pretrained=<folder>,trust_remote_code=True ...

load the base model named in the adapter config (`base_model_name_or_path`: a local path, taken
relative to the working directory, or a hub id), inject the layers, load the adapter weights and
return the base model's own class (e.g. LlamaForCausalLM) with LoRAMoELinear modules in place.
The shims import this module, so `sdoc_model` must be installed where the folder is loaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transformers import AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel

from .config import SparseDoctorConfig

MODEL_TYPE = "sparsedoctor"
SHIMS = {
    "configuration_sparsedoctor.py": "SparseDoctorHFConfig",
    "modeling_sparsedoctor.py": "SparseDoctorForCausalLM",
}
# from_pretrained keyword arguments passed on to the base model's loading; the others (revision,
# subfolder, trust_remote_code, low_cpu_mem_usage, ...) concern the adapter folder or nothing.
BASE_LOADING_KWARGS = (
    "dtype",
    "device_map",
    "max_memory",
    "attn_implementation",
    "cache_dir",
    "local_files_only",
    "token",
)


class SparseDoctorHFConfig(PreTrainedConfig):
    """The config.json of an adapter folder: which base model to load under the adapter."""

    model_type = MODEL_TYPE

    def __init__(self, base_model_name_or_path: str | None = None, **kwargs):
        self.base_model_name_or_path = base_model_name_or_path
        super().__init__(**kwargs)


class SparseDoctorForCausalLM(PreTrainedModel):
    """A loader, never instantiated: `from_pretrained` returns the adapted base model."""

    config_class = SparseDoctorHFConfig

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        return load_adapted_model(pretrained_model_name_or_path, **kwargs)


def load_adapted_model(directory: str | Path, torch_dtype=None, **kwargs) -> PreTrainedModel:
    """The base model named in `directory`'s adapter config, with the adapter injected and
    loaded, in eval mode, ready for inference (no memory queues, no routing records)."""
    from .model import ADAPTER_CONFIG_NAME, SparseDoctorModel  # model.py imports this module

    directory = Path(directory)
    adapter_config = SparseDoctorConfig.load(directory / ADAPTER_CONFIG_NAME)
    if adapter_config.base_model_name_or_path is None:
        raise ValueError(f"{directory / ADAPTER_CONFIG_NAME}: base_model_name_or_path is not set")
    if kwargs.get("dtype") is None and torch_dtype is not None:
        kwargs["dtype"] = torch_dtype  # the pre-5 name, which lm-eval may still pass
    base_kwargs = {key: kwargs[key] for key in BASE_LOADING_KWARGS if kwargs.get(key) is not None}
    base_model = AutoModelForCausalLM.from_pretrained(
        adapter_config.base_model_name_or_path, **base_kwargs
    )
    inference_config = dataclasses.replace(adapter_config, cl_weight=0.0, queue_size=0)
    model = SparseDoctorModel.from_pretrained(base_model, directory, config=inference_config)
    for layer in model.adapted_layers.values():
        layer.routing_context = None  # no wrapper to read routing records
    return model.base_model.eval()


def write_transformers_files(directory: str | Path, config: SparseDoctorConfig) -> None:
    """config.json with the auto_map, and the shim files it points to."""
    directory = Path(directory)
    auto_classes = ("AutoConfig", "AutoModelForCausalLM")
    auto_map = {
        auto: f"{Path(file).stem}.{name}"
        for auto, (file, name) in zip(auto_classes, SHIMS.items(), strict=True)
    }
    hf_config = SparseDoctorHFConfig(
        base_model_name_or_path=config.base_model_name_or_path,
        auto_map=auto_map,
        architectures=["SparseDoctorForCausalLM"],
    )
    # to_json_file, not save_pretrained: the latter may copy this module in as custom code.
    hf_config.to_json_file(directory / "config.json")
    for file, name in SHIMS.items():
        (directory / file).write_text(
            f'"""Loads a SparseDoctor adapter folder through transformers\' auto classes."""\n\n'
            f"from sdoc_model.method.hf_model import {name}  # noqa: F401\n"
        )
