"""Every command line reports bad input the same way: `error: ...` naming the file, row or key,
exit status 1, no traceback."""

import importlib

import pytest


@pytest.fixture
def bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("adapter: [unclosed\n")
    return path


CASES = {
    "sdoc": ("sdoc_model.cli", ["prepare-model", "--kind", "tiny", "--out", "{tmp}/m",
             "--texts", "{tmp}/missing.jsonl"], "missing.jsonl"),
    "data": ("sdoc_model.data.__main__", ["normalise", "cmexam_test", "--raw-dir", "{tmp}",
             "--out", "{tmp}/out.jsonl"], "download cmexam_test"),
    "train": ("sdoc_model.train.cli", ["--variant", "lora", "--base-model", "{tmp}",
              "--train-file", "{tmp}/t.jsonl", "--model-dir", "{tmp}/m", "--log-dir", "{tmp}/l",
              "--checkpoint-dir", "{tmp}/c", "--config", "{yaml}"], "bad.yaml: not valid YAML"),
    "report": ("sdoc_model.report.__main__", ["--config", "{yaml}"], "bad.yaml: not valid YAML"),
    "readme": ("sdoc_model.report.readme", ["{tmp}/README.md", "--results", "{tmp}/nowhere"],
               "README.md"),
    "benchmark": ("sdoc_model.benchmark.__main__", ["--layer-shapes", "huge"],
                  "unknown model shape 'huge'"),
    "tasks": ("sdoc_model.eval.tasks", ["--write", "{tmp}/no/such/folder"], "no/such/folder"),
}  # fmt: skip


@pytest.mark.parametrize("command", CASES)
def test_bad_input_is_one_error_line_and_exit_status_1(command, tmp_path, bad_yaml, cli_error):
    module, argv, named = CASES[command]
    argv = [arg.format(tmp=tmp_path, yaml=bad_yaml) for arg in argv]
    main = importlib.import_module(module).main
    assert named in cli_error(main, argv)
