"""`cl_labels: discipline`: the training rows' disciplines become the contrastive labels, and
training data without any discipline is refused, naming the key."""

import pytest
import torch

from sdoc_model.method.model import SparseDoctorModel
from sdoc_model.train.data import load_sft_examples
from sdoc_model.train.loop import train
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import train_row

ADAPTER = {"num_experts": 4, "rank": 4, "top_k": 2, "queue_size": 8, "cl_labels": "discipline"}
TRAINING = {"max_steps": 2, "batch_size": 4, "max_length": 96, "save_every": 2}
FIELDS = ["内科学", "外科学", None]  # the third row of each three has no discipline

pytestmark = pytest.mark.usefixtures("single_thread")


def write_rows(path, labelled: bool):
    rows = [
        train_row(
            i,
            f"{i}. 急性心肌梗死最常见的死亡原因是？",
            options=["心律失常", "心衰", "休克", "破裂"],
        )
        | ({"disciplines": {"exam_type": FIELDS[i % 3]}} if labelled and FIELDS[i % 3] else {})
        for i in range(12)
    ]
    write_jsonl(path, rows)
    return path


def test_rows_get_the_index_of_their_coarsest_discipline(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = load_sft_examples(write_rows(tmp_path / "t.jsonl", True), tokenizer, 96, False)
    # Sorted labels: 内科学 -> 0, 外科学 -> 1; unlabelled rows -> -1.
    assert [e.discipline for e in examples[:3]] == [0, 1, -1]


def test_the_sequences_disciplines_reach_the_model(tiny_model_dir, tmp_path, monkeypatch):
    seen = []
    forward = SparseDoctorModel.forward

    def recording_forward(self, *args, discipline_ids=None, **kwargs):
        seen.append(discipline_ids.clone())
        return forward(self, *args, discipline_ids=discipline_ids, **kwargs)

    monkeypatch.setattr(SparseDoctorModel, "forward", recording_forward)
    root = tmp_path / "run"
    summary = train(
        "sparsedoctor", tiny_model_dir, write_rows(tmp_path / "t.jsonl", True), root / "m",
        root / "logs", root / "c", adapter=ADAPTER, training=TRAINING,
    )  # fmt: skip
    assert summary["steps"] == 2
    labels = torch.cat(seen)
    assert set(labels.tolist()) <= {-1, 0, 1} and (labels >= 0).any()


def test_unlabelled_training_data_is_refused_naming_the_key(tiny_model_dir, tmp_path):
    root = tmp_path / "run"
    with pytest.raises(ValueError, match="adapter.cl_labels is discipline"):
        train(
            "sparsedoctor", tiny_model_dir, write_rows(tmp_path / "t.jsonl", False), root / "m",
            root / "logs", root / "c", adapter=ADAPTER, training=TRAINING,
        )  # fmt: skip
