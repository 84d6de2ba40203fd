"""Hub models pinned to a commit: in the config, or resolved once and kept in a lock file.

A config names a hub model by id and optionally a `revision`. A full 40-hex commit is the pin.
Anything else (a branch, a tag, or none, meaning `main`) is resolved to its commit the first
time a job needs the model, and written to the profile's lock file beside the config
(`config/<profile>.lock.json`), with the model's architectures; every later
run uses the locked commit, so a model that moves on the hub does not change the results.
Delete an entry to move it on deliberately. The lock file also lets the plan check, before any
job runs, that each model's architecture is one this transformers builds, or that the model
opted into remote code (`trust_remote_code: true` in its config entry).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from filelock import FileLock

from sdoc_model.utils.atomic import write_text

COMMIT = re.compile(r"[0-9a-f]{40}")


def profile_lock(profile: str) -> Path:
    """The lock file of a profile, beside its config, relative to the workflow's directory."""
    return Path("config") / f"{profile}.lock.json"


def read_lock(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); delete it to resolve again") from err
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected an object of model id -> entry")
    return entries


def pinned_commit(model_id: str, revision: str | None, lock: Path) -> str:
    """The commit to load `model_id` at: `revision` when it is one, else the locked commit,
    else the commit `revision` (default `main`) names on the hub now, locked from here on."""
    if revision and COMMIT.fullmatch(revision):
        return revision
    ref = revision or "main"
    with FileLock(f"{lock}.lock"):  # two jobs resolving at once write one entry each
        entries = read_lock(lock)
        entry = entries.get(model_id)
        if entry and entry["ref"] == ref:
            return entry["commit"]
        from huggingface_hub import HfApi

        try:
            info = HfApi().model_info(model_id, revision=ref)
        except Exception as err:  # offline, unknown id, no access
            raise ValueError(
                f"hub model {model_id} ({ref}) has no commit in {lock} and cannot be resolved "
                f"now ({type(err).__name__}: {err}); pin `revision` to a full commit in the "
                "config, or resolve it once with network access"
            ) from err
        architectures = (info.config or {}).get("architectures") or []
        entries[model_id] = {"ref": ref, "commit": info.sha, "architectures": architectures}
        write_text(lock, json.dumps(entries, indent=2, sort_keys=True) + "\n")
        return info.sha


def check_architectures(models: dict[str, dict], lock: Path) -> None:
    """Each hub model whose architectures the lock file knows must be one transformers builds,
    or opt into remote code: `models` maps a config key to its entry (model_id, and
    trust_remote_code)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    known = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    entries = read_lock(lock)
    for key, model in models.items():
        locked = entries.get(model["model_id"], {}).get("architectures") or []
        unknown = [name for name in locked if name not in known]
        if unknown and not model.get("trust_remote_code"):
            raise ValueError(
                f"{key} ({model['model_id']}): architecture {', '.join(unknown)} (from {lock}) "
                "is not one transformers builds; it needs its own modeling code: set "
                "trust_remote_code: true for it, after reading that code at the locked commit"
            )
