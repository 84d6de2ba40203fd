"""Pinned benchmark and training sources, and the registry of datasets built from them.

Every file is pinned by content: by the sha256 of its bytes, or, for a Hugging Face file, by a
full 40-hex commit, whose LFS pointer fixes the bytes (huggingface_hub fetches it at that
commit, and download.py checks the bytes against the pointer's sha256). A file with neither is
refused when the Source is made. Raw GitHub files are always pinned by sha256: nothing checks
a GitHub commit's bytes on the way.

Where the hashes come from:

* Files in the offline mirror (see SDOC_MIRROR): commit, path and sha256 are copied from its
  MANIFEST.tsv, and the tests check them against the mirror.
* CMB-Exam test questions (Hugging Face commit 935fbc09...) and the three official CMExam
  CSVs (GitHub commit fadb22c8...): not in the mirror and not reachable from the machine this
  was written on. The commit and sha256 values come from another project's published
  download manifest (found by code search; the sha256 it gives for the CMB answer key equals
  the mirror's), so they are believed right but were not verified here. A wrong value fails
  loudly as a checksum mismatch, never silently.
* CMB-Exam train and val: pinned by the Hugging Face commit alone (no sha256 is known). The
  downloader logs the sha256 it received; pinning it here as well makes the file usable from
  a mirror too.

Local layout: a file is stored under `raw_dir / mirror_path(url)`, the same relative path it
has in the mirror:

    https://raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH
        -> github/OWNER/REPO/PATH
    https://huggingface.co/datasets/OWNER/NAME/resolve/REVISION/PATH
        -> huggingface/datasets/OWNER/NAME/PATH
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from sdoc_model.data.benchmarks import CMB, CMEXAM, CMMLU_MED, CMMLU_MED_SUBJECTS

COMMIT = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class HubFile:
    """A file of a Hugging Face dataset repository, as huggingface_hub names it."""

    repo_id: str  # OWNER/NAME
    revision: str
    filename: str  # path inside the repository


@dataclass(frozen=True)
class Source:
    """One pinned file: where to fetch it, where it lives locally, and its expected sha256."""

    url: str
    path: str  # relative to a raw-data folder or to the mirror
    sha256: str | None  # None only for a Hugging Face file at a full commit (module docstring)

    def __post_init__(self) -> None:
        if self.sha256 is not None and not SHA256.fullmatch(self.sha256):
            raise ValueError(f"{self.url}: sha256 must be 64 lowercase hex digits: {self.sha256!r}")
        hub = self.hub_file
        if self.sha256 is None and (hub is None or not COMMIT.fullmatch(hub.revision)):
            got = f"revision {hub.revision!r}" if hub else "not a Hugging Face URL"
            raise ValueError(
                f"{self.url} is not pinned by content ({got}): give its sha256, or, for a "
                f"Hugging Face file, a full 40-hex commit as its revision"
            )

    @property
    def hub_file(self) -> HubFile | None:
        """The Hugging Face dataset file this URL names; None for any other URL."""
        return _hub_file(self.url)


def _hub_file(url: str) -> HubFile | None:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.netloc != "huggingface.co" or len(segments) < 6 or segments[0] != "datasets":
        return None
    _, owner, name, resolve, revision, *rest = segments
    if resolve != "resolve":
        return None
    return HubFile(f"{owner}/{name}", revision, "/".join(rest))


def mirror_path(url: str) -> str:
    """The file's path relative to a mirror (and to the local raw-data folder)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.netloc == "raw.githubusercontent.com" and len(segments) >= 4:
        owner, repo, _commit, *rest = segments
        return str(PurePosixPath("github", owner, repo, *rest))
    if hub := _hub_file(url):
        return str(PurePosixPath("huggingface", "datasets", hub.repo_id, hub.filename))
    raise ValueError(f"no mirror mapping for {url!r}: expected a raw GitHub or Hugging Face URL")


def github_file(repo: str, commit: str, path: str, sha256: str) -> Source:
    url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
    return Source(url=url, path=mirror_path(url), sha256=sha256)


def huggingface_dataset_file(repo: str, revision: str, path: str, sha256: str | None) -> Source:
    url = f"https://huggingface.co/datasets/{repo}/resolve/{revision}/{path}"
    return Source(url=url, path=mirror_path(url), sha256=sha256)


# --- XMedBench (Apollo): the demo CMB and CMExam sets -------------------------------------
APOLLO = ("FreedomIntelligence/Apollo", "639c9e884dbf9e93533fd18040a8662c11adf7d4")
XMED_CMB_TEST = github_file(
    *APOLLO,
    "metadata/test/zh/cmb-single.jsonl",
    "eccb32fd397cd6eb109630ebdc06fc8cab51a698fdbb997220757bbd1e27e20c",
)
XMED_CMB_DEV = github_file(
    *APOLLO,
    "metadata/dev/exam/zh/cmb-single.jsonl",
    "01e72510bd17a9a3a913f68b6ef20b5e05a7c10efb03db5d368cafdfbc5cfc7e",
)
XMED_CMEXAM_TEST = github_file(
    *APOLLO,
    "metadata/test/zh/cmexam.jsonl",
    "5860c1e05cedf4d6d05e85ea13e9f576ec9bb5b92785410bad53209bc84e69c8",
)
XMED_CMEXAM_DEV = github_file(
    *APOLLO,
    "metadata/dev/exam/zh/cmexam.jsonl",
    "f3d378a5664f882b550ab61afb7ea4259bbebe56d9604112feda6b56fd08de50",
)

# --- CMMLU: the 7 medical subjects (the Baichuan2 / Apollo definition of CMMLU-Med) -------
CMMLU_REPO = ("haonan-li/CMMLU", "d6e7b716d8ac694f38969a6c0407437d1fded799")
_CMMLU_SHA256 = {
    "data/test/anatomy.csv": "b0488d7a394473ba9f3d6ba92a4a88f9c5b7738bc812b8aaea057218c9cf909c",
    "data/test/clinical_knowledge.csv": (
        "f203dff6c9ae45611ba380f2a60453c2d1440303e9d3304c8cb42c1886edd49c"
    ),
    "data/test/college_medicine.csv": (
        "aa24898b813f7c9567e8ed4cda70ddc79082630bb6bc00939018d65b1de70988"
    ),
    "data/test/genetics.csv": "54988038f3ac9e07a337411d393315429e92ae97b76fab24ebcda0c0c65ecc78",
    "data/test/nutrition.csv": "7e407acf9be29fcad7e73796bfec196af3c3c16d48f44eb82332a887eb097941",
    "data/test/traditional_chinese_medicine.csv": (
        "dfbb4f311649576bb20e165cfdff0d1d5633d64e156eaa5bb57373d491418b16"
    ),
    "data/test/virology.csv": "ac411d3d869e86bce60b8aab78e568fb74f607da2ac188ce11dcf55eb018b7ba",
    "data/dev/anatomy.csv": "5e2d407357f3ad71d267d615ebdf0dba2ff720548cf504f87026c8e15990d82e",
    "data/dev/clinical_knowledge.csv": (
        "7197883c51ee9f42fd89372d6dcae809adcdef37e89718640fb1356abfeca540"
    ),
    "data/dev/college_medicine.csv": (
        "9f54c3fc7e9fab4e1583afb6be85f21e9b8b83a2bcbaff336df68e2d4296ee04"
    ),
    "data/dev/genetics.csv": "cca416a0efc91c77af33cb0e9674853e1ff31b2573d09f94b1b9b36e1bbae2b9",
    "data/dev/nutrition.csv": "8b318b013c5e17074c7efdf11d67a2f7fd55f1ae457bf77c48d110f6e4ee3f6e",
    "data/dev/traditional_chinese_medicine.csv": (
        "345875ca92e284db9a55cb697fdccce270efdd588d7f60d9276a125ea6ed366d"
    ),
    "data/dev/virology.csv": "049ffecfb092b2a6d3299e67737c3a0c468a2e21968adaabb29771e4d2f3197c",
}


def _cmmlu_med(split: str) -> tuple[Source, ...]:
    paths = (f"data/{split}/{subject}.csv" for subject in CMMLU_MED_SUBJECTS)
    return tuple(github_file(*CMMLU_REPO, path, _CMMLU_SHA256[path]) for path in paths)


# --- CMB-Exam: official answer key (GitHub) and questions (Hugging Face) -------------------
CMB_TEST_ANSWER_KEY = github_file(
    "FreedomIntelligence/CMB",
    "6c8ece46097dae736c6805dd3b831e1a38c08971",
    "data/CMB-test-choice-answer.json",
    "42130b20f7660a83dd92f3c005eb6a8ef1221c98d9b27d3351204143944b532f",
)
CMB_HF = ("FreedomIntelligence/CMB", "935fbc09edf1303d89872b21265ff597f426ac0d")  # a commit
CMB_EXAM_TEST = huggingface_dataset_file(
    *CMB_HF,
    "CMB-Exam/CMB-test/CMB-test-choice-question-merge.json",
    # Third-party value, not verified offline (see the module docstring).
    "99e6e858dd1955fe2b27fd1da75a7be8fbf6d27059fdb8cf61bc28383a68129c",
)
# sha256 unknown: pinned by the commit alone (see the module docstring).
CMB_EXAM_VAL = huggingface_dataset_file(*CMB_HF, "CMB-Exam/CMB-val/CMB-val-merge.json", None)
CMB_EXAM_TRAIN = huggingface_dataset_file(*CMB_HF, "CMB-Exam/CMB-train/CMB-train-merge.json", None)

# --- CMExam: official CSVs (GitHub) and the published xlsx copy of its validation split -----
CMEXAM_REPO = ("williamliujl/CMExam", "fadb22c89beb1b7115dc36460ba792eb96b7b972")
# The three CSV hashes are third-party values, not verified offline (see the module docstring).
CMEXAM_TRAIN = github_file(
    *CMEXAM_REPO,
    "data/train.csv",
    "3d6ca5e2499c510956534740c95179c483d9d47d2531e39fc5069333ffd23724",
)
CMEXAM_VAL = github_file(
    *CMEXAM_REPO, "data/val.csv", "58cc9776b2f17fdc3a235ceec9ae153ee3f617703293dda661c6decbffb1f190"
)
CMEXAM_TEST = github_file(
    *CMEXAM_REPO,
    "data/test_with_annotations.csv",
    "e998f69b3f8108bf08bcb8cc9a2a6ed276afeabde6ba3caa3015789b1f6fd407",
)
CMEXAM_VAL_XLSX = github_file(
    "kyre-99/CMExam-Dataset",
    "fbfa83c5d7f86b9c0c0190beda678d7a85367b8a",
    "val.xlsx",
    "635448289ada26e163a352b150861e501ab8198bc338dafc1c4b6034210b02cf",
)


@dataclass(frozen=True)
class DatasetSpec:
    """A normalised dataset: which files it is read from and which reader parses them."""

    benchmark: str  # a name of sdoc_model.eval.tasks.BENCHMARK_LABELS
    split: str
    reader: str  # a key of sdoc_model.data.normalise.READERS
    files: tuple[Source, ...]
    answer_key: Source | None = None  # joined by question id (CMB-Exam test)
    disciplines: bool = False  # its rows carry discipline labels (see normalise.py)
    questions: int | None = None  # published size of an evaluation set (planning, sdoc cost)

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every file to download for this dataset."""
        return self.files + ((self.answer_key,) if self.answer_key else ())


DATASETS: dict[str, DatasetSpec] = {
    # demo / CI evaluation sets (in the mirror)
    "cmb_xmed": DatasetSpec(CMB, "test", "xmedbench_jsonl", (XMED_CMB_TEST,), questions=2000),
    "cmb_xmed_dev": DatasetSpec(CMB, "dev", "xmedbench_jsonl", (XMED_CMB_DEV,)),
    "cmexam_xmed": DatasetSpec(
        CMEXAM, "test", "xmedbench_jsonl", (XMED_CMEXAM_TEST,), questions=2000
    ),
    "cmexam_xmed_dev": DatasetSpec(CMEXAM, "dev", "xmedbench_jsonl", (XMED_CMEXAM_DEV,)),
    "cmmlu_med": DatasetSpec(
        CMMLU_MED, "test", "cmmlu_csv", _cmmlu_med("test"), disciplines=True, questions=1333
    ),
    "cmmlu_med_dev": DatasetSpec(
        CMMLU_MED, "dev", "cmmlu_csv", _cmmlu_med("dev"), disciplines=True
    ),
    # demo training source (in the mirror)
    "cmexam_val_xlsx": DatasetSpec(CMEXAM, "val", "cmexam_xlsx", (CMEXAM_VAL_XLSX,)),
    # paper profile (downloaded)
    "cmb_exam_test": DatasetSpec(
        CMB,
        "test",
        "cmb_exam_json",
        (CMB_EXAM_TEST,),
        CMB_TEST_ANSWER_KEY,
        disciplines=True,
        questions=11200,
    ),
    "cmb_exam_val": DatasetSpec(CMB, "val", "cmb_exam_json", (CMB_EXAM_VAL,), disciplines=True),
    "cmb_exam_train": DatasetSpec(
        CMB, "train", "cmb_exam_json", (CMB_EXAM_TRAIN,), disciplines=True
    ),
    "cmexam_train": DatasetSpec(CMEXAM, "train", "cmexam_csv", (CMEXAM_TRAIN,)),
    "cmexam_val": DatasetSpec(CMEXAM, "val", "cmexam_csv", (CMEXAM_VAL,)),
    "cmexam_test": DatasetSpec(
        CMEXAM, "test", "cmexam_csv", (CMEXAM_TEST,), disciplines=True, questions=6811
    ),
}


def dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
