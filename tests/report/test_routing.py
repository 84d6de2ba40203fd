"""The normalised mutual information of expert and discipline (sdoc_model.report.routing)."""

import numpy as np
import pytest

from sdoc_model.report.routing import normalised_mutual_information as nmi


def test_nmi_is_0_for_a_routing_independent_of_discipline():
    # Every discipline sends its tokens to the experts in the same proportions.
    assert nmi(np.outer([30, 50, 20], [4, 1, 2, 3])) == pytest.approx(0, abs=1e-12)


def test_nmi_is_1_for_a_one_to_one_mapping():
    assert nmi(np.diag([10, 20, 30, 40])) == pytest.approx(1)
    assert nmi(7 * np.eye(4)[[2, 0, 3, 1]]) == pytest.approx(1)  # whatever the expert numbers


def test_nmi_of_a_partial_specialisation_lies_between():
    assert 0 < nmi([[8, 2], [3, 7]]) < 1
    assert nmi([[0, 0], [0, 0]]) == nmi([[5, 3, 2]]) == 0  # no tokens; one discipline


def test_nmi_equals_scikit_learns_on_the_expanded_labels():
    metrics = pytest.importorskip("sklearn.metrics")
    counts = np.random.default_rng(0).integers(0, 20, (7, 8))
    disciplines, experts = np.indices(counts.shape)
    expected = metrics.normalized_mutual_info_score(
        np.repeat(disciplines.ravel(), counts.ravel()),
        np.repeat(experts.ravel(), counts.ravel()),
        average_method="geometric",
    )
    assert nmi(counts) == pytest.approx(expected, rel=1e-12)
