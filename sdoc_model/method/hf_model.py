"""Loading an adapter folder through transformers' auto classes (see hf_config.py).

`from_pretrained` loads the base model named in the adapter config (`base_model_name_or_path`: a
local path, taken relative to the working directory, or a hub id), injects the layers, loads the
adapter weights and returns the base model's own class (e.g. LlamaForCausalLM) with
LoRAMoELinear modules in place, in eval mode.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transformers import AutoModelForCausalLM, PreTrainedModel

from .config import SparseDoctorConfig
from .hf_config import SparseDoctorHFConfig
from .model import ADAPTER_CONFIG_NAME, SparseDoctorModel

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


class SparseDoctorForCausalLM(PreTrainedModel):
    """A loader, never instantiated: `from_pretrained` returns the adapted base model."""

    config_class = SparseDoctorHFConfig

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        return load_adapted_model(pretrained_model_name_or_path, **kwargs)


def load_adapted_model(directory: str | Path, torch_dtype=None, **kwargs) -> PreTrainedModel:
    """The base model named in `directory`'s adapter config, with the adapter injected and
    loaded, in eval mode, ready for inference (no memory queues, no routing records)."""
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
