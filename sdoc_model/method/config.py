"""SparseDoctor adapter configuration: every knob of the method (see the README's method
section)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdoc_model.utils.strict import dataclass_from_dict

DISPATCH_MODES = ("auto", "stacked", "grouped")
# What makes two expert representations positives of the contrastive loss (see the docstring).
CL_LABELS = ("expert", "discipline")
DEFAULT_CONTRASTIVE_LAYERS = 4  # the last four decoder layers, see SparseDoctorConfig
DEFAULT_TARGET_MODULES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)


@dataclass
class SparseDoctorConfig:
    """Hyper-parameters of a SparseDoctor (contrastive LoRA mixture-of-experts) adapter.

    `contrastive_layers` lists decoder-layer indices (negative ones count from the end) whose
    adapted modules get the contrastive loss and a memory queue. The default `None` means the
    last four decoder layers (all of them in shallower models): upper layers carry the most
    task- and domain-specific features, which is where expert specialisation pays, and a fixed
    count keeps the queues' memory (`queue_size * d_out * 4` bytes per adapted module) and the
    loss's cost (a few percent of a training step) independent of the model's depth.

    `cl_labels` chooses the contrastive positives: `expert`, representations of the same
    expert; `discipline`, representations of questions of the same medical discipline (the
    training rows' coarsest discipline label; rows without one take no part), so that routing
    is supervised by medical field.
    """

    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    num_experts: int = 8
    rank: int = 8
    top_k: int = 2
    alpha: float = 16.0
    dropout: float = 0.05
    router_jitter: float = 0.0  # multiplicative uniform noise on the router input while training
    dispatch: str = "auto"  # stacked | grouped | auto: see LoRAMoELinear.grouped_dispatch
    lb_weight: float = 0.01
    z_weight: float = 0.0
    cl_weight: float = 0.1
    cl_temperature: float = 0.07
    cl_labels: str = "expert"
    queue_size: int = 1024  # entries per contrastive module; 0 = in-batch contrast only
    contrastive_layers: list[int] | None = None
    base_model_name_or_path: str | None = None

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def dense(self) -> bool:
        return self.top_k == self.num_experts

    @property
    def discipline_labels(self) -> bool:
        """The contrastive loss is on and takes its labels from the questions' disciplines."""
        return self.cl_weight > 0 and self.cl_labels == "discipline"

    def validate(self) -> SparseDoctorConfig:
        """Raise ValueError naming the first bad key; return self for chaining."""
        if not self.target_modules or not all(
            isinstance(m, str) and m for m in self.target_modules
        ):
            raise ValueError(
                "target_modules must be a non-empty list of module names, "
                f"got {self.target_modules!r}"
            )
        for key in ("num_experts", "rank", "top_k"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k must be <= num_experts ({self.num_experts}), got {self.top_k}")
        if self.cl_labels not in CL_LABELS:
            raise ValueError(
                f"cl_labels must be one of {', '.join(CL_LABELS)}, got {self.cl_labels!r}"
            )
        if self.dispatch not in DISPATCH_MODES:
            raise ValueError(
                f"dispatch must be one of {', '.join(DISPATCH_MODES)}, got {self.dispatch!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for key in ("router_jitter", "lb_weight", "z_weight", "cl_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        for key in ("alpha", "cl_temperature"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)!r}")
        if not isinstance(self.queue_size, int) or self.queue_size < 0:
            raise ValueError(f"queue_size must be a non-negative integer, got {self.queue_size!r}")
        if self.contrastive_layers is not None and not all(
            isinstance(i, int) and not isinstance(i, bool) for i in self.contrastive_layers
        ):
            raise ValueError(
                "contrastive_layers must be a list of integers or null, "
                f"got {self.contrastive_layers!r}"
            )
        return self

    def contrastive_layer_indices(self, num_layers: int) -> set[int]:
        """Resolve `contrastive_layers` against a model with `num_layers` decoder layers."""
        if self.cl_weight == 0:
            return set()
        if self.contrastive_layers is None:
            return set(range(max(0, num_layers - DEFAULT_CONTRASTIVE_LAYERS), num_layers))
        resolved = set()
        for index in self.contrastive_layers:
            if not -num_layers <= index < num_layers:
                raise ValueError(
                    f"contrastive_layers: index {index} is out of range for a model with "
                    f"{num_layers} decoder layers"
                )
            resolved.add(index % num_layers)
        return resolved

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SparseDoctorConfig:
        return dataclass_from_dict(cls, values, "SparseDoctorConfig").validate()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SparseDoctorConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
