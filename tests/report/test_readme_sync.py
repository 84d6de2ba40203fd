import json

import pytest

from sdoc_model.report.readme import BEGIN, END, sync_readme


@pytest.fixture
def results(tmp_path):
    results = tmp_path / "results" / "demo"
    (results / "tables").mkdir(parents=True)
    (results / "figures").mkdir()
    (results / "tables" / "main.md").write_text(
        "| Model | CMB |\n| :-- | --: |\n| lora | 31.0 ± 2.0 |\n"
    )
    (results / "figures" / "sweep_top_k.png").write_bytes(b"png")
    (results / "figures" / "sweep_num_experts.png").write_bytes(b"png")
    (results / "provenance.json").write_text(
        json.dumps(
            {
                "git": {"commit": "a" * 40, "dirty": False},
                "runs": {"training": ["bbbbbbb"], "evaluation": ["bbbbbbb", "ccccccc"]},
            }
        )
    )
    return results


def test_sync_replaces_only_the_marked_block_with_generated_results(tmp_path, results):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{BEGIN}\nold numbers\n{END}\n\n## After\n")
    sync_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith(f"{END}\n\n## After\n")
    assert "old numbers" not in text
    assert "| lora | 31.0 ± 2.0 |" in text
    assert "](results/demo/figures/sweep_num_experts.png)" in text
    assert "trained at commit `bbbbbbb`, evaluated at `bbbbbbb`, `ccccccc`" in text
    assert "report built at commit `aaaaaaaaaaaa`" in text
    assert "[results/demo/REPORT.md](results/demo/REPORT.md)" in text
    sync_readme(readme, results)
    assert readme.read_text() == text  # idempotent


def test_sync_refuses_a_readme_without_markers(tmp_path, results):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    with pytest.raises(ValueError, match="no results markers"):
        sync_readme(readme, results)
