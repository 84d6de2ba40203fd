"""Inject SparseDoctor layers into a Hugging Face causal LM; collect losses; save and load
adapters."""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn

from sdoc_model.utils.strict import copy_tensors
from sdoc_model.utils.tensor_files import load_tensors, save_tensors

from .config import SparseDoctorConfig
from .hf_config import write_loader_files
from .layer import LoRAMoELinear, RoutingContext
from .losses import expert_load, load_balancing_loss, router_entropy, router_z_loss

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
MEMORY_QUEUES_NAME = "memory_queues.safetensors"
QUEUE_PREFIX = "memory_queue."


def is_target(module_name: str, target_modules: list[str]) -> bool:
    return any(module_name == t or module_name.endswith("." + t) for t in target_modules)


def decoder_layer_index(module_name: str) -> int | None:
    """The decoder layer a module belongs to: the first numeric component of its name
    (`model.layers.3.mlp.up_proj` -> 3), None outside numbered layers."""
    match = re.search(r"(?:^|\.)(\d+)(?:\.|$)", module_name)
    return int(match.group(1)) if match else None


def inject_adapters(model: nn.Module, config: SparseDoctorConfig) -> dict[str, LoRAMoELinear]:
    """Replace every module whose name ends in a target module, an `nn.Linear` (anything else
    raises TypeError, naming it), by a LoRAMoELinear around it.

    Returns the new layers by module name. Contrastive layers (config.contrastive_layers) get the
    contrastive loss and, when config.queue_size > 0, a memory queue.
    """
    config.validate()
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if is_target(name, config.target_modules)
    ]
    if not targets:
        raise ValueError(
            f"target_modules {config.target_modules} match no module of {type(model).__name__}"
        )
    layer_indices = [decoder_layer_index(name) for name, _ in targets]
    num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if num_layers is None:
        num_layers = 1 + max((i for i in layer_indices if i is not None), default=-1)
    contrastive = config.contrastive_layer_indices(num_layers) if num_layers else set()
    adapted = {}
    for (name, module), layer_index in zip(targets, layer_indices, strict=True):
        if not isinstance(module, nn.Linear):
            raise TypeError(
                f"target module {name} is a {type(module).__name__}; only nn.Linear can be adapted"
            )
        layer = LoRAMoELinear(module, config, contrastive=layer_index in contrastive)
        parent_name, _, child_name = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child_name, layer)
        adapted[name] = layer
    return adapted


class SparseDoctorModel(nn.Module):
    """A frozen causal LM with LoRAMoELinear layers injected, trained with auxiliary losses.

    `forward` returns the base model's output (its `.loss` is the LM loss); afterwards
    `aux_losses()` holds the load-balancing, z- and contrastive losses of that forward and
    `aux_loss()` their weighted sum to add to the LM loss. Padding (attention_mask == 0) is left
    out of every routing loss and statistic. Under DDP, set `routing_context.across_processes`
    so that the losses cover the global batch (the statistics stay per process).
    """

    def __init__(self, base_model: nn.Module, config: SparseDoctorConfig):
        super().__init__()
        if config.base_model_name_or_path is None:
            name = getattr(base_model, "name_or_path", None) or None
            config = dataclasses.replace(config, base_model_name_or_path=name)
        self.config = config.validate()
        base_model.requires_grad_(False)
        self.base_model = base_model
        self.routing_context = RoutingContext()
        self._last_token_mask: torch.Tensor | None = None
        # A plain dict: the layers are already registered as submodules of base_model.
        self.adapted_layers = inject_adapters(base_model, config)
        for layer in self.adapted_layers.values():
            layer.routing_context = self.routing_context

    def forward(
        self, input_ids=None, attention_mask=None, labels=None, discipline_ids=None, **kwargs
    ):
        """The base model's forward. `discipline_ids` (batch,): each sequence's discipline id
        (-1: none), the contrastive labels of `cl_labels: discipline` in training."""
        # A 2-D mask marks padding; other layouts (4-D, None) mean every token is real.
        is_padding_mask = attention_mask is not None and attention_mask.dim() == 2
        context = self.routing_context
        context.token_mask = attention_mask if is_padding_mask else None
        context.sequence_labels = discipline_ids
        self._last_token_mask = attention_mask.flatten() if is_padding_mask else None
        try:
            return self.base_model(
                input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs
            )
        finally:
            context.token_mask = context.sequence_labels = None

    def activation_checkpointing_enable(self) -> None:
        """Activation checkpointing of the base model's decoder layers (transformers' method of
        that name, non-reentrant), made safe for the adapters: the backward pass recomputes a
        layer by replaying its forward with the same token mask and memory-queue bank, without
        recording or enqueueing again (see LoRAMoELinear.forward), so that losses, gradients and
        queues are those without checkpointing."""
        self.base_model.activation_checkpointing_enable(
            {"use_reentrant": False, "context_fn": self._checkpoint_contexts}
        )

    def _checkpoint_contexts(self):
        # torch.utils.checkpoint's context_fn, called as a checkpointed layer runs forward: the
        # contexts of that forward and of its recomputation, which needs this forward's token
        # mask and sequence labels (`forward` has cleared them by then).
        context = self.routing_context
        return nullcontext(), self._replay(context.token_mask, context.sequence_labels)

    @contextmanager
    def _replay(self, token_mask: torch.Tensor | None, sequence_labels: torch.Tensor | None):
        context = self.routing_context
        context.replaying, context.token_mask = True, token_mask
        context.sequence_labels = sequence_labels
        try:
            yield
        finally:
            context.replaying = False
            context.token_mask = context.sequence_labels = None

    # ---- auxiliary losses and routing statistics of the last forward ----

    def _stacked_routing(self):
        """Router logits and probabilities (layers, N, E) and chosen experts (layers, N, k) of
        the last forward, so that the losses cost a few ops whatever the number of layers."""
        records = [layer.last_routing for layer in self.adapted_layers.values()]
        if any(record is None for record in records):
            raise RuntimeError("no routing record yet: run a forward pass first")
        logits = torch.stack([r.router_logits for r in records])
        probs = torch.stack([r.probs for r in records])
        top_idx = None if self.config.dense else torch.stack([r.top_idx for r in records])
        return logits, probs, top_idx, [r.cl for r in records if r.cl is not None]

    def aux_losses(self) -> dict[str, torch.Tensor]:
        """Mean over adapted layers of the load-balancing (`lb`) and router z (`z`) losses, and
        mean over contrastive layers of the contrastive loss (`cl`, 0 when none ran)."""
        logits, probs, top_idx, cl_terms = self._stacked_routing()
        mask, across_processes = self._last_token_mask, self.routing_context.across_processes
        return {
            "lb": load_balancing_loss(probs, top_idx, mask, across_processes).mean(),
            "z": router_z_loss(logits, mask, across_processes).mean(),
            "cl": torch.stack(cl_terms).mean() if cl_terms else logits.new_zeros(()),
        }

    def aux_loss(self) -> torch.Tensor:
        """`lb_weight * lb + z_weight * z + cl_weight * cl`, to add to the LM loss."""
        losses = self.aux_losses()
        config = self.config
        return (
            config.lb_weight * losses["lb"]
            + config.z_weight * losses["z"]
            + config.cl_weight * losses["cl"]
        )

    @torch.no_grad()
    def routing_stats(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per adapted module: `load` (E,), the fraction of routed token-slots each expert got
        (dense routing: its mean probability), and `entropy`, the mean router entropy (nats).
        Detached; no host synchronisation."""
        _, probs, top_idx, _ = self._stacked_routing()
        mask = self._last_token_mask
        loads, entropies = expert_load(probs, top_idx, mask), router_entropy(probs, mask)
        return {
            name: {"load": load, "entropy": entropy}
            for name, load, entropy in zip(self.adapted_layers, loads, entropies, strict=True)
        }

    # ---- parameters ----

    def trainable_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def print_trainable_parameters(self) -> None:
        trainable, total = self.trainable_parameters()
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || "
            f"trainable%: {100 * trainable / total:.4f}"
        )

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained tensors (lora_A, lora_B, router.weight) keyed by base-model module name."""
        return {
            f"{name}.{key}": tensor.detach()
            for name, layer in self.adapted_layers.items()
            for key, tensor in layer.named_parameters()
            if not key.startswith("base_layer.")
        }

    def load_adapter_state_dict(
        self, state: dict[str, torch.Tensor], source: str = "adapter state"
    ) -> None:
        copy_tensors(self.adapter_state_dict(), state, source)

    def queue_state_dict(self) -> dict[str, torch.Tensor]:
        """Every memory queue's buffers (features, labels, ptr, count), keyed by module name."""
        return {
            f"{name}.{QUEUE_PREFIX}{key}": tensor
            for name, layer in self.adapted_layers.items()
            if layer.memory_queue is not None
            for key, tensor in layer.memory_queue.state_dict().items()
        }

    def load_queue_state_dict(
        self, state: dict[str, torch.Tensor], source: str = "queue state"
    ) -> None:
        copy_tensors(self.queue_state_dict(), state, source)

    # ---- files ----

    def save_pretrained(self, directory: str | Path, tokenizer=None) -> None:
        """Write adapter_config.json, adapter_model.safetensors, memory_queues.safetensors (when
        the model has queues) and the files that make the folder loadable by stock transformers
        and lm-eval (hf_config.py), plus the tokenizer if given. Safetensors and JSON
        only: nothing is pickled; each tensor file carries its sha256, checked on load."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory / ADAPTER_CONFIG_NAME)
        save_tensors(self.adapter_state_dict(), directory / ADAPTER_WEIGHTS_NAME)
        queues = self.queue_state_dict()
        if queues:
            save_tensors(queues, directory / MEMORY_QUEUES_NAME)
        write_loader_files(directory, self.config)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)

    @classmethod
    def from_pretrained(
        cls, base_model: nn.Module, directory: str | Path, config: SparseDoctorConfig | None = None
    ) -> SparseDoctorModel:
        """Inject the adapter saved in `directory` into `base_model` and restore its weights and
        (when saved) memory queues. `config` overrides the saved one, e.g. to drop the queues for
        inference; tensor names and shapes are checked strictly either way, and a damaged file
        (truncated, changed, non-finite) raises CorruptFileError naming it."""
        directory = Path(directory)
        model = cls(base_model, config or SparseDoctorConfig.load(directory / ADAPTER_CONFIG_NAME))
        weights_path = directory / ADAPTER_WEIGHTS_NAME
        model.load_adapter_state_dict(load_tensors(weights_path)[0], source=str(weights_path))
        queues_path = directory / MEMORY_QUEUES_NAME
        if model.queue_state_dict() and queues_path.exists():
            model.load_queue_state_dict(load_tensors(queues_path)[0], source=str(queues_path))
        return model
