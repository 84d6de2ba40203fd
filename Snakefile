# SparseDoctor: raw benchmark files -> trained variants -> lm-eval -> tables, plots, report.
#   snakemake --cores all                          # the demo (config/config.yaml)
#   snakemake --cores all --configfile config/ci.yaml
#   snakemake --profile workflow/profiles/slurm --sdm conda --configfile config/paper.yaml
# `sdoc run ARGS` = `snakemake ARGS --rerun-incomplete` after clearing a killed run's lock.
from snakemake.utils import min_version

min_version("9.0")


# The demo config unless --configfile names another; never a merge of the two.
if not config:

    configfile: "config/config.yaml"


# The description atop Snakemake's report (`snakemake --report results/<profile>/report.html`).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{RESULTS}/REPORT.md",
        # Every evaluation is a target too, so deleting one reruns it and the report.
        expand(f"{RESULTS}/eval/{{model}}/{{task}}.json", model=MODELS, task=TASKS),
