"""The lm-eval tasks in tasks/, run on a tiny random model over a synthetic data folder."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdoc_model.base_models.prepare import prepare_tiny_model
from sdoc_model.data.benchmarks import CMMLU_MED_SUBJECTS
from sdoc_model.data.sources import dataset
from sdoc_model.eval.answers import answer_choices
from sdoc_model.eval.prompts import (
    describe,
    render_answer,
    render_prompt,
    render_question,
)
from tests.factories import synthetic_data, write_data_dir

REPO = Path(__file__).resolve().parents[2]
TASKS_DIR = REPO / "tasks"
LM_EVAL = Path(sys.executable).parent / "lm_eval"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
ALL_TASKS = ["cmb_xmed", "cmexam_xmed", "cmmlu_med", "cmb_xmed_gen", "cmexam_xmed_gen"]


def _load_task_utils():
    spec = importlib.util.spec_from_file_location("sdoc_task_utils", TASKS_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


task_utils = _load_task_utils()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    folder = write_data_dir(tmp_path_factory.mktemp("eval_data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDOC_DATA_DIR", str(folder))
        for name, value in OFFLINE.items():
            patch.setenv(name, value)
        yield folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    texts = [
        render_prompt(r) + render_answer(r) for rows in synthetic_data().values() for r in rows
    ]
    return prepare_tiny_model(tmp_path_factory.mktemp("models") / "tiny", texts * 4)


@pytest.fixture(scope="session")
def samples(data_dir, tiny_model):
    """Per-question records of three tasks, run once through lm-eval's Python API."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    results = simple_evaluate(
        model=HFLM(pretrained=str(tiny_model), device="cpu", batch_size=1),
        tasks=["cmb_xmed", "cmexam_xmed", "cmmlu_med_anatomy"],
        task_manager=TaskManager(include_path=str(TASKS_DIR)),
        log_samples=True,
    )
    return results["samples"]


def test_cli_runs_every_task_offline(data_dir, tiny_model, tmp_path):
    command = [
        str(LM_EVAL), "--model", "hf", "--model_args", f"pretrained={tiny_model}",
        "--device", "cpu", "--include_path", str(TASKS_DIR), "--tasks", ",".join(ALL_TASKS),
        "--limit", "5", "--output_path", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, env=os.environ, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    (results_file,) = tmp_path.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    subtasks = [f"cmmlu_med_{subject}" for subject in CMMLU_MED_SUBJECTS]
    for task in ["cmb_xmed", "cmexam_xmed", "cmmlu_med", *subtasks]:
        assert "acc,none" in results["results"][task], task
    for task in ["cmb_xmed_gen", "cmexam_xmed_gen"]:
        assert "exact_match,none" in results["results"][task], task
    assert "acc,none" in results["groups"]["cmmlu_med"]
    assert results["n-shot"]["cmmlu_med_anatomy"] == 5
    assert results["n-shot"]["cmb_xmed"] == 0
    # Each result names the files its questions come from, with their sha256.
    sources = results["configs"]["cmb_xmed"]["metadata"]["sources"]
    assert list(sources.values()) == [s.sha256 for s in dataset("cmb_xmed").sources]


def expected_context(task, doc):
    """The prompt built by hand: zero-shot, or CMMLU-Med's first five dev questions first."""
    if task != "cmmlu_med_anatomy":
        return render_prompt(doc)
    shots = [r for r in synthetic_data()["cmmlu_med_dev"] if r["subject"] == "anatomy"]
    examples = "".join(render_question(r) + render_answer(r) + "\n\n" for r in shots)
    return describe(doc) + examples + render_question(doc)


@torch.no_grad()
def loglikelihood(model, tokenizer, context, continuation):
    """Sum of log-probs of the continuation tokens, tokenised as lm-eval's HFLM does it:
    the whole text encoded once, the continuation being what follows the context's tokens."""
    whole = tokenizer.encode(context + continuation)
    n_context = len(tokenizer.encode(context))
    logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0, :-1], dim=-1)
    targets = torch.tensor(whole[n_context:])
    return logprobs[n_context - 1 :].gather(1, targets[:, None]).sum().item()


@pytest.mark.parametrize("task", ["cmb_xmed", "cmexam_xmed", "cmmlu_med_anatomy"])
def test_per_question_scores_match_a_hand_computation(samples, tiny_model, task):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert samples[task]
    for sample in samples[task]:
        doc = sample["doc"]
        context = expected_context(task, doc)
        choices = answer_choices(doc)
        assert [args for args, *_ in sample["arguments"]] == [context] * len(choices)
        continuations = [render_answer(doc | {"answer": choice}) for choice in choices]
        assert [cont for _, cont, *_ in sample["arguments"]] == continuations

        ours = [loglikelihood(model, tokenizer, context, cont) for cont in continuations]
        theirs = [resp[0][0] for resp in sample["resps"]]
        assert ours == pytest.approx(theirs, abs=1e-4)
        chosen = choices[max(range(len(choices)), key=ours.__getitem__)]
        assert sample["acc"] == float(chosen == doc["answer"])


def test_multi_answer_question_compares_every_subset(samples):
    five_options_multi = next(s for s in samples["cmexam_xmed"] if s["doc"]["answer"] == "ACD")
    assert len(five_options_multi["arguments"]) == 31


@pytest.mark.parametrize(
    ("generated", "score"),
    [(" A、C、D", 1.0), ("答案是ACD。", 1.0), ("AC", 0.0), ("ACDE", 0.0), ("：：：", 0.0)],
)
def test_generative_scoring_is_exact_set_match(generated, score):
    doc = synthetic_data()["cmexam_xmed"][0]
    assert task_utils.process_gen_results(doc, [generated]) == {"exact_match": score}


def test_bad_row_is_reported_with_file_and_line(tmp_path, monkeypatch):
    good = synthetic_data()["cmb_xmed"][0]
    bad = good | {"answer": "AB"}  # a single-answer question with two letters
    lines = [json.dumps(good, ensure_ascii=False), "", json.dumps(bad, ensure_ascii=False)]
    path = tmp_path / "normalised" / "cmb_xmed.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("SDOC_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"cmb_xmed\.jsonl:3: .*'AB'"):
        task_utils.load_docs(datasets={"test": "cmb_xmed"})


def test_subject_filter_keeps_one_cmmlu_subject(data_dir):
    splits = task_utils.load_docs(
        datasets={"test": "cmmlu_med", "dev": "cmmlu_med_dev"},
        subject="virology",
        version=1.0,
        pretrained="ignored",  # lm-eval passes the task metadata along
    )
    assert set(splits["test"]["subject"]) == set(splits["dev"]["subject"]) == {"virology"}
    assert len(splits["dev"]) == 5


def test_fresh_clone_runs_the_demo_tasks_with_nothing_prepared(tiny_model, tmp_path, mirror):
    """No resources/, no SDOC_DATA_DIR: the tasks prepare their data from the mirror into the
    cache folder, and the stock CLI writes results naming each task's source checksums."""
    import yaml

    tasks = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["evaluation"]["tasks"]
    env = {key: value for key, value in os.environ.items() if key != "SDOC_DATA_DIR"}
    env |= OFFLINE | {"SDOC_MIRROR": str(mirror), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [
        str(LM_EVAL), "--model", "hf", "--model_args", f"pretrained={tiny_model}",
        "--include_path", str(TASKS_DIR), "--tasks", ",".join(tasks), "--limit", "2",
        "--output_path", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    results = json.loads(results_file.read_text())
    assert set(tasks) <= set(results["results"])
    for name in ("cmb_xmed", "cmexam_xmed"):
        assert "sources" in results["configs"][name]["metadata"]
    assert done.stderr.count("prepared dataset") == 4  # the three test sets and CMMLU's dev
    assert (tmp_path / "cache" / "sdoc_model" / "normalised" / "cmmlu_med.jsonl").is_file()
