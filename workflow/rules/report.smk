# Tables, figures and REPORT.md from every evaluation (with its per-question records, for the
# paired comparisons), training run and routing probe of the profile.


rule report:
    input:
        evals=expand(f"{RESULTS}/eval/{{model}}/{{task}}.json", model=MODELS, task=TASKS),
        questions=expand(
            f"{RESULTS}/eval/{{model}}/{{task}}.questions.jsonl", model=MODELS, task=TASKS
        ),
        summaries=expand(f"{RESULTS}/train/{{model}}/summary.json", model=TRAINED),
        metrics=expand(f"{RESULTS}/train/{{model}}/metrics.jsonl", model=TRAINED),
        routing=expand(f"{RESULTS}/routing/{{model}}.json", model=MOE_MODELS),
        leakage=f"{RESULTS}/data/leakage.json",
        raw=sorted({f for name in PROFILE_DATASETS for f in raw_files(name)}),
    output:
        report=report(
            f"{RESULTS}/REPORT.md",
            category="5. Provenance",
            caption="../report/report_md.rst",
            labels={"name": "REPORT.md"},
        ),
        provenance=report(
            f"{RESULTS}/provenance.json",
            category="5. Provenance",
            caption="../report/provenance.rst",
            labels={"name": "provenance.json"},
        ),
        tables=reported_files(f"{RESULTS}/tables", REPORT_PLAN.table_names(), "csv", ["md", "tex"]),
        figures=reported_files(f"{RESULTS}/figures", REPORT_PLAN.figure_names(), "png", ["pdf"]),
    params:
        results=lambda wildcards, output: Path(output.report).parent,
        benchmarks=job_benchmarks(),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        ENV
    script:
        "../scripts/report.py"
