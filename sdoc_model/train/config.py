"""Training settings, and every check that can fail before a model is loaded."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import TRAINED_VARIANTS
from sdoc_model.profile import read_config
from sdoc_model.utils.strict import dataclass_from_dict

# Config name -> the transformers scheduler it runs.
SCHEDULERS = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}
PRECISIONS = ("auto", "fp32", "bf16")
ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")  # transformers' attn_implementation values


@dataclass
class TrainingConfig:
    """How to train one adapter; the YAML `training:` mapping.

    `batch_size` is global: the examples of one micro-step summed over all processes. An
    optimizer step sees `batch_size * grad_accum` examples. `epochs`, when set, replaces
    `max_steps` by the number of optimizer steps that covers the data that many times.

    Speed and memory switches. `gradient_checkpointing` recomputes each decoder layer's
    activations in the backward pass instead of keeping them (less memory, about a third more
    compute); `attn_implementation` is the base model's attention kernel (`sdpa`: PyTorch's
    fused scaled_dot_product_attention, `eager`: transformers' matmul-softmax). Neither changes
    the losses beyond float noise. `group_by_length` fills each micro-batch with examples of
    similar length, so that less of it is padding: it changes which examples share a step, not
    the loss of a given batch, and the order stays a function of the seed and the epoch
    (sdoc_model.train.data).
    """

    max_steps: int = 100
    epochs: float | None = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    warmup_steps: int = 0
    max_length: int = 512
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on the CPU
    save_every: int = 50
    keep_last: int = 2
    include_explanation: bool = False
    gradient_checkpointing: bool = False
    attn_implementation: str = "sdpa"
    group_by_length: bool = False
    num_processes: int = 1
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        return dataclass_from_dict(cls, values, "training").validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> TrainingConfig:
        """Raise ValueError naming the first bad key; return self for chaining."""
        positive = (
            "max_steps",
            "batch_size",
            "grad_accum",
            "save_every",
            "keep_last",
            "num_processes",
        )
        for key in positive:
            self._require(key, lambda v: _is_int(v) and v > 0, "a positive integer")
        # Room for a prompt and its answer: long prompts keep their last max_length // 2 tokens.
        self._require("max_length", lambda v: _is_int(v) and v >= 16, "an integer >= 16")
        for key in ("warmup_steps", "seed"):
            self._require(key, lambda v: _is_int(v) and v >= 0, "a non-negative integer")
        self._require("lr", lambda v: _is_number(v) and v > 0, "a positive number")
        self._require("weight_decay", lambda v: _is_number(v) and v >= 0, "a number >= 0")
        self._require(
            "epochs", lambda v: v is None or _is_number(v) and v > 0, "a positive number or null"
        )
        self._require("scheduler", lambda v: v in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}")
        self._require("precision", lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}")
        for key in ("include_explanation", "gradient_checkpointing", "group_by_length"):
            self._require(key, lambda v: isinstance(v, bool), "true or false")
        self._require(
            "attn_implementation",
            lambda v: v in ATTENTION_IMPLEMENTATIONS,
            f"one of {', '.join(ATTENTION_IMPLEMENTATIONS)}",
        )
        if self.batch_size % self.num_processes:
            raise ValueError(
                f"training.batch_size ({self.batch_size}) must be a multiple of "
                f"training.num_processes ({self.num_processes}): it is the global micro-batch"
            )
        return self

    def _require(self, key: str, ok, expected: str) -> None:
        value = getattr(self, key)
        if not ok(value):
            raise ValueError(f"training.{key} must be {expected}, got {value!r}")

    def total_steps(self, num_examples: int) -> int:
        if self.epochs is None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * num_examples / (self.batch_size * self.grad_accum)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_run_config(path: str | Path, overrides: list[str] = ()) -> tuple[dict, dict]:
    """The `adapter:` and `training:` mappings of a YAML config, with `--set key=value` applied.

    A profile's first seed (`seeds:`) is the training seed unless `training.seed` is given.
    Override keys are `adapter.KEY` or `training.KEY` (a bare KEY means training.KEY); values
    are parsed as YAML.
    """
    config = read_config(path)
    adapter = dict(config.get("adapter") or {})
    training = dict(config.get("training") or {})
    if config.get("seeds"):
        training.setdefault("seed", config["seeds"][0])
    sections = {"adapter": adapter, "training": training}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        section, _, name = key.rpartition(".")
        if section not in ("", *sections):
            raise ValueError(f"--set {item!r}: key must be adapter.NAME or training.NAME")
        sections[section or "training"][name] = _parse_value(value)
    return adapter, training


def _parse_value(text: str) -> Any:
    """A YAML value, with `1e-4` read as a number (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class RunPaths:
    """Where a training run reads and writes."""

    base_model: Path
    train_file: Path
    model_dir: Path
    log_dir: Path
    checkpoint_dir: Path


def validate_run(
    variant: str, train_file: Path, adapter: dict, training: dict
) -> tuple[SparseDoctorConfig, TrainingConfig]:
    """Check the settings and the data file; return the parsed configs. (The base model is
    checked by each training process: check_target_modules.)"""
    if variant not in TRAINED_VARIANTS:
        raise ValueError(
            f"variant: {variant!r} is not a trained variant; "
            f"expected one of {', '.join(TRAINED_VARIANTS)}"
        )
    try:
        adapter_config = SparseDoctorConfig.from_dict(adapter)
    except (TypeError, ValueError) as err:
        raise ValueError(f"adapter: {err}") from err
    training_config = TrainingConfig.from_dict(training)
    if not Path(train_file).is_file():
        raise FileNotFoundError(f"train file {train_file} does not exist")
    return adapter_config, training_config


def check_target_modules(base_model_dir: Path, target_modules: list[str]) -> None:
    """Every target must name linear layers of the base model: checked on the meta device, so
    no weight is read."""
    # Imported here: the workflow validates configs with this module at start-up, in 0.1 s.
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModelForCausalLM

    from sdoc_model.base_models.prepare import check_model_folder

    model_config = AutoConfig.from_pretrained(check_model_folder(base_model_dir))
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(model_config)
    linear_names = {
        name.rsplit(".", 1)[-1]
        for name, module in skeleton.named_modules()
        if isinstance(module, nn.Linear)
    }
    unknown = [name for name in target_modules if name not in linear_names]
    if unknown:
        raise ValueError(
            f"adapter.target_modules: {', '.join(unknown)} not found among the linear layers of "
            f"{base_model_dir} ({', '.join(sorted(linear_names))})"
        )
