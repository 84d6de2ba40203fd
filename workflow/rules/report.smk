# Tables, figures and REPORT.md from every evaluation and training run of the profile.


rule report:
    input:
        evals=expand(f"{RESULTS}/eval/{{model}}/{{task}}.json", model=MODELS, task=TASKS),
        summaries=expand(f"{RESULTS}/train/{{model}}/summary.json", model=TRAINED),
        metrics=expand(f"{RESULTS}/train/{{model}}/metrics.jsonl", model=TRAINED),
        leakage=f"{RESULTS}/data/leakage.json",
    output:
        report=f"{RESULTS}/REPORT.md",
        tables=directory(f"{RESULTS}/tables"),
        figures=directory(f"{RESULTS}/figures"),
    params:
        results=lambda wildcards, output: Path(output.report).parent,
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        ENV
    script:
        "../scripts/report.py"
