# One training job per trained model (variants and sweep points). Checkpoints live apart from
# the outputs, so a killed job resumes from its newest checkpoint when Snakemake reruns it.


rule train:
    input:
        base_model=BASE_MODEL,
        data=TRAIN_MIXTURE,
    output:
        model=directory(f"{RESULTS}/models/{{model}}"),
        summary=f"{RESULTS}/train/{{model}}/summary.json",
        metrics=f"{RESULTS}/train/{{model}}/metrics.jsonl",
    wildcard_constraints:
        model="|".join(map(re.escape, TRAINED)) or "^$",
    params:
        spec=lambda w: MODELS[w.model],
        checkpoints=lambda w: f"{RESOURCES}/checkpoints/{w.model}",
    log:
        f"{RESULTS}/logs/train/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}.tsv"
    threads: lambda wildcards: workflow.cores  # a function: `--report` runs without --cores
    resources:
        **rule_resources("train"),
    conda:
        ENV
    script:
        "../scripts/train.py"
