"""The GPU check script's stages, run on the CPU with the tiny shape so the script cannot rot."""

import json

from synthetic import synthetic_data

from sdoc_model import cuda_check


def test_every_stage_of_the_check_runs_and_is_recorded(tmp_path):
    data = tmp_path / "data"
    (data / "eval").mkdir(parents=True)
    for name, rows in synthetic_data().items():
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (data / "eval" / name).write_text(lines, encoding="utf-8")
    train_rows = synthetic_data()["cmexam.jsonl"] * 4
    (data / "train.jsonl").write_text(
        "".join(json.dumps({**row, "id": f"train-{i}"}, ensure_ascii=False) + "\n"
                for i, row in enumerate(train_rows)), encoding="utf-8",
    )  # fmt: skip
    cuda_check.main([
        "--data", str(data), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
        "--steps", "2", "--limit", "2", "--shape", "tiny",
    ])  # fmt: skip
    record = json.loads((tmp_path / "out" / "cuda_check.json").read_text())
    stages = [name for name in record if isinstance(record[name], dict)]
    assert stages == ["prepare", *(f"train_{v}" for v in cuda_check.VARIANTS), "placement_bf16",
                      "evaluate_cmb", "evaluate_cmmlu_med"]
    assert all(record[name]["ok"] for name in stages), {n: record[n].get("error") for n in stages}
    assert record["train_sparsedoctor"]["steps"] == 2
    assert record["placement_bf16"]["logits_dtype"] == "torch.bfloat16"
    assert "acc,none" in record["evaluate_cmb"]["results"]["cmb"]
