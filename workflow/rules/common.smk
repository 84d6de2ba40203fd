# Config validation, the names every rule shares, and the rules' input functions.
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from sdoc_model.data.sources import dataset
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import variant_config
from sdoc_model.profile import adapter_config, model_specs
from sdoc_model.train.config import TrainingConfig


def check_settings(models):
    """The schema checks types and ranges; the method's and the trainer's own rules (k <= E,
    batch divisible by processes, ...) are checked here for every model the workflow trains,
    sweep points included, before any job runs, naming the key and the sweep point. Returns
    the training settings, defaults filled in."""
    try:
        training = TrainingConfig.from_dict({**config["training"], "seed": config["seed"]})
        SparseDoctorConfig.from_dict(config["adapter"])
    except ValueError as err:
        key = "" if str(err).startswith("training.") else "adapter."
        raise WorkflowError(f"config key {key}{err}") from None
    for name, spec in models.items():
        if not spec.trained:
            continue
        try:
            variant_config(spec.variant, SparseDoctorConfig.from_dict(adapter_config(config, spec)))
        except (TypeError, ValueError) as err:
            points = [f"sweeps.{knob} point {value!r}" for knob, value in spec.adapter_overrides.items()]
            raise WorkflowError(
                f"config key {', '.join(points) or 'adapter'} (model {name}): {err}"
            ) from None
    return training


validate(config, "../schemas/config.schema.yaml")
PROFILE = config["profile"]
RESULTS = f"results/{PROFILE}"
RESOURCES = f"resources/{PROFILE}"
BASE_MODEL = f"{RESOURCES}/base_model"
EVAL_DATA = f"{RESOURCES}/data/eval"
EVAL_FILES = [f"{EVAL_DATA}/{name}.jsonl" for name in config["data"]["eval"]]
TRAIN_MIXTURE = f"{RESOURCES}/data/train.jsonl"
MODELS = model_specs(config)
TRAINING = check_settings(MODELS)
TRAINED = [name for name, spec in MODELS.items() if spec.trained]
TASKS = config["evaluation"]["tasks"]
# Every rule runs in the project's own environment; `--software-deployment-method conda`
# builds it from this file where the workflow runs without a prepared .venv.
ENV = "../envs/sdoc.yaml"


def rule_resources(rule_name):
    """Cluster resources of a rule from the config (GPUs, memory, runtime), none by default."""
    return config.get("resources", {}).get(rule_name, {})


def raw_files(name):
    """The verified raw files a registered dataset is normalised from."""
    return [f"resources/raw/{source.path}" for source in dataset(name).sources]


def model_inputs(wildcards):
    """What evaluating a model reads: the data, and its base model and adapter when it has them."""
    spec = MODELS[wildcards.model]
    inputs = {"data": EVAL_FILES}
    if spec.kind != "external":
        inputs["base_model"] = BASE_MODEL
    if spec.trained:
        inputs["model"] = f"{RESULTS}/models/{wildcards.model}"
    return inputs
