"""The GPU check script's stages, run on the CPU with the tiny shape so the script cannot rot."""

import json

from sdoc_model.benchmark import cuda_check
from sdoc_model.method.variants import TRAINED_VARIANTS
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import synthetic_data, write_data_dir


def test_every_stage_of_the_check_runs_and_is_recorded(tmp_path):
    data = write_data_dir(tmp_path / "data")
    train_rows = synthetic_data()["cmexam_xmed"] * 4
    write_jsonl(
        data / "train.jsonl", ({**row, "id": f"train-{i}"} for i, row in enumerate(train_rows))
    )
    cuda_check.main([
        "--data", str(data), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
        "--steps", "2", "--limit", "2", "--shape", "tiny",
    ])  # fmt: skip
    record = json.loads((tmp_path / "out" / "cuda_check.json").read_text())
    stages = [name for name in record if isinstance(record[name], dict)]
    assert stages == [
        "prepare",
        *(f"train_{v}" for v in TRAINED_VARIANTS),
        "placement_bf16",
        "evaluate",
    ]
    assert all(record[name]["ok"] for name in stages), {n: record[n].get("error") for n in stages}
    assert record["train_sparsedoctor"]["steps"] == 2
    assert record["placement_bf16"]["logits_dtype"] == "torch.bfloat16"
    assert "acc,none" in record["evaluate"]["results"]["cmb_xmed"]
    assert "acc,none" in record["evaluate"]["results"]["cmmlu_med"]
