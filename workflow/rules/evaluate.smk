# One lm-eval job per (model, task), with the project's tasks, as the stock CLI would run it.


def model_inputs(wildcards):
    spec = MODELS[wildcards.model]
    inputs = {"data": EVAL_FILES}
    if spec.kind != "external":
        inputs["base_model"] = BASE_MODEL
    if spec.trained:
        inputs["model"] = f"{RESULTS}/models/{wildcards.model}"
    return inputs


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
        data_dir=EVAL_DATA,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/evaluate/{{model}}-{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}-{{task}}.tsv"
    # Single-threaded on the CPU: two small evaluations side by side beat one with two threads.
    threads: 1
    resources:
        **rule_resources("evaluate"),
    script:
        "../scripts/evaluate.py"
