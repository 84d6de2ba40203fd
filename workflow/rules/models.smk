# The base model every variant starts from, as a plain Hugging Face folder, and the external
# baselines: a hub model at its pinned commit (downloaded once), or a tiny stand-in built here.


rule prepare_base_model:
    input:
        # The tiny model's tokenizer is trained on the profile's own text.
        texts=[TRAIN_MIXTURE, *EVAL_FILES] if config["base_model"]["kind"] == "tiny" else [],
    output:
        directory(BASE_MODEL),
    params:
        spec=config["base_model"],
        seed=SEED,
    log:
        f"{RESULTS}/logs/prepare_base_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_base_model.tsv"
    resources:
        **rule_resources("prepare_base_model"),
    conda:
        ENV
    script:
        "../scripts/prepare_base_model.py"


rule prepare_external:
    input:
        # A tiny stand-in's tokenizer is trained on the profile's own text, as the base model's.
        texts=lambda w: [TRAIN_MIXTURE, *EVAL_FILES] if MODELS[w.model].local else [],
    output:
        directory(external_folder(config, "{model}")),
    wildcard_constraints:
        model="|".join(map(re.escape, EXTERNAL)) or "^$",
    params:
        spec=lambda w: MODELS[w.model],
        seed=SEED,
    log:
        f"{RESULTS}/logs/prepare_external/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_external/{{model}}.tsv"
    resources:
        **rule_resources("prepare_external"),
    conda:
        ENV
    script:
        "../scripts/prepare_external.py"
