"""The config schema's names agree with the registries they describe: a variant, task, sweep
knob or setting added in one place and not the other fails here."""

import dataclasses
from pathlib import Path

import yaml

from sdoc_model.base_models.prepare import BASE_MODEL_KINDS
from sdoc_model.data.sources import DATASETS
from sdoc_model.eval.tasks import TASKS
from sdoc_model.method.config import CL_LABELS, DISPATCH_MODES, SparseDoctorConfig
from sdoc_model.method.variants import VARIANTS
from sdoc_model.profile import SWEEP_LABELS
from sdoc_model.train.config import (
    ATTENTION_IMPLEMENTATIONS,
    PRECISIONS,
    SCHEDULERS,
    TrainingConfig,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
PROPERTIES = SCHEMA["properties"]


def fields(cls) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def test_names_match_the_registries():
    assert PROPERTIES["variants"]["items"]["enum"] == list(VARIANTS)
    assert PROPERTIES["evaluation"]["properties"]["tasks"]["items"]["enum"] == list(TASKS)
    assert PROPERTIES["base_model"]["properties"]["kind"]["enum"] == list(BASE_MODEL_KINDS)
    assert set(PROPERTIES["sweeps"]["properties"]) == set(SWEEP_LABELS)
    train = PROPERTIES["data"]["properties"]["train"]["items"]["properties"]
    assert train["dataset"]["enum"] == list(DATASETS)


def test_settings_match_the_config_dataclasses():
    adapter = PROPERTIES["adapter"]["properties"]
    # The base model is the profile's own `base_model:` section, not an adapter setting.
    assert set(adapter) == fields(SparseDoctorConfig) - {"base_model_name_or_path"}
    assert adapter["dispatch"]["enum"] == list(DISPATCH_MODES)
    assert adapter["cl_labels"]["enum"] == list(CL_LABELS)
    training = PROPERTIES["training"]["properties"]
    assert set(training) == fields(TrainingConfig) - {"seed"}  # the profile's top-level seed
    assert training["scheduler"]["enum"] == list(SCHEDULERS)
    assert training["precision"]["enum"] == list(PRECISIONS)
    assert training["attn_implementation"]["enum"] == list(ATTENTION_IMPLEMENTATIONS)


def test_sweep_knobs_are_adapter_settings():
    assert set(SWEEP_LABELS) <= fields(SparseDoctorConfig)
