"""The training mixture: validated inputs, per-source caps, seeded shuffle, atomic output."""

from pathlib import Path

import pytest

from sdoc_model.data.__main__ import main
from sdoc_model.data.mixture import MixtureInput, build_mixture
from sdoc_model.data.schema import SchemaError, load_records
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import schema_row


def _record(record_id: str, question: str = "下列哪项正确", split: str = "train") -> dict:
    return schema_row(id=record_id, question=question, split=split, options=["甲", "乙"])


def _write(path: Path, records: list[dict]) -> Path:
    write_jsonl(path, records)
    return path


def test_inputs_parse_with_an_optional_cap():
    assert MixtureInput.parse("data/cmexam_train.jsonl:300") == MixtureInput(
        "data/cmexam_train.jsonl", 300
    )
    assert MixtureInput.parse("data/cmb.jsonl") == MixtureInput("data/cmb.jsonl", None)


def test_mixture_caps_each_source_and_shuffles_with_the_seed(tmp_path):
    first = _write(tmp_path / "a.jsonl", [_record(f"a-{i}") for i in range(50)])
    second = _write(tmp_path / "b.jsonl", [_record(f"b-{i}") for i in range(10)])
    inputs = [MixtureInput(str(first), cap=20), MixtureInput(str(second))]
    report = build_mixture(inputs, tmp_path / "mix.jsonl", seed=3)
    mixed = [r["id"] for r in load_records(tmp_path / "mix.jsonl")]
    assert report.rows == len(mixed) == 30
    assert [(s["rows"], s["used"]) for s in report.inputs] == [(50, 20), (10, 10)]
    assert sum(i.startswith("a-") for i in mixed) == 20 and len(set(mixed)) == 30
    assert mixed != sorted(mixed, key=lambda i: (i[0], int(i[2:])))  # shuffled

    build_mixture(inputs, tmp_path / "again.jsonl", seed=3)
    build_mixture(inputs, tmp_path / "other.jsonl", seed=4)
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "mix.jsonl").read_bytes()
    assert (tmp_path / "other.jsonl").read_bytes() != (tmp_path / "mix.jsonl").read_bytes()


def test_duplicate_ids_across_sources_fail_and_write_nothing(tmp_path):
    first = _write(tmp_path / "a.jsonl", [_record("q-1"), _record("q-2")])
    second = _write(tmp_path / "b.jsonl", [_record("q-3"), _record("q-1")])
    out = tmp_path / "mix.jsonl"
    with pytest.raises(
        SchemaError, match=rf"{second}:2: duplicate id 'q-1' \(first at {first}:1\)"
    ):
        build_mixture([MixtureInput(str(first)), MixtureInput(str(second))], out)
    assert not out.exists()


def test_invalid_rows_in_an_input_are_reported_by_line(tmp_path, cli_error):
    broken = _record("q-2")
    broken["answer"] = "C"
    source = _write(tmp_path / "sft.jsonl", [_record("q-1"), broken, _record("q-1")])
    with open(source, "a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    out = tmp_path / "mix.jsonl"
    error = cli_error(main, ["mixture", "--out", str(out), f"{source}:10"])
    assert f"{source}:2: answer 'C' is not among the options 'AB'" in error
    assert f"{source}:4: invalid JSON" in error
    assert f"{source}:3: duplicate id 'q-1' (first at {source}:1)" in error
    assert not out.exists()
