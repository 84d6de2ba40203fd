"""Which models a profile builds and evaluates: one table, read by the workflow and the report.

A profile's config names the variants to train, the sweeps (each a list of values for one
SparseDoctor knob) and the external models to evaluate as they are. This module turns that
into named :class:`ModelSpec` entries, so the Snakefile and the report agree on every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import FULL_METHOD, VARIANTS

# Sweep knobs and the short label each gets in model names and plots.
SWEEP_LABELS = {
    "num_experts": "E",
    "top_k": "k",
    "cl_weight": "lambda_cl",
    "cl_temperature": "tau",
    "queue_size": "queue size",
    "cl_labels": "contrastive labels",
}


@dataclass(frozen=True)
class ModelSpec:
    """One model of a profile: the untrained base, a trained variant, or an external model."""

    name: str
    kind: str  # "base", "trained" or "external"
    variant: str | None = None
    adapter_overrides: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None  # external models: the hub id
    revision: str | None = None  # a commit, or a ref the lock file pins (sdoc_model.hub_lock)
    trust_remote_code: bool = False  # external models: run their own modeling code
    chat_template: bool = False  # external models: prompts in their chat template

    @property
    def trained(self) -> bool:
        return self.kind == "trained"


def read_config(path: str | Path) -> dict:
    """A YAML config file as a mapping (empty: {}); ValueError naming the file when it is not
    one."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(config).__name__}")
    return config


def sweep_model_name(knob: str, value: Any) -> str:
    return f"{FULL_METHOD}-{knob}-{value}"


def model_specs(config: dict) -> dict[str, ModelSpec]:
    """Every model of the profile by name, in the order the tables list them."""
    specs: dict[str, ModelSpec] = {}
    for variant in config["variants"]:
        kind = "trained" if VARIANTS[variant].trained else "base"
        specs[variant] = ModelSpec(variant, kind, variant)
    for knob, value, name in sweep_points(config):
        if name not in specs:
            specs[name] = ModelSpec(name, "trained", FULL_METHOD, {knob: value})
    for name, external in (config.get("external") or {}).items():
        specs[name] = ModelSpec(
            name, "external", model_id=external["model_id"], revision=external.get("revision"),
            trust_remote_code=external.get("trust_remote_code", False),
            chat_template=external.get("chat_template", False),
        )  # fmt: skip
    return specs


def sweep_points(config: dict) -> list[tuple[str, Any, str]]:
    """(knob, value, model name) for every sweep point; the default value is the main model."""
    points = []
    for knob, values in (config.get("sweeps") or {}).items():
        if knob not in SWEEP_LABELS:
            raise ValueError(f"sweeps.{knob}: unknown knob; expected one of {sorted(SWEEP_LABELS)}")
        default = adapter_setting(config, knob)
        for value in values:
            name = FULL_METHOD if value == default else sweep_model_name(knob, value)
            points.append((knob, value, name))
    return points


def adapter_setting(config: dict, knob: str) -> Any:
    """The profile's value of an adapter setting, the method's default when it sets none."""
    return config["adapter"].get(knob, getattr(SparseDoctorConfig(), knob))


def adapter_config(config: dict, spec: ModelSpec) -> dict[str, Any]:
    """The adapter settings a trained model uses: the profile's, then the sweep override."""
    return {**config["adapter"], **spec.adapter_overrides}
