# One lm-eval job per model: every task of the profile on one loaded model, each task as the
# stock CLI would run it alone, with its result file and per-question records.


rule evaluate:
    input:
        unpack(model_inputs),
    output:
        results=[f"{RESULTS}/eval/{{model}}/{task}.json" for task in TASKS],
        questions=[f"{RESULTS}/eval/{{model}}/{task}.questions.jsonl" for task in TASKS],
    wildcard_constraints:
        model="|".join(map(re.escape, MODELS)),
    params:
        spec=lambda w: MODELS[w.model],
        tasks=TASKS,
        evaluation=config["evaluation"],
        data_dir=DATA,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}.tsv"
    # Single-threaded on the CPU: two small evaluations side by side beat one with two threads.
    threads: 1
    resources:
        **rule_resources("evaluate"),
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
