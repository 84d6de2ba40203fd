"""CMMLU-Med parity: every test question's 5-shot context, choices and target, byte for byte
as lm-eval's own cmmlu_<subject> tasks build them from the same upstream CSVs.

Both sides are lm-eval tasks, loaded by lm-eval: its stock YAML with only the dataset pointed at
the mirror's CSVs, and this project's cmmlu_med_<subject> task, which prepares its normalised
data from the mirror on first use.
"""

from pathlib import Path

import lm_eval
import pytest
import yaml
from lm_eval.api.task import TaskConfig
from lm_eval.tasks import TaskManager

from sdoc_model.data.benchmarks import CMMLU_MED_SUBJECTS

REPO = Path(__file__).resolve().parents[2]
STOCK_CMMLU = Path(lm_eval.__file__).parent / "tasks" / "cmmlu"
MIRROR_CSVS = "github/haonan-li/CMMLU/data"
SHOTS = 5  # CMMLU's protocol, and num_fewshot of the project's cmmlu_med tasks
QUESTIONS = 1333
# lm-eval's defaults, which both sides keep: "答案： B", examples apart by "\n\n".
LM_EVAL_DEFAULTS = TaskConfig()


@pytest.fixture(scope="module")
def stock_tasks(mirror, tmp_path_factory) -> dict:
    """lm-eval's cmmlu_<subject> tasks by subject, reading the mirror's CSVs, not the Hub."""
    folder = tmp_path_factory.mktemp("stock_cmmlu")
    paths = []
    for subject in CMMLU_MED_SUBJECTS:
        csvs = {
            split: str(mirror / MIRROR_CSVS / split / f"{subject}.csv") for split in ("test", "dev")
        }
        override = {
            "include": str(STOCK_CMMLU / f"cmmlu_{subject}.yaml"),
            "dataset_path": "csv",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": csvs, "cache_dir": str(folder / "hf_cache")},
        }
        path = folder / f"cmmlu_{subject}.yaml"
        path.write_text(yaml.safe_dump(override, allow_unicode=True), encoding="utf-8")
        paths.append(str(path))
    tasks = TaskManager(include_defaults=False).load(paths)["tasks"]
    return {subject: tasks[f"cmmlu_{subject}"] for subject in CMMLU_MED_SUBJECTS}


@pytest.fixture(scope="module")
def project_tasks(mirror, tmp_path_factory) -> dict:
    """The project's cmmlu_med_<subject> tasks by subject, preparing their data on first use
    from the mirror, as on a fresh clone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDOC_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        patch.setenv("SDOC_MIRROR", str(mirror))
        names = [f"cmmlu_med_{subject}" for subject in CMMLU_MED_SUBJECTS]
        tasks = TaskManager(include_path=str(REPO / "tasks"), include_defaults=False).load(names)
        return {subject: tasks["tasks"][f"cmmlu_med_{subject}"] for subject in CMMLU_MED_SUBJECTS}


def test_every_cmmlu_med_context_and_target_is_lm_evals_own(stock_tasks, project_tasks):
    """Description, five shots and question (the whole context), choices and target."""
    compared, differing = 0, []
    for subject, stock in stock_tasks.items():
        ours = project_tasks[subject]
        docs = list(zip(ours.test_docs(), stock.test_docs(), strict=True))
        assert len(ours.fewshot_docs()) == len(stock.fewshot_docs()) == SHOTS
        for our_doc, stock_doc in docs:
            built = [built_by(task, doc) for task, doc in ((ours, our_doc), (stock, stock_doc))]
            compared += 1
            if built[0] != built[1]:
                differing.append(our_doc["id"])
    assert compared == QUESTIONS
    assert not differing, f"{len(differing)} differ from lm-eval's cmmlu: {differing[:10]}"


def built_by(task, doc) -> tuple[str, list[str], str]:
    """The 5-shot context, the choices and the correct one (stock names it by index, ours by
    letter)."""
    choices, target = task.doc_to_choice(doc), task.doc_to_target(doc)
    return (
        task.fewshot_context(doc, SHOTS),
        choices,
        choices[target] if isinstance(target, int) else target,
    )
