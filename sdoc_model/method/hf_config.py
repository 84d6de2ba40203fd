"""The `config.json` that makes an adapter folder load in stock transformers and `lm_eval`.

`SparseDoctorModel.save_pretrained` writes it beside the adapter files: `model_type:
"sparsedoctor"`, the base model to load under the adapter, and an `auto_map` to two shim files
it also writes, which import the loader classes from `sdoc_model` (see hf_model.py). Then

    AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    lm_eval --model hf --model_args pretrained=<folder>,trust_remote_code=True ...

work wherever `sdoc_model` is installed.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedConfig

from .config import SparseDoctorConfig

MODEL_TYPE = "sparsedoctor"
# Shim file -> (the auto class it serves, the class it imports from sdoc_model).
SHIMS = {
    "configuration_sparsedoctor.py": ("AutoConfig", "SparseDoctorHFConfig"),
    "modeling_sparsedoctor.py": ("AutoModelForCausalLM", "SparseDoctorForCausalLM"),
}


class SparseDoctorHFConfig(PreTrainedConfig):
    """The config.json of an adapter folder: which base model to load under the adapter."""

    model_type = MODEL_TYPE

    def __init__(self, base_model_name_or_path: str | None = None, **kwargs):
        self.base_model_name_or_path = base_model_name_or_path
        super().__init__(**kwargs)


def write_loader_files(directory: str | Path, config: SparseDoctorConfig) -> None:
    """config.json with the auto_map, and the shim files it points to."""
    directory = Path(directory)
    hf_config = SparseDoctorHFConfig(
        base_model_name_or_path=config.base_model_name_or_path,
        auto_map={auto: f"{Path(file).stem}.{name}" for file, (auto, name) in SHIMS.items()},
        architectures=[SHIMS["modeling_sparsedoctor.py"][1]],
    )
    # to_json_file, not save_pretrained: the latter may copy this module in as custom code.
    hf_config.to_json_file(directory / "config.json")
    for file, (_, name) in SHIMS.items():
        (directory / file).write_text(
            '"""Loads a SparseDoctor adapter folder through transformers\' auto classes."""\n\n'
            f"from sdoc_model import {name}  # noqa: F401\n"
        )
