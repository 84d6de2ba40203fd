"""The report module on a synthetic results tree shaped exactly like the workflow's outputs.

`write_results_tree` fakes every input of a profile: lm-eval 0.4.13 aggregated result JSONs
(metrics and group aggregates computed with lm-eval's own functions), training summaries and
per-step logs, and Snakemake benchmark TSVs.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml
from lm_eval.api.metrics import (
    aggregate_subtask_metrics,
    mean,
    pooled_sample_stderr,
    stderr_for_metric,
)
from PIL import Image

from sdoc_model.data.leakage import check_leakage
from sdoc_model.profile import adapter_config, model_runs, model_specs
from sdoc_model.report import MissingInputError, build_report, load_checksums
from sdoc_model.report.__main__ import main as report_cli
from sdoc_model.report.inputs import load_benchmarks, load_scores
from sdoc_model.report.plan import ReportPlan
from sdoc_model.report.tables import protocol_note
from sdoc_model.utils.jsonl import read_jsonl, write_jsonl
from tests.factories import question, synthetic_data

REPO = Path(__file__).resolve().parents[2]
CI_CONFIG = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())

TEST_SET_SIZES = {
    "cmb_xmed": 2000,
    "cmexam_xmed": 2000,
    "cmb_xmed_gen": 2000,
    "cmexam_xmed_gen": 2000,
}
# CMMLU's seven medical subjects and their test-set sizes (1,333 questions in all).
CMMLU_MED = {
    "cmmlu_med_anatomy": 148,
    "cmmlu_med_clinical_knowledge": 237,
    "cmmlu_med_college_medicine": 273,
    "cmmlu_med_genetics": 176,
    "cmmlu_med_nutrition": 145,
    "cmmlu_med_traditional_chinese_medicine": 185,
    "cmmlu_med_virology": 169,
}
TINY_LAYERS = 2
MODULE_PATHS = {
    "q_proj": "self_attn",
    "k_proj": "self_attn",
    "v_proj": "self_attn",
    "o_proj": "self_attn",
    "gate_proj": "mlp",
    "up_proj": "mlp",
    "down_proj": "mlp",
}
BENCHMARK_HEADER = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
)


# The synthetic results tree.
def write_results_tree(root: Path, config: dict, seed: int = 0, layers: int = TINY_LAYERS) -> None:
    rng = np.random.default_rng(seed)
    specs = model_specs(config)
    for number, (name, spec) in enumerate(specs.items()):
        skill = 0.25 + 0.5 * number / len(specs)  # later models score a little higher, on average
        for task in config["evaluation"]["tasks"]:
            results, questions = lm_eval_results(name, task, config, skill, rng)
            write_json(root / "eval" / name / f"{task}.json", results)
            write_jsonl(root / "eval" / name / f"{task}.questions.jsonl", questions)
        write_benchmark(root / "benchmarks" / "evaluate" / f"{name}.tsv", rng)  # a job per model
        if spec.trained:
            adapter = adapter_config(config, spec)
            write_training(
                root / "train" / name, name, spec.variant, adapter, config["training"], rng, layers
            )
            write_benchmark(root / "benchmarks" / "train" / f"{name}.tsv", rng)
    for number, run in enumerate(ReportPlan.from_config(config, root).moe_runs):
        experts = adapter_config(config, specs[run])["num_experts"]
        probe = routing_probe(layer_names(config, layers), experts, number, config, rng)
        write_json(root / "routing" / f"{run}.json", {"model": run} | probe)
    write_leakage_report(root)
    # Single-job rules write benchmarks/{rule}.tsv; a path wildcard nests folders.
    write_benchmark(root / "benchmarks" / "prepare_base_model.tsv", rng)
    write_benchmark(
        root / "benchmarks" / "download" / "github" / "cmb" / "test.json.tsv", rng, sampled=False
    )


def layer_names(config: dict, layers: int) -> list[str]:
    return [
        f"model.layers.{layer}.{MODULE_PATHS[module]}.{module}"
        for layer in range(layers)
        for module in config["adapter"]["target_modules"]
    ]


def routing_probe(layers: list[str], experts: int, skew: float, config: dict, rng) -> dict:
    """What sdoc_model.eval.routing writes: for CMMLU-Med's subjects, per layer, expert choices
    that lean towards one expert per subject, the more so the larger `skew`."""
    questions = config["evaluation"]["routing_questions"]
    subjects = [leaf.removeprefix("cmmlu_med_") for leaf in CMMLU_MED]
    tokens = [int(n) for n in rng.integers(20 * questions, 40 * questions, len(subjects))]
    counts = {}
    for layer in layers:
        lean = np.eye(experts)[[i % experts for i in range(len(subjects))]]
        shares = rng.dirichlet(np.ones(experts), len(subjects)) + skew * lean
        shares /= shares.sum(axis=1, keepdims=True)
        draws = zip(tokens, shares, strict=True)
        counts[layer] = [rng.multinomial(2 * n, p).tolist() for n, p in draws]
    entry = {"level": "subject", "disciplines": subjects, "questions": [questions] * len(subjects)}
    return {
        "questions_per_discipline": questions, "num_experts": experts, "top_k": 2,
        "weights": "gates", "datasets": {"cmmlu_med": entry | {"tokens": tokens, "counts": counts}},
    }  # fmt: skip


def write_leakage_report(root: Path) -> None:
    """The data rules' overlap report, from synthetic sets and a mixture holding one CMB
    question."""
    data = root.parent / "resources"
    sets = synthetic_data()
    for name in ("cmb_xmed", "cmexam_xmed"):
        write_jsonl(data / f"{name}.jsonl", sets[name])
    leaked = {
        **sets["cmb_xmed"][1],
        "id": "cmexam-train-9",
        "benchmark": "cmexam",
        "split": "train",
    }
    other = question(
        "cmexam", "train", 0, ["发热", "咳嗽", "乏力", "头痛"], "A", text="流感最常见的全身症状是"
    )
    write_jsonl(data / "train.jsonl", [leaked, other])
    check_leakage(
        data / "train.jsonl", [data / "cmb_xmed.jsonl", data / "cmexam_xmed.jsonl"],
        root / "data" / "leakage.json", root / "data" / "leakage.md",
    )  # fmt: skip


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))


def _task_metrics(name: str, metric: str, items: list[float]) -> dict:
    return {
        "name": name,
        "alias": name,
        "sample_len": len(items),
        f"{metric},none": mean(items),
        f"{metric}_stderr,none": stderr_for_metric(mean, 100000)(items)
        if len(items) > 1
        else "N/A",
    }


def lm_eval_results(
    model: str, task: str, config: dict, skill: float, rng
) -> tuple[dict, list[dict]]:
    """What lm-eval 0.4.13's evaluate() + simple_evaluate() + EvaluationTracker write, and the
    per-question records of the same answers (question ids shared by every model)."""
    evaluation = config["evaluation"]
    limit = evaluation.get("limit", {}).get(task)
    shots = evaluation.get("num_fewshot", {}).get(task, 0)
    metric = "exact_match" if task.endswith("_gen") else "acc"
    leaves = CMMLU_MED if task == "cmmlu_med" else {task: TEST_SET_SIZES[task]}
    results, n_samples, questions = {}, {}, []
    for leaf, size in leaves.items():
        evaluated = min(limit or size, size)
        items = [float(x) for x in rng.random(evaluated) < skill]
        results[leaf] = _task_metrics(leaf, metric, items)
        n_samples[leaf] = {"original": size, "effective": evaluated}
        # As the records have them: CMMLU-Med's subjects are disciplines, XMedBench's have none.
        subject = leaf.removeprefix(f"{task}_") if task == "cmmlu_med" else None
        questions += [
            {"id": f"{leaf}-{i}", "task": leaf, "correct": bool(item), "choice": "A",
             "discipline": subject, "disciplines": {"subject": subject} if subject else None}
            for i, item in enumerate(items)
        ]  # fmt: skip
    output = {"results": results}
    if task == "cmmlu_med":
        values = [results[leaf][f"{metric},none"] for leaf in leaves]
        sizes = [results[leaf]["sample_len"] for leaf in leaves]
        stderrs = [results[leaf][f"{metric}_stderr,none"] for leaf in leaves]
        group = {
            "alias": "CMMLU-Med",
            "name": task,
            "sample_len": sum(sizes),
            f"{metric},none": aggregate_subtask_metrics(values, sizes, True),
            f"{metric}_stderr,none": float(pooled_sample_stderr(stderrs, sizes)),
            "sample_count": {f"{metric},none": sum(sizes)},
        }
        results[task] = group
        output["groups"] = {task: group}
    output |= {
        "group_subtasks": {task: list(leaves)} if task == "cmmlu_med" else {},
        "configs": {
            leaf: {"task": leaf, "num_fewshot": shots, "metadata": {"version": 1.0}}
            for leaf in leaves
        },
        "versions": {name: 1.0 for name in results},
        "n-shot": {name: shots for name in results},
        "higher_is_better": {name: {metric: True} for name in results},
        "n-samples": n_samples,
        "config": {
            "model": "hf",
            "model_args": f"pretrained=results/ci/models/{model}",
            "batch_size": evaluation.get("batch_size"),
            "device": "cpu",
            "limit": limit,
            "bootstrap_iters": 100000,
            "random_seed": 0,
        },
        "git_hash": "b21719a",
        "date": 1767225600.0,
        "lm_eval_version": "0.4.13",
        "task_hashes": {},
        "model_source": "hf",
        "model_name": f"results/ci/models/{model}",
        "total_evaluation_time_seconds": "12.5",
    }
    if model == "lora":  # as the runner writes it; the others as results from before it did
        output["sdoc"] = {"git": {"commit": "c0ffee1" + "0" * 33, "dirty": True}}
    return output, questions


def write_training(
    folder: Path, name: str, variant: str, adapter: dict, training: dict, rng, layers: int
) -> None:
    moe = variant != "lora"
    experts = adapter["num_experts"]
    names = layer_names({"adapter": adapter}, layers)
    trainable = len(names) * (64 + 96) * adapter["rank"] * (experts if moe else adapter["top_k"])
    steps = training["max_steps"]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "metrics.jsonl").open("w") as log:
        for step in range(1, steps + 1):
            lm_loss = 7.0 * np.exp(-step / steps) + 0.2 * rng.random()
            record = {
                "step": step,
                "lm_loss": lm_loss,
                "lb_loss": 1.0 + 0.05 * rng.random() if moe else None,
                "z_loss": None,
                "cl_loss": 2.0 - step / steps + 0.1 * rng.random()
                if variant.startswith("sparsedoctor")
                else None,
                "lr": training["lr"],
                "tokens_per_s": 900.0 + rng.random(),
                "peak_memory_bytes": 300_000_000,
            }
            record["loss"] = (
                lm_loss + 0.01 * (record["lb_loss"] or 0) + 0.1 * (record["cl_loss"] or 0)
            )
            if moe:
                record["router_entropy"] = {layer: float(rng.random()) for layer in names}
                record["expert_load"] = {
                    layer: rng.dirichlet(np.ones(experts)).tolist() for layer in names
                }
            log.write(json.dumps(record) + "\n")
    summary = {
        "model": name,
        "variant": variant,
        "trainable_params": trainable,
        "total_params": 500_000 + trainable,
        "steps": steps,
        "tokens": steps * 4 * 192,
        "wall_time_s": 20.0 + rng.random(),
        "tokens_per_s": 900.0 + rng.random(),
        "step_time_s": 0.4 + rng.random(),
        "peak_memory_bytes": 300_000_000 + int(1e6 * rng.random()),
        "device": "cpu",
        "precision": "fp32",
        "config": {"adapter": adapter, "training": training},
        "git": {"commit": "b21719a" + "0" * 33, "dirty": name == "lora-seed1"},
    }
    write_json(folder / "summary.json", summary)


def write_benchmark(path: Path, rng, sampled: bool = True) -> None:
    """Snakemake's benchmark TSV: seconds, h:m:s, then memory in MB (floats as %.2f); "NA"
    where the job ended before Snakemake could sample it."""
    seconds = 5 + 30 * rng.random()
    rss = 800 + 400 * rng.random()
    usage = [
        f"{rss:.2f}",
        f"{rss * 1.5:.2f}",
        f"{rss * 0.9:.2f}",
        f"{rss * 0.95:.2f}",
        "12.34",
        "1.20",
        "95.10",
        f"{seconds * 0.9:.2f}",
    ]
    row = [f"{seconds:.4f}", f"0:00:{seconds:09.6f}", *(usage if sampled else ["NA"] * len(usage))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCHMARK_HEADER + "\n" + "\t".join(row) + "\n")


# One full report on the ci profile, shared by the tests that only read it.
@pytest.fixture(scope="module")
def ci_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results") / "ci"
    write_results_tree(root, CI_CONFIG)
    build_report(CI_CONFIG, root, checksums={"resources/data/eval/cmb.jsonl": "ab" * 32})
    return root


def read_csv(path: Path) -> list[dict]:
    with path.open() as rows:
        return list(csv.DictReader(rows))


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of the first Markdown table in `text`, header first, separator row skipped."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return [rows[0], *rows[2:]]


def test_every_table_and_figure_exists(ci_report):
    tables = ["main", "ablation_variants", "ablation_num_experts", "ablation_top_k", "efficiency"]
    tables += ["significance", "disciplines", "routing_specialisation"]
    moe = [
        "lora_moe_dense",
        "lora_moe",
        "sparsedoctor_noqueue",
        "sparsedoctor",
        "sparsedoctor-num_experts-2",
        "sparsedoctor-top_k-1",
    ]
    figures = ["sweep_num_experts", "sweep_top_k", "training_curves", "accuracy_vs_params"]
    figures += ["disciplines", "routing_nmi", "routing_usage"]
    figures += [f"expert_utilisation_{model}" for model in moe]
    expected = [
        ci_report / "tables" / f"{name}.{ext}" for name in tables for ext in ("csv", "md", "tex")
    ]
    expected += [
        ci_report / "figures" / f"{name}.{ext}" for name in figures for ext in ("png", "pdf")
    ]
    expected += [ci_report / "REPORT.md", ci_report / "provenance.json"]
    assert sorted(map(str, expected)) == sorted(
        map(str, ReportPlan.from_config(CI_CONFIG, ci_report).outputs())
    )
    for path in expected:
        assert path.is_file() and path.stat().st_size > 0, path


def test_main_csv_holds_the_lm_eval_numbers_unrounded_averaged_over_seeds(ci_report):
    """A model's cell is the mean of its runs' lm-eval accuracies (ci trains each variant with
    two seeds), its spread their standard deviation, its standard error their mean one."""
    rows = read_csv(ci_report / "tables" / "main.csv")
    assert [row["model"] for row in rows] == CI_CONFIG["variants"]
    runs = model_runs(model_specs(CI_CONFIG))
    for row in rows:
        assert int(row["seeds"]) == len(runs[row["model"]])
        for task in CI_CONFIG["evaluation"]["tasks"]:
            metrics = [
                json.loads((ci_report / "eval" / run / f"{task}.json").read_text())["results"][task]
                for run in runs[row["model"]]
            ]
            accs = [m["acc,none"] for m in metrics]
            assert float(row[f"{task}_acc"]) == pytest.approx(statistics.mean(accs), rel=1e-12)
            assert float(row[f"{task}_stderr"]) == pytest.approx(
                statistics.mean(m["acc_stderr,none"] for m in metrics), rel=1e-12
            )
            if len(accs) > 1:
                assert float(row[f"{task}_seed_sd"]) == pytest.approx(statistics.stdev(accs))
            else:
                assert row[f"{task}_seed_sd"] == ""
        accs = [float(row[f"{task}_acc"]) for task in ("cmb_xmed", "cmexam_xmed", "cmmlu_med")]
        assert float(row["average_acc"]) == pytest.approx(sum(accs) / 3, rel=1e-12)


def test_a_model_with_several_seeds_shows_its_spread(ci_report):
    table = (ci_report / "tables" / "main.md").read_text()
    lora = next(line for line in table.splitlines() if line.startswith("| lora |"))
    base = next(line for line in table.splitlines() if line.startswith("| base |"))
    assert "(sd " in lora and "(sd " not in base
    assert "the others one run" in table


def test_group_score_is_lm_eval_size_weighted_aggregate(ci_report):
    data = json.loads((ci_report / "eval" / "base" / "cmmlu_med.json").read_text())
    subtasks = [data["results"][leaf] for leaf in CMMLU_MED]
    weighted = sum(t["acc,none"] * t["sample_len"] for t in subtasks) / sum(
        t["sample_len"] for t in subtasks
    )
    row = next(row for row in read_csv(ci_report / "tables" / "main.csv") if row["model"] == "base")
    assert float(row["cmmlu_med_acc"]) == pytest.approx(weighted)
    assert int(row["cmmlu_med_n"]) == 7 * CI_CONFIG["evaluation"]["limit"]["cmmlu_med"]


def test_markdown_main_table_has_a_row_per_model_and_the_mean_as_average(ci_report):
    header, *rows = markdown_rows((ci_report / "tables" / "main.md").read_text())
    assert header == [
        "Model", "Description", "CMB (XMedBench)", "CMExam (XMedBench)", "CMMLU-Med", "Average"
    ]  # fmt: skip
    assert [row[0] for row in rows] == CI_CONFIG["variants"]
    csv_rows = {row["model"]: row for row in read_csv(ci_report / "tables" / "main.csv")}
    for row in rows:
        accuracy = [float(re.match(r"\**([\d.]+)", cell)[1]) for cell in row[2:]]
        expected = 100 * np.mean(
            [float(csv_rows[row[0]][f"{t}_acc"]) for t in ("cmb_xmed", "cmexam_xmed", "cmmlu_med")]
        )
        assert accuracy[3] == pytest.approx(expected, abs=0.05)
        assert all("\u00b1" in cell for cell in row[2:])


def test_tables_state_the_evaluation_protocol(ci_report):
    text = (ci_report / "tables" / "main.md").read_text()
    assert "CMB (XMedBench): 0-shot, 4 of 2,000 questions;" in text
    assert "CMMLU-Med: 0-shot, 28 of 1,333 questions." in text
    assert "SUBSET" in text
    assert "SUBSET" in (ci_report / "tables" / "main.tex").read_text()
    assert "4 of 2,000 questions" in (ci_report / "REPORT.md").read_text()


@pytest.mark.parametrize(
    "name",
    [
        "main",
        "ablation_variants",
        "ablation_num_experts",
        "ablation_top_k",
        "efficiency",
        "significance",
        "disciplines",
        "routing_specialisation",
    ],
)
def test_latex_tables_are_well_formed_booktabs(ci_report, name):
    tex = (ci_report / "tables" / f"{name}.tex").read_text()
    lines = tex.splitlines()
    order = [
        lines.index(marker)
        for marker in ("\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}")
    ]
    assert order == sorted(order) and tex.count("\\begin{table}") == tex.count("\\end{table}") == 1
    spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex)[1]
    rows = lines[order[0] + 1 : order[2]]
    rows.remove("\\midrule")
    for row in rows:
        assert row.endswith("\\\\") and row.count("&") - row.count("\\&") == len(spec) - 1, row
    assert all("_" not in row.replace("\\_", "") for row in rows)  # every underscore escaped
    if name not in ("efficiency", "significance"):  # these bold nothing, or only what holds
        assert "\\textbf{" in tex


def test_main_latex_bolds_the_best_of_each_column(ci_report):
    rows = read_csv(ci_report / "tables" / "main.csv")
    best = max(rows, key=lambda row: float(row["cmb_xmed_acc"]))
    tex_row = next(
        line
        for line in (ci_report / "tables" / "main.tex").read_text().splitlines()
        if line.startswith(best["model"].replace("_", "\\_") + " &")
    )
    assert tex_row.split(" & ")[2].startswith("\\textbf{")


def test_ablation_variants_deltas_are_relative_to_the_full_method(ci_report):
    rows = {row["model"]: row for row in read_csv(ci_report / "tables" / "ablation_variants.csv")}
    assert list(rows) == ["lora_moe_dense", "lora_moe", "sparsedoctor_noqueue", "sparsedoctor"]
    for row in rows.values():
        for column in ("cmb_xmed", "average"):
            expected = float(row[f"{column}_acc"]) - float(rows["sparsedoctor"][f"{column}_acc"])
            assert float(row[f"{column}_delta"]) == pytest.approx(expected)


def test_sweep_table_lists_each_value_with_its_model(ci_report):
    rows = read_csv(ci_report / "tables" / "ablation_num_experts.csv")
    assert [(row["value"], row["model"]) for row in rows] == [
        ("2", "sparsedoctor-num_experts-2"),
        ("4", "sparsedoctor"),
    ]
    assert "4 (default)" in (ci_report / "tables" / "ablation_num_experts.md").read_text()


def test_efficiency_table_joins_summary_and_benchmark(ci_report):
    rows = {row["run"]: row for row in read_csv(ci_report / "tables" / "efficiency.csv")}
    assert set(rows) == {name for name, spec in model_specs(CI_CONFIG).items() if spec.trained}
    assert rows["lora-seed1"]["model"] == "lora"
    summary = json.loads((ci_report / "train" / "lora" / "summary.json").read_text())
    assert int(rows["lora"]["trainable_params"]) == summary["trainable_params"]
    assert float(rows["lora"]["tokens_per_s"]) == summary["tokens_per_s"]
    benchmark = (
        (ci_report / "benchmarks" / "train" / "lora.tsv").read_text().splitlines()[1].split("\t")
    )
    assert float(rows["lora"]["max_rss_mb"]) == float(benchmark[2])


def test_only_the_named_benchmark_files_are_read_and_unwritten_ones_skipped(ci_report):
    folder = ci_report / "benchmarks"
    named = [folder / "train" / "lora.tsv", folder / "evaluate" / "lora.tsv"]
    benchmarks = load_benchmarks(ci_report, [*map(str, named), folder / "download" / "none.tsv"])
    assert benchmarks[["rule", "job"]].values.tolist() == [["evaluate", "lora"], ["train", "lora"]]
    assert len(load_benchmarks(ci_report)) == len(list(folder.rglob("*.tsv"))) > len(named)


def test_report_reads_well_and_links_existing_figures(ci_report):
    text = (ci_report / "REPORT.md").read_text()
    assert text.startswith("# SparseDoctor results: profile `ci`")
    for heading in (
        "## Main results",
        "## Ablations",
        "## Training",
        "## Provenance",
        "### Config",
    ):
        assert heading in text
    links = re.findall(r"\]\((figures/[^)]+)\)", text)
    assert "figures/training_curves.png" in links
    for link in links:
        assert (ci_report / link).is_file(), link
    # 13 evaluations (base, 5 variants x 2 seeds, 2 sweep points), 12 trainings, preparing the
    # base model and one download
    assert "Total wall time of the 27 benchmarked jobs" in text
    assert "| download | 1 | " in text and " | n/a |" in text  # a job too short to sample memory
    assert "| prepare_base_model | 1 |" in text
    assert "ab" * 32 in text


def report_section(results: Path, title: str, next_title: str) -> str:
    """REPORT.md from `title` up to `next_title`."""
    text = (results / "REPORT.md").read_text()
    return text[text.index(title) : text.index(next_title)]


def test_report_shows_the_training_evaluation_overlap(ci_report):
    overlap = report_section(ci_report, "## Training / evaluation overlap", "## Provenance")
    assert "| cmb_xmed | 3 | 1 | 0 | 1 (33.33%) | 1 |" in overlap
    assert "| cmexam_xmed | 4 | 0 | 0 | 0 (0.00%) | 0 |" in overlap
    assert "Training rows matching an evaluation question: 1." in overlap
    assert (
        "[data/leakage.md](data/leakage.md)" in overlap
        and (ci_report / "data" / "leakage.md").is_file()
    )


def test_provenance_records_code_software_and_checksums(ci_report):
    provenance = json.loads((ci_report / "provenance.json").read_text())
    assert set(provenance["packages"]) == {
        "torch",
        "transformers",
        "peft",
        "lm_eval",
        "datasets",
        "snakemake",
        "seaborn",
    }
    assert provenance["packages"]["lm_eval"] == "0.4.13"
    assert provenance["config"] == CI_CONFIG
    assert provenance["data_checksums"] == {"resources/data/eval/cmb.jsonl": "ab" * 32}
    assert set(provenance["git"]) == {"commit", "dirty"}
    runs = {"training": ["b21719a", "b21719a+dirty"], "evaluation": ["b21719a", "c0ffee1+dirty"]}
    assert provenance["runs"] == runs
    text = (ci_report / "REPORT.md").read_text()
    assert (
        "models trained at commits `b21719a` and `b21719a+dirty`; evaluated at commits `b21719a` "
        "and `c0ffee1+dirty`."
    ) in text
    assert provenance["host"]["cpu_count"] >= 1


def test_pngs_are_sane_images(ci_report):
    for path in sorted((ci_report / "figures").glob("*.png")):
        with Image.open(path) as image:
            width, height = image.size
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert 500 <= width <= 3000 and 300 <= height <= 3000, (path.name, image.size)
        assert pixels.std() > 10, f"{path.name} looks blank"
        assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


def test_missing_result_is_an_error_naming_the_file(tmp_path, cli_error):
    root = tmp_path / "ci"
    write_results_tree(root, CI_CONFIG)
    missing = root / "eval" / "sparsedoctor" / "cmexam_xmed.json"
    missing.unlink()
    with pytest.raises(MissingInputError, match=re.escape(str(missing))):
        build_report(CI_CONFIG, root)
    config_path = tmp_path / "ci.yaml"
    config_path.write_text(yaml.safe_dump(CI_CONFIG))
    error = cli_error(report_cli, ["--config", str(config_path), "--results", str(root)])
    assert "model 'sparsedoctor' on task 'cmexam_xmed'" in error
    assert not (root / "tables").exists()


def test_missing_training_benchmark_is_an_error_naming_the_file(tmp_path):
    root = tmp_path / "ci"
    write_results_tree(root, CI_CONFIG)
    shutil.rmtree(root / "benchmarks" / "train")
    with pytest.raises(
        MissingInputError, match=re.escape(str(root / "benchmarks" / "train" / "lora.tsv"))
    ):
        build_report(CI_CONFIG, root)


def test_a_result_without_the_task_names_the_file(tmp_path):
    root = tmp_path / "ci"
    write_results_tree(root, CI_CONFIG)
    path = root / "eval" / "base" / "cmb_xmed.json"
    data = json.loads(path.read_text())
    data["results"] = {"cmexam_xmed": data["results"]["cmb_xmed"]}
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(f"{path}: no results for task 'cmb_xmed'")):
        build_report(CI_CONFIG, root)


def test_single_value_sweep_gets_a_note_instead_of_a_plot(tmp_path):
    config = copy.deepcopy(CI_CONFIG)
    config |= {"variants": ["base", "sparsedoctor"], "sweeps": {"num_experts": [4]}}
    config["evaluation"]["tasks"] = ["cmb_xmed", "cmexam_xmed", "cmmlu_med", "cmb_xmed_gen"]
    root = tmp_path / "single"
    write_results_tree(root, config)
    build_report(config, root, checksums={})
    assert not (root / "figures" / "sweep_num_experts.png").exists()
    assert not (root / "tables" / "ablation_num_experts.csv").exists()
    report = (root / "REPORT.md").read_text()
    assert "Only one value (4) in this profile, so there is no sweep table or plot." in report
    assert "No data checksums were supplied" in report
    header = markdown_rows((root / "tables" / "main.md").read_text())[0]
    assert header == [
        "Model", "Description", "CMB (XMedBench)", "CMExam (XMedBench)", "CMMLU-Med",
        "CMB (XMedBench) (gen)", "Average",
    ]  # fmt: skip
    rows = read_csv(root / "tables" / "main.csv")
    assert (
        float(rows[0]["cmb_xmed_gen_acc"])
        == json.loads((root / "eval" / "base" / "cmb_xmed_gen.json").read_text())["results"][
            "cmb_xmed_gen"
        ]["exact_match,none"]
    )


def test_protocol_note_names_models_evaluated_differently(tmp_path):
    root = tmp_path / "ci"
    write_results_tree(root, CI_CONFIG)
    plan = ReportPlan.from_config(CI_CONFIG, root)
    scores = load_scores(plan)
    scores.loc[
        (scores.model == "base") & (scores.task == "cmb_xmed"), ["n_shot", "n_evaluated"]
    ] = [
        "5",
        2000,
    ]
    note = protocol_note(plan, scores)
    assert (
        "CMB (XMedBench): 5-shot, 2,000 of 2,000 questions (base) vs. 0-shot, 4 of 2,000 "
        "questions (lora," in note
    )


def test_checksums_file_must_map_files_to_digests(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"raw/cmb.json": "ab" * 32}))
    bad.write_text(json.dumps(["raw/cmb.json"]))
    assert load_checksums(good) == {"raw/cmb.json": "ab" * 32}
    with pytest.raises(ValueError, match="bad.json: expected a JSON object"):
        load_checksums(bad)


def test_significance_table_recomputes_by_hand_from_the_records(ci_report):
    """Each question scores the fraction of a model's runs (seeds) that answered it right; the
    p-value is the two-sided sign test of the per-question differences (McNemar's with one run
    each), recomputed here from the binomial coefficients."""
    rows = read_csv(ci_report / "tables" / "significance.csv")
    assert list(rows[0]) == [
        "model", "baseline", "benchmark", "n", "delta", "ci_low", "ci_high", "p_value", "p_holm",
    ]  # fmt: skip
    runs = model_runs(model_specs(CI_CONFIG))
    trained = [model for model in runs if model not in ("base",)]
    ladder = ["lora_moe_dense", "lora_moe", "sparsedoctor_noqueue", "sparsedoctor"]
    previous_rung = dict(zip(ladder[1:], ladder, strict=False))
    tasks = CI_CONFIG["evaluation"]["tasks"]
    pairs = {(r["model"], r["baseline"], r["benchmark"]) for r in rows}
    assert pairs == {
        (model, baseline, benchmark)
        for model in trained
        for baseline in ("lora", "base", previous_rung.get(model))
        if baseline and model != baseline
        for benchmark in [*tasks, "average"]
    }
    split = False  # some question splits a model's seeds
    for row in rows:
        chosen = tasks if row["benchmark"] == "average" else [row["benchmark"]]
        mine, theirs = (
            {
                (task, record["id"]): statistics.mean(
                    questions[record["id"]] for questions in answers
                )
                for task in chosen
                for answers in [[
                    {r["id"]: r["correct"] for r in read_jsonl(
                        ci_report / "eval" / run / f"{task}.questions.jsonl")}
                    for run in runs[model]
                ]]
                for record in read_jsonl(ci_report / "eval" / model / f"{task}.questions.jsonl")
            }
            for model in (row["model"], row["baseline"])
        )  # fmt: skip
        a = [mine[key] for key in mine]
        b = [theirs[key] for key in mine]
        split |= any(0 < value < 1 for value in a)
        assert int(row["n"]) == len(a)
        assert float(row["delta"]) == pytest.approx(100 * (sum(a) - sum(b)) / len(a))
        only_a = sum(x > y for x, y in zip(a, b, strict=True))
        only_b = sum(y > x for x, y in zip(a, b, strict=True))
        discordant = only_a + only_b
        tail = sum(math.comb(discordant, k) for k in range(max(only_a, only_b), discordant + 1))
        by_hand = min(1.0, 2 * tail / 2**discordant) if discordant else 1.0
        assert float(row["p_value"]) == pytest.approx(by_hand)
        assert float(row["ci_low"]) <= float(row["delta"]) <= float(row["ci_high"])
        assert float(row["p_holm"]) >= float(row["p_value"])
    assert split
    report = (ci_report / "REPORT.md").read_text()
    assert "## Paired comparisons" in report and "after Holm's correction" in report
    assert "each rung also against the previous one" in report
    assert "the fraction of a model's runs that answered it right" in report


def test_main_table_marks_differences_to_lora_that_hold(ci_report):
    held = {
        (row["model"], row["benchmark"])
        for row in read_csv(ci_report / "tables" / "significance.csv")
        if row["baseline"] == "lora"
        and float(row["p_holm"]) < 0.05
        and row["benchmark"] != "average"  # the table's average is a mean of tasks, not pooled
    }
    header, *rows = markdown_rows((ci_report / "tables" / "main.md").read_text())
    columns = {"CMB (XMedBench)": "cmb_xmed", "CMExam (XMedBench)": "cmexam_xmed"}
    columns |= {"CMMLU-Med": "cmmlu_med"}
    marked = {
        (row[0], columns[name])
        for row in rows
        for name, cell in zip(header, row, strict=True)
        if "\u2020" in cell
    }
    assert marked == {pair for pair in held if pair[0] in {row[0] for row in rows}}
    assert (
        "\u2020: differs from LoRA after Holm's correction"
        in (ci_report / "tables" / "main.md").read_text()
    )


def test_dagger_marks_only_task_cells_whose_difference_to_lora_holds():
    import pandas as pd

    from sdoc_model.report.tables import mark_lora_differences

    cells = pd.DataFrame(
        {"CMB (XMedBench)": ["30.0 ± 1.0", "40.0 ± 1.0"], "Average": ["30.0", "40.0"]},
        index=pd.Index(["lora", "sparsedoctor"], name="Model"),
    )
    significance = pd.DataFrame(
        {
            "model": ["sparsedoctor", "sparsedoctor", "sparsedoctor"],
            "baseline": ["lora", "lora", "base"],
            "benchmark": ["cmb_xmed", "average", "cmb_xmed"],
            "p_holm": [0.01, 0.01, 0.001],
        }
    )
    mark_lora_differences(cells, significance)
    assert cells.loc["sparsedoctor", "CMB (XMedBench)"] == "40.0 ± 1.0 \u2020"
    assert cells.loc["sparsedoctor", "Average"] == "40.0"  # a mean of tasks, not the pooled test
    assert cells.loc["lora", "CMB (XMedBench)"] == "30.0 ± 1.0"


def test_discipline_table_recomputes_from_the_records(ci_report):
    rows = read_csv(ci_report / "tables" / "disciplines.csv")
    assert list(rows[0]) == ["model", "task", "level", "discipline", "n", "acc"]
    main_models = CI_CONFIG["variants"]  # the ci profile has no external models
    # Only CMMLU-Med's questions carry a discipline: its seven subjects, for every main model.
    subjects = [leaf.removeprefix("cmmlu_med_") for leaf in CMMLU_MED]
    assert [(r["model"], r["task"], r["level"], r["discipline"]) for r in rows] == [
        (model, "cmmlu_med", "subject", subject) for subject in subjects for model in main_models
    ]
    runs = model_runs(model_specs(CI_CONFIG))

    def records(run):
        return read_jsonl(ci_report / "eval" / run / "cmmlu_med.questions.jsonl")

    for row in rows:  # the mean over the model's runs (seeds)
        correct = [
            [r["correct"] for r in records(run) if r["discipline"] == row["discipline"]]
            for run in runs[row["model"]]
        ]
        assert int(row["n"]) == len(correct[0]) == CI_CONFIG["evaluation"]["limit"]["cmmlu_med"]
        assert float(row["acc"]) == pytest.approx(statistics.mean(map(statistics.mean, correct)))
    header, *cells = markdown_rows((ci_report / "tables" / "disciplines.md").read_text())
    assert header == ["Benchmark", "Level", "Discipline", "n", *main_models]
    acc = {(r["model"], r["discipline"]): float(r["acc"]) for r in rows}
    for cell in cells:
        shown = [float(text.strip("*")) for text in cell[4:]]
        assert shown == pytest.approx([100 * acc[m, cell[2]] for m in main_models], abs=0.05)
    note = "Left out, their questions carry no discipline: CMB (XMedBench), CMExam (XMedBench)."
    assert note in (ci_report / "tables" / "disciplines.md").read_text()
    section = report_section(ci_report, "## Accuracy by discipline", "## Ablations")
    assert "CMMLU-Med's seven subjects are the only disciplines" in section
    assert "(figures/disciplines.png)" in section


def test_discipline_table_says_when_no_task_has_disciplines(tmp_path):
    import pandas as pd

    from sdoc_model.report.disciplines import discipline_frame, discipline_table, heatmap_frame

    plan = ReportPlan.from_config(CI_CONFIG, tmp_path)
    questions = pd.DataFrame(
        [(model, "cmb_xmed", "q1", True, None) for model in plan.specs],
        columns=["model", "task", "id", "correct", "disciplines"],
    )
    frame = discipline_frame(plan, questions)
    table = discipline_table(plan, frame)
    assert frame.empty and table.cells.empty
    assert "No evaluated task's questions carry a discipline (CMB (XMedBench)" in table.note
    assert heatmap_frame(plan, frame).shape == (len(plan.main_models), 0)


def test_routing_table_recomputes_the_nmi_of_every_layer(ci_report):
    metrics = pytest.importorskip("sklearn.metrics")
    rows = read_csv(ci_report / "tables" / "routing_specialisation.csv")
    assert list(rows[0]) == [
        "model", "run", "task", "dataset", "level", "disciplines", "questions", "tokens",
        "layer", "depth", "module", "nmi",
    ]  # fmt: skip
    plan = ReportPlan.from_config(CI_CONFIG, ci_report)
    layers = layer_names(CI_CONFIG, TINY_LAYERS)
    assert [(r["model"], r["run"], r["layer"]) for r in rows] == [
        (model, run, layer) for model in plan.moe_models for run in plan.runs[model]
        for layer in layers
    ]  # fmt: skip
    for row in rows:
        counts = np.array(
            json.loads((ci_report / "routing" / f"{row['run']}.json").read_text())["datasets"][
                "cmmlu_med"
            ]["counts"][row["layer"]]
        )
        disciplines, experts = np.indices(counts.shape)
        expected = metrics.normalized_mutual_info_score(
            np.repeat(disciplines.ravel(), counts.ravel()),
            np.repeat(experts.ravel(), counts.ravel()),
            average_method="geometric",
        )
        assert float(row["nmi"]) == pytest.approx(expected, rel=1e-9)
        assert row["layer"].endswith(row["module"]) and f".{row['depth']}." in row["layer"]
        assert (row["task"], row["disciplines"], row["questions"]) == ("cmmlu_med", "7", "28")
    header, *cells = markdown_rows((ci_report / "tables" / "routing_specialisation.md").read_text())
    assert header[:5] == ["Model", "Benchmark", "Mean", "Max", "Max at"]
    assert [cell[0] for cell in cells] == plan.moe_models
    for cell in cells:  # each layer's NMI the mean over the model's runs
        by_layer = {
            layer: np.mean(
                [float(r["nmi"]) for r in rows if (r["model"], r["layer"]) == (cell[0], layer)]
            )
            for layer in layers
        }
        assert float(cell[2].strip("*")) == pytest.approx(
            np.mean(list(by_layer.values())), abs=5e-4
        )
        assert float(cell[3].strip("*")) == pytest.approx(max(by_layer.values()), abs=5e-4)


def test_report_explains_expert_specialisation(ci_report):
    section = report_section(ci_report, "## Expert specialisation", "## Training")
    assert "0 when every discipline uses the experts in the same proportions" in section
    assert "its models trained 12 optimizer steps, so these numbers show the measurement" in section
    assert "Mean NMI over the adapted layers: lora_moe_dense " in section
    assert "(figures/routing_nmi.png)" in section and "(figures/routing_usage.png)" in section


def test_a_profile_without_disciplines_says_there_is_nothing_to_measure(tmp_path):
    config = copy.deepcopy(CI_CONFIG) | {"variants": ["base", "lora_moe"], "sweeps": {}}
    config["evaluation"] = config["evaluation"] | {"tasks": ["cmb_xmed", "cmexam_xmed"]}
    root = tmp_path / "unlabelled"
    write_results_tree(root, config)
    for run in ("lora_moe", "lora_moe-seed1"):
        (root / "routing" / f"{run}.json").write_text(
            json.dumps({"model": run, "questions_per_discipline": 4, "datasets": {}})
        )
    build_report(config, root, checksums={})
    text = (root / "tables" / "routing_specialisation.md").read_text()
    assert "No evaluated task's questions carry a discipline" in text
    assert (root / "figures" / "routing_usage.png").is_file()
