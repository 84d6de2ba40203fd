"""Answer choices, letter extraction from free text, exact set-match scoring."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdoc_model.eval.answers import answer_choices, exact_set_match, extract_answer


def row(letters, question_type="single"):
    return {
        "options": {letter: f"选项{letter}" for letter in letters},
        "question_type": question_type,
    }


def test_single_answer_choices_are_the_letters():
    assert answer_choices(row("ABCD")) == ["A", "B", "C", "D"]
    assert answer_choices(row("ABCDEF")) == list("ABCDEF")


def test_multi_answer_choices_are_every_subset_in_order():
    choices = answer_choices(row("ABCDE", "multi"))
    assert len(choices) == 2**5 - 1
    assert choices[:6] == ["A", "B", "C", "D", "E", "AB"]
    assert choices[-1] == "ABCDE"
    assert "ACD" in choices and "CA" not in choices


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("B.", "B"),
        (" B", "B"),
        ("(B)", "B"),
        ("【B】", "B"),
        ("答案是B", "B"),
        ("答：B", "B"),
        ("答案：A、C", "AC"),
        ("A和C", "AC"),
        ("ABD", "ABD"),
        ("DBA", "ABD"),
        ("A, C, D", "ACD"),
        ("b", "B"),
        ("Ｂ", "B"),
        ("（Ｃ）", "C"),
        ("答案：Ｄ", "D"),
        ("我认为选B，因为阿司匹林抑制血小板聚集。", "B"),
        ("正确答案为 C 和 D", "CD"),
        ("答案应该是 E。", "E"),
        ("The answer is C.", "C"),
        ("B. 十二指肠溃疡", "B"),
        ("B\nC. 注射铁剂", "B"),
        ("答案：B。解析：DNA聚合酶负责复制，A项RNA聚合酶负责转录。", "B"),
        ("B，其他选项A、C均错误", "B"),
        ("DNA复制的主要酶是DNA聚合酶", ""),
        ("ATP是能量货币", ""),
        ("我不确定", ""),
        ("", ""),
        ("：：：：", ""),
    ],
)
def test_extract_answer_from_model_outputs(text, expected):
    assert extract_answer(text, "ABCDE") == expected


def test_letters_that_are_not_options_are_ignored():
    assert extract_answer("E", "ABCD") == ""
    assert extract_answer("答案是F", "ABCDEF") == "F"


@given(
    st.sets(st.sampled_from("ABCDE"), min_size=1),
    st.sampled_from(["", "、", ", ", "和", " 和 ", " "]),
    st.sampled_from(["", "答案：", "答案是", "正确答案为 ", "我选"]),
)
def test_any_written_answer_round_trips(letters, separator, prefix):
    written = prefix + separator.join(sorted(letters)) + "。"
    assert extract_answer(written, "ABCDE") == "".join(sorted(letters))


def test_exact_set_match():
    assert exact_set_match("ACD", "ACD")
    assert exact_set_match("DCA", "ACD")
    assert not exact_set_match("AC", "ACD")
    assert not exact_set_match("ACDE", "ACD")
    assert not exact_set_match("", "A")
