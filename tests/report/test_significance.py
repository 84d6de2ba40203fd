"""The paired statistics against known results."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from sdoc_model.report.significance import compare, holm, mcnemar_exact


def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_pairs():
    # 10 questions only A gets right, 2 only B does, 20 both, 8 neither.
    a = [True] * 10 + [False] * 2 + [True] * 20 + [False] * 8
    b = [False] * 10 + [True] * 2 + [True] * 20 + [False] * 8
    by_hand = 2 * (math.comb(12, 10) + math.comb(12, 11) + math.comb(12, 12)) / 2**12
    assert mcnemar_exact(a, b) == pytest.approx(by_hand) == pytest.approx(0.03857421875)
    assert mcnemar_exact(b, a) == pytest.approx(by_hand)
    assert mcnemar_exact(a, a) == 1.0


def test_holm_matches_the_textbook_example():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_bootstrap_interval_is_seeded_contains_delta_and_has_the_normal_width():
    rng = np.random.default_rng(1)
    a = rng.random(2000) < 0.62
    b = np.where(rng.random(2000) < 0.8, a, rng.random(2000) < 0.5)
    result = compare(a, b)
    assert result == compare(a, b)  # a fixed seed: the same interval every time
    assert result.n == 2000 and result.delta == pytest.approx(100 * (a.mean() - b.mean()))
    assert result.ci_low < result.delta < result.ci_high
    # Paired differences d in {-1, 0, 1}: the interval is about mean(d) +- 1.96 sd(d)/sqrt(n).
    d = a.astype(float) - b.astype(float)
    half_width = 100 * 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert (result.ci_high - result.ci_low) / 2 == pytest.approx(half_width, rel=0.1)
    assert result.p_value == mcnemar_exact(a, b)


def test_identical_answers_give_a_point_interval_and_p_one():
    result = compare([True, False, True], [True, False, True])
    assert (result.delta, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_mcnemar_agrees_with_the_binomial_distribution_one_sided_doubled():
    only_a, only_b = 7, 1
    a = [True] * only_a + [False] * only_b
    b = [False] * only_a + [True] * only_b
    assert mcnemar_exact(a, b) == pytest.approx(2 * binom.sf(only_a - 1, 8, 0.5))


def test_unpaired_vectors_are_refused():
    with pytest.raises(ValueError, match="two equal, non-empty vectors"):
        compare([True, False], [True])


def test_records_of_different_questions_are_not_paired():
    import pandas as pd

    from sdoc_model.report.significance import _paired

    questions = pd.DataFrame(
        [("a", "t", "q1", True), ("a", "t", "q2", False), ("b", "t", "q1", True)],
        columns=["model", "task", "id", "correct"],
    )
    with pytest.raises(ValueError, match=r"a and b were not scored on the same questions of t"):
        _paired(questions, "a", "b", ["t"])
