"""Prompt formats: literal strings, and parity with lm-eval's own cmmlu task files."""

from pathlib import Path

import lm_eval
import pytest
import yaml
from lm_eval.api.task import TaskConfig
from lm_eval.utils import apply_template

from sdoc_model.data.benchmarks import CMMLU_MED_SUBJECTS
from sdoc_model.eval.answers import answer_choices
from sdoc_model.eval.prompts import (
    ANSWER_DELIMITER,
    describe,
    options,
    render_answer,
    render_prompt,
    render_question,
)
from tests.factories import schema_row

LM_EVAL_CMMLU = Path(lm_eval.__file__).parent / "tasks" / "cmmlu"


def question(**fields):
    options = ["口服铁剂", "输血", "注射铁剂", "维生素B12", "叶酸"]
    return schema_row(
        **{"benchmark": "cmb", "question": "治疗缺铁性贫血首选", "options": options} | fields
    )


CMMLU_ROW = question(
    benchmark="cmmlu_med",
    question="人体最大的器官是 ",
    options={"A": "心脏", "B": "皮肤", "C": "肝脏", "D": "肺"},
    answer="B",
    subject="anatomy",
)


def test_cmmlu_med_prompt_is_the_literal_cmmlu_prompt():
    assert render_prompt(CMMLU_ROW) == (
        "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n"
        "人体最大的器官是\nA. 心脏\nB. 皮肤\nC. 肝脏\nD. 肺\n答案："
    )
    assert render_answer(CMMLU_ROW) == " B"


def test_single_choice_exam_prompt_lists_every_option():
    assert render_prompt(question()) == (
        "以下是中国医学考试的单项选择题，请直接给出正确答案的选项。\n\n"
        "治疗缺铁性贫血首选\nA. 口服铁剂\nB. 输血\nC. 注射铁剂\nD. 维生素B12\nE. 叶酸\n答案："
    )
    assert render_answer(question()) == " A"


def test_multi_choice_exam_prompt_says_so_and_names_the_subject():
    row = question(benchmark="cmexam", question_type="multi", answer="ACE", subject="血液内科")
    assert describe(row) == (
        "以下是中国医学考试中关于血液内科的多项选择题，请直接给出所有正确答案的选项。\n\n"
    )
    assert render_answer(row) == " ACE"


def test_options_absent_from_a_question_are_dropped():
    # As datasets returns a 4-option row next to 5-option rows: the missing letter is None.
    row = question(options={"B": "输血", "A": "口服铁剂", "C": "注射铁剂", "D": "叶酸", "E": None})
    assert options(row) == {"A": "口服铁剂", "B": "输血", "C": "注射铁剂", "D": "叶酸"}
    assert render_question(row).endswith("D. 叶酸\n答案：")


def test_unknown_cmmlu_subject_is_named():
    with pytest.raises(ValueError, match="astronomy"):
        describe(CMMLU_ROW | {"subject": "astronomy"})


def _lm_eval_yaml(name):
    return yaml.safe_load((LM_EVAL_CMMLU / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("subject", sorted(CMMLU_MED_SUBJECTS))
def test_cmmlu_med_matches_lm_eval_cmmlu_task_files(subject):
    """Header, question text, choices and delimiter as lm-eval's installed cmmlu YAMLs say."""
    template = _lm_eval_yaml("_default_template_yaml")
    task = _lm_eval_yaml(f"cmmlu_{subject}.yaml")
    row = CMMLU_ROW | {"subject": subject}
    cmmlu_doc = {"Question": row["question"], **row["options"], "Answer": row["answer"]}

    assert describe(row) == task["description"]
    assert render_question(row) == apply_template(template["doc_to_text"], cmmlu_doc)
    assert answer_choices(row) == template["doc_to_choice"]
    assert "target_delimiter" not in template
    assert ANSWER_DELIMITER == TaskConfig().target_delimiter
