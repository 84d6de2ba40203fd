# One lm-eval job per (model, task), with the project's tasks, as the stock CLI would run it.


rule evaluate:
    input:
        unpack(model_inputs),
    output:
        f"{RESULTS}/eval/{{model}}/{{task}}.json",
    wildcard_constraints:
        model="|".join(map(re.escape, MODELS)),
        task="|".join(map(re.escape, TASKS)),
    params:
        spec=lambda w: MODELS[w.model],
        evaluation=config["evaluation"],
        data_dir=DATA,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/evaluate/{{model}}-{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}-{{task}}.tsv"
    # Single-threaded on the CPU: two small evaluations side by side beat one with two threads.
    threads: 1
    resources:
        **rule_resources("evaluate"),
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
