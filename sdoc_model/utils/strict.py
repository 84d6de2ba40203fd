"""Strict conversions that name what is wrong instead of guessing: a dataclass from a mapping
with no unknown key, and tensors copied in with none missing, extra or misshapen."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def dataclass_from_dict(cls: type, values: dict[str, Any], section: str):
    """`cls(**values)`, refusing keys that are not fields of `cls` (`section` names them)."""
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {section} key(s): {', '.join(unknown)}; expected some of {', '.join(known)}"
        )
    return cls(**values)


def copy_tensors(
    targets: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], source: str
) -> None:
    """Copy `tensors` into `targets` in place, all or nothing: a missing, unexpected or
    misshapen tensor raises ValueError naming it and `source` before anything is copied."""
    missing = sorted(targets.keys() - tensors.keys())
    if missing:
        raise ValueError(f"{source}: missing tensor {missing[0]}" + _and_more(missing))
    unexpected = sorted(tensors.keys() - targets.keys())
    if unexpected:
        raise ValueError(f"{source}: unexpected tensor {unexpected[0]}" + _and_more(unexpected))
    for name, target in targets.items():
        if tensors[name].shape != target.shape:
            shape, expected = tuple(tensors[name].shape), tuple(target.shape)
            raise ValueError(
                f"{source}: tensor {name} has shape {shape}, the model expects {expected}"
            )
    for name, target in targets.items():
        target.detach().copy_(tensors[name])  # detached: no autograd for a load


def _and_more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""
