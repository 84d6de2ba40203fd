"""The speed benchmark's smoke run: every section runs and prints its figures."""

from sdoc_model.benchmark.__main__ import main


def test_quick_run_prints_every_section(capsys, single_thread):
    main(["--quick", "--dispatch-sweep"])
    out = capsys.readouterr().out
    for title in ("layer forward+backward", "dispatch sweep", "training step", "memory queue"):
        assert f"== {title}" in out, out
    assert "masked loop" in out and "sparsedoctor/lora" in out
    assert "constant: True" in out
