"""Which models a profile builds and evaluates: one table, read by the workflow and the report.

A profile's config names the variants to train, the sweeps (each a list of values for one
SparseDoctor knob), the seeds each is trained with, and the external models to evaluate as they
are. This module turns that into named :class:`ModelSpec` entries, one per run, so the
Snakefile and the report agree on every name.

A trained model is trained once per seed (`seeds:`; sweep points with the first
`sweep_seeds` of them). Its first seed's run carries the model's own name (`lora`), the others
add the seed (`lora-seed1`); tables show the mean over a model's runs.
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
    """One run of a profile: the untrained base, a trained variant or sweep point with one
    seed, or an external model."""

    name: str  # the run: its jobs and result files
    kind: str  # "base", "trained" or "external"
    variant: str | None = None
    adapter_overrides: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None  # external models: the hub id
    revision: str | None = None  # a commit, or a ref the lock file pins (sdoc_model.hub_lock)
    trust_remote_code: bool = False  # external models: run their own modeling code
    chat_template: bool = False  # external models: prompts in their chat template
    local: bool = False  # external models: a tiny stand-in the workflow builds at model_id
    environment: str | None = None  # external models: their own env file in workflow/envs/
    seed: int | None = None  # trained runs: the training seed
    model: str = ""  # the model (table row) the run belongs to; "": the run's own name

    def __post_init__(self):
        if not self.model:
            object.__setattr__(self, "model", self.name)

    @property
    def trained(self) -> bool:
        return self.kind == "trained"

    @property
    def moe(self) -> bool:
        """A trained mixture-of-experts run: its routing is probed."""
        return self.trained and VARIANTS[self.variant].kind == "moe"


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


def run_name(model: str, seed: int, seeds: list[int]) -> str:
    """The run of `model` with `seed`: the model's own name for the profile's first seed."""
    return model if seed == seeds[0] else f"{model}-seed{seed}"


def model_specs(config: dict) -> dict[str, ModelSpec]:
    """Every run of the profile by name, in the order the tables list them: a model's runs
    together, first seed first."""
    seeds = config["seeds"]
    specs: dict[str, ModelSpec] = {}

    def add_runs(model: str, variant: str, overrides: dict[str, Any], run_seeds: list) -> None:
        for seed in run_seeds:
            name = run_name(model, seed, seeds)
            specs[name] = ModelSpec(name, "trained", variant, overrides, seed=seed, model=model)

    for variant in config["variants"]:
        if VARIANTS[variant].trained:
            add_runs(variant, variant, {}, seeds)
        else:
            specs[variant] = ModelSpec(variant, "base", variant)
    sweep_count = config.get("sweep_seeds", len(seeds))
    if sweep_count > len(seeds):
        raise ValueError(f"sweep_seeds: {sweep_count}, but seeds has {len(seeds)}")
    sweep_seeds = seeds[:sweep_count]
    for knob, value, name in sweep_points(config):
        if name not in specs:
            add_runs(name, FULL_METHOD, {knob: value}, sweep_seeds)
    for name, external in (config.get("external") or {}).items():
        local = external.get("kind", "hub") == "tiny"
        specs[name] = ModelSpec(
            name, "external",
            model_id=external_folder(config, name) if local else external["model_id"],
            revision=external.get("revision"),
            trust_remote_code=external.get("trust_remote_code", False),
            chat_template=external.get("chat_template", False),
            local=local,
            environment=external.get("environment"),
        )  # fmt: skip
    return specs


def external_folder(config: dict, name: str) -> str:
    """Where the workflow prepares an external model: a tiny stand-in's folder, or a link to a
    hub model's snapshot at its pinned commit."""
    return f"resources/{config['profile']}/external/{name}"


def model_runs(specs: dict[str, ModelSpec]) -> dict[str, list[str]]:
    """The runs of every model, in order: one per seed for trained models, else the model."""
    runs: dict[str, list[str]] = {}
    for name, spec in specs.items():
        runs.setdefault(spec.model, []).append(name)
    return runs


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
