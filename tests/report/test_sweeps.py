"""A sweep over a choice (cl_labels: expert or discipline) plots and tables like a numeric one:
its values take their rank on the x axis, labelled by name."""

import numpy as np
import pandas as pd
import yaml

from sdoc_model.report.plan import ReportPlan, Sweep
from sdoc_model.report.plots import knob_positions, sweep_figure
from tests.conftest import REPO


def test_the_paper_profile_sweeps_the_contrastive_labels(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    sweep = next(
        s for s in ReportPlan.from_config(config, tmp_path).sweeps if s.knob == "cl_labels"
    )
    assert sweep.points == (("discipline", "sparsedoctor-cl_labels-discipline"),
                            ("expert", "sparsedoctor"))  # fmt: skip
    assert sweep.default == "expert"


def test_a_choice_sweep_plots_at_ranks_labelled_by_name():
    sweep = Sweep("cl_labels", (("discipline", "m-d"), ("expert", "m-e")), "expert")
    assert knob_positions(sweep).tolist() == [0.0, 1.0]
    numeric = Sweep("top_k", ((1, "m1"), (4, "m4")), 2)
    assert knob_positions(numeric).tolist() == [1.0, 4.0]
    wide = pd.DataFrame({"average_acc": [0.3, 0.4], "average_stderr": [0.01, 0.02]})
    figure = sweep_figure(sweep, wide, {"average": "Average"}, "footer")
    axis = figure.axes[0]
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["discipline", "expert"]
    assert np.allclose(axis.get_xticks(), [0, 1])
