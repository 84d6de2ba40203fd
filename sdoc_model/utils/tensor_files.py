"""Safetensors files that say when they are damaged, and nested states kept without pickle.

`save_tensors` writes the sha256 of a file's tensor data into its header; `load_tensors` checks
the header, the length, that sha256 and that every floating-point tensor is finite, and raises
CorruptFileError naming the file and what is wrong. `seal` adds the sha256 to a file another
library wrote (peft's adapter). `save_state` / `load_state` keep a nested state (optimizer,
scheduler, random generators): its tensors in the file, its outline as JSON in the same header.
Nothing here unpickles, so a planted file can fail to load but never runs code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from sdoc_model.utils.atomic import write_bytes

SHA256_KEY = "sdoc.sha256"  # of the tensor data: everything after the header
OUTLINE_KEY = "sdoc.outline"
METADATA = "__metadata__"


class CorruptFileError(ValueError):
    """A tensor file is truncated, changed since it was written, or holds non-finite values."""


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write `tensors` (moved to the CPU) as safetensors with their sha256 in the header."""
    cpu = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
    header, data = _parse(save_safetensors(cpu, metadata), Path(path))
    write_bytes(path, _sealed(header, data))


def seal(path: str | Path) -> None:
    """Add the sha256 of its tensor data to a safetensors file's header (no-op if present)."""
    path = Path(path)
    header, data = _parse(path.read_bytes(), path)
    if SHA256_KEY in header.get(METADATA, {}):
        _check_sha256(header, data, path)
        return
    write_bytes(path, _sealed(header, data))


def load_tensors(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and header metadata of a safetensors file, after checking that it is whole
    (its sha256, when it carries one) and that every floating-point tensor is finite."""
    path = Path(path)
    raw = path.read_bytes()
    header, data = _parse(raw, path)
    _check_sha256(header, data, path)
    try:
        tensors = load_safetensors(raw)
    except Exception as err:  # safetensors raises its own error types for a malformed file
        raise CorruptFileError(f"{path}: not a valid safetensors file ({err})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise CorruptFileError(
                f"{path}: tensor {name} holds {bad} non-finite value(s) of {tensor.numel()}"
            )
    return {name: t.to(device) for name, t in tensors.items()}, header.get(METADATA, {})


def save_state(state: Any, path: str | Path) -> None:
    """A nested state of dicts, lists, tuples, scalars, tensors and numpy arrays, as one file."""
    tensors: dict[str, torch.Tensor] = {}
    outline = _outline(state, tensors, ())
    save_tensors(tensors, path, {OUTLINE_KEY: json.dumps(outline)})


def load_state(path: str | Path, device: str | torch.device = "cpu") -> Any:
    tensors, metadata = load_tensors(path, device)
    if OUTLINE_KEY not in metadata:
        raise CorruptFileError(f"{path}: holds tensors but no {OUTLINE_KEY} outline")
    return _rebuild(json.loads(metadata[OUTLINE_KEY]), tensors, path)


# ---- the file format: 8-byte header length, JSON header, tensor data ----


def _parse(raw: bytes, path: Path) -> tuple[dict, bytes]:
    if len(raw) < 8:
        raise CorruptFileError(f"{path}: {len(raw)} bytes, too short for a safetensors header")
    length = int.from_bytes(raw[:8], "little")
    if 8 + length > len(raw):
        raise CorruptFileError(
            f"{path}: its header claims {length:,} bytes but the file has {len(raw):,}: "
            "truncated, or not a safetensors file"
        )
    try:
        header = json.loads(raw[8 : 8 + length])
        needed = max(
            (entry["data_offsets"][1] for key, entry in header.items() if key != METADATA),
            default=0,
        )
        if not isinstance(header.get(METADATA, {}), dict):
            raise TypeError(METADATA)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise CorruptFileError(f"{path}: its header is not valid safetensors JSON") from None
    data = raw[8 + length :]
    if len(data) != needed:
        state = "truncated" if len(data) < needed else "longer than its header says"
        raise CorruptFileError(
            f"{path}: its tensors need {needed:,} bytes of data, the file holds {len(data):,}: "
            f"{state}"
        )
    return header, data


def _check_sha256(header: dict, data: bytes, path: Path) -> None:
    expected = header.get(METADATA, {}).get(SHA256_KEY)
    if expected is not None and _sha256(data) != expected:
        raise CorruptFileError(
            f"{path}: its tensor data does not match the sha256 in its header: the file changed "
            "after it was written"
        )


def _sealed(header: dict, data: bytes) -> bytes:
    header = {**header, METADATA: {**header.get(METADATA, {}), SHA256_KEY: _sha256(data)}}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # tensor data stays 8-byte aligned
    return len(text).to_bytes(8, "little") + text + data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- nested states: each container a one-key mapping in the outline, tensors by path ----


def _outline(value: Any, tensors: dict[str, torch.Tensor], where: tuple) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    name = "/".join(map(str, where)) or "."
    if isinstance(value, torch.Tensor | np.ndarray):
        if name in tensors:
            raise ValueError(f"two tensors of the state would be stored as {name!r}")
        is_tensor = isinstance(value, torch.Tensor)
        tensors[name] = value if is_tensor else torch.from_numpy(np.ascontiguousarray(value))
        return {"tensor" if is_tensor else "ndarray": name}
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str | int):
                raise TypeError(f"state key {key!r} at {name}: only str and int keys are stored")
        return {"dict": [[key, _outline(v, tensors, (*where, key))] for key, v in value.items()]}
    if isinstance(value, list | tuple):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_outline(v, tensors, (*where, i)) for i, v in enumerate(value)]}
    raise TypeError(f"state at {name}: a {type(value).__name__} cannot be stored without pickle")


def _rebuild(outline: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    if not isinstance(outline, dict):
        return outline
    try:
        ((kind, payload),) = outline.items()
        if kind == "tensor":
            return tensors[payload]
        if kind == "ndarray":
            return tensors[payload].cpu().numpy()
        if kind == "dict":
            return {key: _rebuild(v, tensors, path) for key, v in payload}
        if kind in ("list", "tuple"):
            items = [_rebuild(v, tensors, path) for v in payload]
            return items if kind == "list" else tuple(items)
    except (ValueError, KeyError, TypeError):
        pass
    raise CorruptFileError(f"{path}: its {OUTLINE_KEY} outline is malformed near {outline!r:.80}")
