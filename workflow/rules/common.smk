# Config validation and the names every rule shares.
import re

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.profile import model_specs


validate(config, "../schemas/config.schema.yaml")
# The schema checks types and ranges; the method's own rules (k <= E, ...) are checked here,
# before any job runs, with the key named.
try:
    SparseDoctorConfig.from_dict(config["adapter"])
except ValueError as err:
    raise WorkflowError(f"config key adapter: {err}") from None

PROFILE = config["profile"]
RESULTS = f"results/{PROFILE}"
RESOURCES = f"resources/{PROFILE}"
BASE_MODEL = f"{RESOURCES}/base_model"
EVAL_DATA = f"{RESOURCES}/data/eval"
MODELS = model_specs(config)
TRAINED = [name for name, spec in MODELS.items() if spec.trained]
TASKS = config["evaluation"]["tasks"]


def rule_resources(rule_name):
    """Cluster resources of a rule from the config (GPUs, memory, runtime), none by default."""
    return config.get("resources", {}).get(rule_name, {})
EVAL_FILES = [f"{EVAL_DATA}/{name}.jsonl" for name in config["data"]["eval"]]
TRAIN_MIXTURE = f"{RESOURCES}/data/train.jsonl"
