# The base model every variant starts from, as a plain Hugging Face folder.


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
