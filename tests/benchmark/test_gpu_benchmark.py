"""The 7B-shaped GPU benchmark's CPU smoke version: every case runs and the whole-model figures
are extrapolated from the two measured depths."""

import json

import pytest

from sdoc_model.benchmark.gpu import extrapolate, main


def test_extrapolation_from_two_depths_is_linear_in_the_layers():
    assert extrapolate(10.0, 14.0, 2, 4, 28) == (62.0, 2.0)


def test_tiny_smoke_run_measures_every_case(tmp_path, single_thread, capsys):
    out = tmp_path / "gpu.json"
    main(["--shape", "tiny", "--seq-len", "32", "--steps", "1", "--out", str(out)])
    figures = json.loads(out.read_text())
    for case in ("lora", "lora+ckpt", "sparsedoctor", "sparsedoctor+ckpt"):
        assert figures[case]["step_s"] > 0 and figures[case]["tokens_per_s"] > 0
        assert figures[case]["mfu"] is None  # no GPU peak to compare with on the CPU
    assert figures["sparsedoctor/lora"] == pytest.approx(
        figures["sparsedoctor"]["step_s"] / figures["lora"]["step_s"]
    )
    assert figures["eval_forward_tokens_per_s"] > 0
    assert "4-layer model from depths 2 and 4" in capsys.readouterr().out


def test_depths_must_increase(cli_error):
    assert "--depths" in cli_error(main, ["--shape", "tiny", "--depths", "4", "2"])
