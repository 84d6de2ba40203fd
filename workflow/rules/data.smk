# Pinned sources -> verified raw files -> normalised JSONL (what the tasks read) -> training
# mixture and its leakage report. Raw files are shared by every profile; the rest is per
# profile. The tasks prepare a dataset the same way when they run outside the workflow
# (sdoc_model.data.prepare).


rule download:
    input:
        unpack(synthetic_inputs),
    output:
        f"{RAW}/{{source_path}}",
    wildcard_constraints:
        source_path="(github|huggingface)/.+",
    params:
        raw=lambda w, output: raw_folder(output[0], w.source_path),
        synthetic=SYNTHETIC,
    log:
        f"{RESULTS}/logs/download/{{source_path}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/{{source_path}}.tsv"
    conda:
        ENV
    script:
        "../scripts/download.py"


rule normalise:
    input:
        lambda w: raw_files(w.dataset),
    output:
        normalised("{dataset}"),
        # Lenient mode keeps every rejected row, with its file, row and reason.
        *([] if config["data"]["strict"] else [f"{DATA}/normalised/{{dataset}}.quarantine.jsonl"]),
    params:
        raw=lambda w, input: raw_folder(input[0], dataset(w.dataset).sources[0].path),
        strict=config["data"]["strict"],
        format=NORMALISED_FORMAT,
    log:
        f"{RESULTS}/logs/normalise/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/normalise/{{dataset}}.tsv"
    conda:
        ENV
    script:
        "../scripts/normalise.py"


rule training_mixture:
    input:
        train=[normalised(name) for name in TRAIN_DATASETS],
        eval=EVAL_FILES,
    output:
        mixture=TRAIN_MIXTURE,
        leakage=f"{RESULTS}/data/leakage.json",
        leakage_md=f"{RESULTS}/data/leakage.md",
    params:
        caps=[s.get("max_rows") for s in config["data"]["train"]],
        seed=SEED,
        leakage=config["data"]["leakage"],
        # Fewer rows than one optimizer step sees: the leakage check fails, naming the counts.
        one_step=TRAINING.batch_size * TRAINING.grad_accum,
    log:
        f"{RESULTS}/logs/training_mixture.log",
    benchmark:
        f"{RESULTS}/benchmarks/training_mixture.tsv"
    conda:
        ENV
    script:
        "../scripts/training_mixture.py"
