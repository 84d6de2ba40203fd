# One lm-eval job per model: every task of the profile on one loaded model, each task as the
# stock CLI would run it alone, with its result file and per-question records. And the
# expert-specialisation probe of each mixture-of-experts model.


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
        seed=SEED,
    log:
        f"{RESULTS}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}.tsv"
    # Single-threaded on the CPU: two small evaluations side by side beat one with two threads.
    threads: 1
    resources:
        **rule_resources("evaluate"),
    conda:
        evaluation_environment
    script:
        "../scripts/evaluate.py"


# Which experts the tokens of labelled test questions (the first few of each discipline) are
# routed to, counted per adapted layer; a profile whose test sets carry no discipline gets a
# file that says so, without loading the model.
rule routing:
    input:
        base_model=BASE_MODEL,  # the checkpoint names it
        model=f"{RESULTS}/models/{{model}}",
        data=[normalised(name) for name in ROUTING_DATASETS],
    output:
        f"{RESULTS}/routing/{{model}}.json",
    wildcard_constraints:
        model="|".join(map(re.escape, MOE_MODELS)) or "^$",
    params:
        datasets=ROUTING_DATASETS,
        questions=config["evaluation"]["routing_questions"],
        dtype=config["evaluation"]["dtype"],
    log:
        f"{RESULTS}/logs/routing/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/routing/{{model}}.tsv"
    threads: 1
    resources:
        **rule_resources("routing"),
    conda:
        ENV
    script:
        "../scripts/routing.py"
