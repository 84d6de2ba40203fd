"""Shared test setup: everything runs offline, on small models the tests build themselves."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# Medical exam text in the benchmarks' own style, enough to train a small tokenizer.
SAMPLE_TEXTS = [
    "以下是关于临床知识的单项选择题，请直接给出正确答案的选项。\n\n题目：急性心肌梗死最常见的死亡原因是？\n"
    "A. 心律失常\nB. 心力衰竭\nC. 心源性休克\nD. 心脏破裂\n答案：A",
    "以下是中国医学考试的多项选择题。\n糖尿病的典型症状包括：\n"
    "A. 多饮\nB. 多尿\nC. 多食\nD. 体重增加\n答案：ABC",
    "The quick brown fox jumps over the lazy dog. DNA, RNA and ATP; 123456789.",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from sdoc_model.base_models.prepare import prepare_tiny_model

    return prepare_tiny_model(tmp_path_factory.mktemp("models") / "tiny", SAMPLE_TEXTS * 20)


@pytest.fixture
def single_thread():
    """Bitwise comparisons across processes need the same GEMM blocking on both sides, and
    tiny models run faster on one thread than on two busy ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline copy of the benchmark files; CI has it beside the clone."""
    folder = Path(os.environ.get("SDOC_MIRROR") or REPO.parent / "shared" / "benchdata")
    assert (folder / "MANIFEST.tsv").is_file(), f"no benchmark mirror at {folder}; set SDOC_MIRROR"
    return folder


@pytest.fixture
def cli_error(capsys):
    """Run a command's `main(argv)` on bad input: it must exit with status 1 after an
    `error: ...` message on stderr (last), no traceback. Returns that message."""

    def run(main, argv: list[str]) -> str:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 1
        stderr = capsys.readouterr().err
        assert "Traceback" not in stderr and ("\n" + stderr).count("\nerror: ") == 1, stderr
        return stderr[stderr.index("error: ") :]

    return run
