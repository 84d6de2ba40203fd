# Config validation, the names every rule shares, and the rules' input functions.
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from sdoc_model.data.normalise import NORMALISED_FORMAT
from sdoc_model.data.sources import CMB_EXAM_TEST, CMB_TEST_ANSWER_KEY, dataset
from sdoc_model.eval.tasks import TASKS as REGISTERED_TASKS
from sdoc_model.hub_lock import check_architectures, profile_lock
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import VARIANTS, variant_config
from sdoc_model.profile import adapter_config, external_folder, model_specs
from sdoc_model.report.plan import ReportPlan
from sdoc_model.train.config import TrainingConfig


def check_settings(models, train_datasets):
    """The schema checks types and ranges; the method's and the trainer's own rules (k <= E,
    batch divisible by processes, discipline labels only from labelled training data, ...) are
    checked here for every model the workflow trains, sweep points included, before any job
    runs, naming the key and the sweep point. Returns the training settings, defaults filled
    in."""
    try:
        training = TrainingConfig.from_dict({**config["training"], "seed": SEED})
        SparseDoctorConfig.from_dict(config["adapter"])
    except ValueError as err:
        key = "" if str(err).startswith("training.") else "adapter."
        raise WorkflowError(f"config key {key}{err}") from None
    for name, spec in models.items():
        if not spec.trained:
            continue
        try:
            effective = variant_config(
                spec.variant, SparseDoctorConfig.from_dict(adapter_config(config, spec))
            )
            check_contrastive_labels(spec.variant, effective, train_datasets)
        except (TypeError, ValueError) as err:
            points = [f"sweeps.{knob} point {value!r}" for knob, value in spec.adapter_overrides.items()]
            raise WorkflowError(
                f"config key {', '.join(points) or 'adapter'} (model {name}): {err}"
            ) from None
    return training


def check_contrastive_labels(variant, effective, train_datasets):
    if VARIANTS[variant].kind == "moe" and effective.discipline_labels:
        if not any(dataset(name).disciplines for name in train_datasets):
            raise ValueError(
                f"cl_labels: discipline needs training data with disciplines; none of "
                f"{', '.join(train_datasets)} has them"
            )


def check_external_models():
    """An external model's own environment file must exist; one evaluated with this project's
    libraries whose locked architecture this transformers cannot build must opt into its remote
    code (sdoc_model.hub_lock), before any job runs."""
    for name in EXTERNAL:
        own = MODELS[name].environment
        if own and not Path(workflow.current_basedir, ENVS, own).is_file():
            raise WorkflowError(
                f"config key external.{name}.environment: no file {own} in workflow/envs/"
            )
    externals = {
        f"external.{name}": config["external"][name]
        for name in EXTERNAL
        if not MODELS[name].local and not MODELS[name].environment
    }
    try:
        check_architectures(externals, profile_lock(config["profile"]))
    except ValueError as err:
        raise WorkflowError(f"config key {err}") from None


validate(config, "../schemas/config.schema.yaml")
PROFILE = config["profile"]
# Every run's training seed is its own; the first seed also fixes what all runs share: the
# training data sample, the tiny base model's weights and lm-eval's few-shot draws.
SEED = config["seeds"][0]
RESULTS = f"results/{PROFILE}"
RESOURCES = f"resources/{PROFILE}"
BASE_MODEL = f"{RESOURCES}/base_model"
# Verified raw files, shared by every profile; a profile that makes up the files the mirror
# lacks (data.synthetic: the paper rehearsal) keeps all of its own.
SYNTHETIC = config["data"].get("synthetic", False)
RAW = f"{RESOURCES}/raw" if SYNTHETIC else "resources/raw"
# Laid out as sdoc_model.data.prepare expects: the tasks read DATA/normalised/<dataset>.jsonl.
DATA = f"{RESOURCES}/data"
TASKS = config["evaluation"]["tasks"]
EVAL_DATASETS = list(
    dict.fromkeys(name for task in TASKS for name in REGISTERED_TASKS[task].datasets.values())
)
TRAIN_DATASETS = [source["dataset"] for source in config["data"]["train"]]
PROFILE_DATASETS = list(dict.fromkeys([*EVAL_DATASETS, *TRAIN_DATASETS]))
TRAIN_MIXTURE = f"{DATA}/train.jsonl"
try:
    MODELS = model_specs(config)
except ValueError as err:
    raise WorkflowError(f"config key {err}") from None
TRAINING = check_settings(MODELS, TRAIN_DATASETS)
TRAINED = [name for name, spec in MODELS.items() if spec.trained]
EXTERNAL = [name for name, spec in MODELS.items() if spec.kind == "external"]
# Every rule runs in the project's own environment; `--software-deployment-method conda`
# builds it from this file where the workflow runs without a prepared .venv.
ENVS = "../envs"  # conda environment files, relative to these rule files
ENV = f"{ENVS}/sdoc.yaml"
check_external_models()


def evaluation_environment(wildcards):
    """A model's evaluation runs in the project's environment, or in the model's own where its
    code needs other library versions (external.<name>.environment, a file in workflow/envs/;
    with --software-deployment-method conda)."""
    own = MODELS[wildcards.model].environment
    return f"{ENVS}/{own}" if own else ENV


def rule_resources(rule_name):
    """Cluster resources of a rule from the config (GPUs, memory, runtime), none by default."""
    return config.get("resources", {}).get(rule_name, {})


def raw_files(name):
    """The verified raw files a registered dataset is normalised from."""
    return [f"{RAW}/{source.path}" for source in dataset(name).sources]


def job_benchmarks():
    """The benchmark file of every job of this profile before the report, which its compute
    section sums: files that other configurations or retired rules left in the folder are not
    this run's. Called by the report rule, once every rule is defined."""
    downloads = {source.path for name in PROFILE_DATASETS for source in dataset(name).sources}
    return [
        *expand(rules.download.benchmark, source_path=sorted(downloads)),
        *expand(rules.normalise.benchmark, dataset=PROFILE_DATASETS),
        rules.training_mixture.benchmark,
        rules.prepare_base_model.benchmark,
        *expand(rules.prepare_external.benchmark, model=EXTERNAL),
        *expand(rules.train.benchmark, model=TRAINED),
        *expand(rules.evaluate.benchmark, model=MODELS),
        *expand(rules.routing.benchmark, model=MOE_MODELS),
    ]


def synthetic_inputs(wildcards):
    """What a made-up raw file is made from (data.synthetic): the CMB-Exam test questions
    follow the real answer key."""
    if SYNTHETIC and wildcards.source_path == CMB_EXAM_TEST.path:
        return {"answer_key": f"{RAW}/{CMB_TEST_ANSWER_KEY.path}"}
    return {}


def raw_folder(file, source_path):
    """The raw-data folder (RAW) that holds `file`, the raw file of `source_path`."""
    return str(Path(file).parents[len(Path(source_path).parts) - 1])


def normalised(dataset_name):
    return f"{DATA}/normalised/{dataset_name}.jsonl"


EVAL_FILES = [normalised(name) for name in EVAL_DATASETS]


def model_inputs(wildcards):
    """What evaluating a model reads: the datasets of the profile's tasks, and the model's base
    model and adapter, or its prepared external folder."""
    spec = MODELS[wildcards.model]
    inputs = {"data": EVAL_FILES}
    if spec.kind == "external":
        inputs["external"] = external_folder(config, spec.name)
    else:
        inputs["base_model"] = BASE_MODEL
    if spec.trained:
        inputs["model"] = f"{RESULTS}/models/{wildcards.model}"
    return inputs


# Snakemake's own report (`snakemake --report report.html`): each table and figure the report
# rule writes, in a section, with a caption from workflow/report/.
REPORT_PLAN = ReportPlan.from_config(config, RESULTS)
# The expert-specialisation probe: every mixture-of-experts model, over the test sets scored.
MOE_MODELS = REPORT_PLAN.moe_runs
ROUTING_DATASETS = list(dict.fromkeys(REGISTERED_TASKS[task].dataset for task in TASKS))


def report_item(name):
    """(section, caption file) of a table or figure of the report plan."""
    kind = name.split("_")[0]
    if name in ("main", "accuracy_vs_params", "significance", "disciplines"):
        return "1. Results", name
    if kind in ("ablation", "sweep"):
        return "2. Ablations", kind
    if kind == "routing":
        return "2. Ablations", name
    if name == "training_curves" or name.startswith("expert_utilisation_"):
        return "3. Training", name if name == "training_curves" else "expert_utilisation"
    return "4. Efficiency", name


def reported_files(folder, names, shown, also):
    """The files of `names` in `folder`, as the report job writes them; `name.shown` goes into
    Snakemake's report, `name.also` only beside it."""
    files = []
    for name in names:
        section, caption = report_item(name)
        # Assigned, not a call at the start of a line, which Snakemake reads as `report:`.
        shown_file = report(
            f"{folder}/{name}.{shown}",
            category=section,
            caption=f"../report/{caption}.rst",
            # With the extension: the report shows one file per label, and a table and a
            # figure may share a name (disciplines).
            labels={"name": f"{name}.{shown}"},
        )
        files += [shown_file, *(f"{folder}/{name}.{ext}" for ext in also)]
    return files
