"""The LoRA mixture-of-experts linear layer, in the stacked two-GEMM form (see the README's
method section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import SparseDoctorConfig
from .losses import autograd_all_gather, supervised_contrastive_loss
from .memory_queue import ExpertMemoryQueue


@dataclass
class RoutingContext:
    """State shared by every adapted layer of one model, set by the wrapper around each forward.

    `token_mask` is (batch, seq) with 1 for real tokens and 0 for padding, or None for "all real".
    `across_processes`: in data-parallel training, the routing losses and the memory queues
    cover the global batch of every process (see sdoc_model.method.losses), as in a one-process run.
    `sequence_labels` is (batch,) with each sequence's discipline id (-1: none), the contrastive
    labels of layers configured with `cl_labels: discipline`.
    `replaying`: activation checkpointing is recomputing a forward in the backward pass; the
    layers then redo their last forward without its side effects (see LoRAMoELinear.forward).
    """

    token_mask: torch.Tensor | None = None
    sequence_labels: torch.Tensor | None = None
    across_processes: bool = False
    replaying: bool = False


@dataclass
class RoutingRecord:
    """What one layer's router did in the last forward, one row per token (padding included):
    router logits and probabilities (N, E), the chosen experts (N, k; None when dense), and on
    contrastive layers in training the contrastive loss. The wrapper turns the records of all
    layers into the routing losses and statistics in a few batched ops
    (sdoc_model.method.losses)."""

    router_logits: torch.Tensor
    probs: torch.Tensor
    top_idx: torch.Tensor | None
    cl: torch.Tensor | None = None


def adapter_dtype(base_dtype: torch.dtype) -> torch.dtype:
    # Like peft: half-precision bases train their adapters in float32.
    return base_dtype if base_dtype in (torch.float32, torch.float64) else torch.float32


class LoRAMoELinear(nn.Module):
    """`y = base(x) + (alpha / r) * sum_{e in top-k} p_e * B_e A_e dropout(x)` over E LoRA experts,
    with `p = softmax(router(x))` renormalised over the chosen k; `top_k == num_experts` is dense
    soft routing.

    The experts are stacked so that a forward is two GEMMs whatever E: `dropout(x) @ A^T` gives all
    E r-dim codes at once, each r-wide slice is scaled by its gate weight (0 for experts not
    chosen), and one GEMM with the stacked B's (d_out, E*r) sums the chosen experts' outputs.
    There is no Python loop over experts and no host synchronisation. Wide sparse mixtures can
    instead sort the tokens by expert and use grouped GEMMs (`dispatch`, see grouped_dispatch).
    """

    def __init__(
        self, base_layer: nn.Linear, config: SparseDoctorConfig, contrastive: bool = False
    ):
        """Adapt `base_layer` with the experts, router and dropout of `config`. A `contrastive`
        layer computes the contrastive loss in training forwards, against a memory queue of
        `config.queue_size` past representations (0: in-batch only)."""
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"LoRAMoELinear wraps nn.Linear, got {type(base_layer).__name__}")
        config.validate()
        self.base_layer = base_layer
        self.num_experts, self.rank, self.top_k = config.num_experts, config.rank, config.top_k
        self.scaling = config.scaling
        self.router_jitter = config.router_jitter
        self.dispatch = config.dispatch
        d_out, d_in = base_layer.weight.shape
        factory = {
            "device": base_layer.weight.device,
            "dtype": adapter_dtype(base_layer.weight.dtype),
        }
        self.lora_A = nn.Parameter(torch.empty(self.num_experts, self.rank, d_in, **factory))
        self.lora_B = nn.Parameter(torch.zeros(self.num_experts, d_out, self.rank, **factory))
        self.router = nn.Linear(d_in, self.num_experts, bias=False, **factory)
        self.lora_dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.cl_temperature = config.cl_temperature if contrastive else None
        self.cl_labels = config.cl_labels
        self.memory_queue = None
        if contrastive and config.queue_size > 0:
            self.memory_queue = ExpertMemoryQueue(config.queue_size, d_out, factory["dtype"])
            self.memory_queue.to(factory["device"])
        # Set by SparseDoctorModel: the context shared by every layer of the model (routing
        # records are kept only with one).
        self.routing_context: RoutingContext | None = None
        self.last_routing: RoutingRecord | None = None
        # The memory queue (features, labels) as the last forward's contrastive loss saw it.
        self._queue_snapshot: tuple[torch.Tensor, torch.Tensor] | None = None
        self.reset_adapter_parameters()

    def reset_adapter_parameters(self) -> None:
        # Each expert's A gets PEFT's LoRA init (kaiming-uniform over its own fan-in d_in);
        # B = 0 makes a fresh adapter an exact no-op.
        nn.init.kaiming_uniform_(self.lora_A.view(-1, self.lora_A.shape[-1]), a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)
        self.router.reset_parameters()

    @property
    def dense(self) -> bool:
        return self.top_k == self.num_experts

    @property
    def grouped_dispatch(self) -> bool:
        """Whether forward runs the experts by sorted token dispatch rather than the stacked form.

        The stacked form computes E*r code dimensions per token, the grouped one k*r plus a
        gather and a scatter of token rows. On 2 CPU cores the grouped form won at every point of
        the grid with E*r >= 64*k and lost at every other point but one (E=4 r=8 k=1) (`python -m
        sdoc_model.benchmark --dispatch-sweep`, SmolLM2-135M's up_proj), so `auto` picks it
        there, on CPU only: it has not been measured on a GPU, so GPUs keep the stacked form
        (two GEMMs, no sort, no host synchronisation). Grouped also needs sparse routing and
        what grouped_mm takes (float32/16-bit, rows of whole 16-byte multiples); elsewhere the
        stacked form runs.
        """
        itemsize = self.lora_A.element_size()
        dims = (self.lora_A.shape[-1], self.rank, self.lora_B.shape[1])
        supported = self.lora_A.dtype != torch.float64 and all(d * itemsize % 16 == 0 for d in dims)
        if self.dispatch == "stacked" or self.dense or not supported:
            return False
        wide = self.num_experts * self.rank >= 64 * self.top_k
        return self.dispatch == "grouped" or (wide and self.lora_A.device.type == "cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The adapted output. With a routing context, the forward also records what the router
        did (`last_routing`) and, on contrastive layers in training, computes the contrastive loss
        and enqueues into the memory queue. A replay (the routing context's `replaying`: the
        backward pass recomputing a checkpointed forward) keeps the record and the queue of the
        forward it recomputes, so that its values, and hence the gradients, are that forward's."""
        tokens = x.reshape(-1, x.shape[-1])  # 2-D, so the residual adds below need no view
        result = self.base_layer(tokens)
        tokens = tokens.to(self.lora_A.dtype)
        router_logits, probs, gates, top_idx = self.route(tokens)
        dropped = self.lora_dropout(tokens)
        contrastive = (
            self.routing_context is not None and self.cl_temperature is not None and self.training
        )
        if self.grouped_dispatch:
            result, gated_codes = self._grouped_update(result, dropped, gates, top_idx, contrastive)
        else:
            result, gated_codes = self._stacked_update(result, dropped, gates)
        if self.routing_context is not None:
            record = RoutingRecord(router_logits, probs, top_idx)
            if contrastive:
                record.cl = self._contrastive_loss(x.shape[:-1], gated_codes, gates)
            if not self.routing_context.replaying:
                self.last_routing = record
        return result.view(*x.shape[:-1], -1)

    def _stacked_update(self, result, dropped, gates):
        """Two GEMMs over all experts: the E*r codes, each r-wide slice scaled by its gate
        weight (0 for experts not chosen), then the stacked B's. Returns the gated codes too."""
        codes = F.linear(dropped, self.lora_A.flatten(0, 1))  # (N, E*r)
        slice_weights = (gates * self.scaling).unsqueeze(-1)  # (N, E, 1)
        gated_codes = (codes.view(-1, self.num_experts, self.rank) * slice_weights).flatten(1)
        stacked_B = self.lora_B.transpose(0, 1).flatten(1)  # (d_out, E*r)
        if result.dtype == gated_codes.dtype == stacked_B.dtype:
            # Fused into the GEMM; safe because nn.Linear's backward does not need its output.
            return result.addmm_(gated_codes, stacked_B.T), gated_codes
        return result + F.linear(gated_codes, stacked_B).to(result.dtype), gated_codes

    def _grouped_update(self, result, dropped, gates, top_idx, want_codes: bool):
        """Sorted token dispatch: the (token, expert) slots sorted by expert, so that one grouped
        GEMM per factor runs each expert on its own tokens only (k*r wide instead of E*r). The
        gated codes in the stacked layout (N, E*r) are built only when asked for."""
        slot_experts, order = top_idx.flatten().sort(stable=True)
        slot_tokens = order // self.top_k
        experts = torch.arange(self.num_experts, device=slot_experts.device)
        group_ends = torch.searchsorted(slot_experts, experts, right=True).to(torch.int32)
        # index_select, not advanced indexing: its backward is an index_add, where indexing's
        # is a sorting index_put (0.9 s of a SmolLM2-135M step on 2 CPU cores).
        slot_inputs = dropped.index_select(0, slot_tokens)
        codes = F.grouped_mm(slot_inputs, self.lora_A.transpose(1, 2), offs=group_ends)
        slot_gates = gates.gather(1, top_idx).flatten().index_select(0, order)
        slot_codes = codes * (slot_gates * self.scaling).unsqueeze(-1)
        # (N*k, d_out); added in place, as safe as addmm_ above.
        outputs = F.grouped_mm(slot_codes, self.lora_B.transpose(1, 2), offs=group_ends)
        result = result.index_add_(0, slot_tokens, outputs.to(result.dtype))
        if not want_codes:
            return result, None
        gated_codes = slot_codes.new_zeros(gates.shape[0], self.num_experts, self.rank)
        return result, gated_codes.index_put((slot_tokens, slot_experts), slot_codes).flatten(1)

    def route(self, x: torch.Tensor):
        """Router logits, probabilities, gate weights (renormalised over the top-k, 0 elsewhere)
        and the chosen expert ids (None when dense)."""
        if self.training and self.router_jitter > 0:
            x = x * torch.empty_like(x).uniform_(1 - self.router_jitter, 1 + self.router_jitter)
        router_logits = self.router(x)
        probs = router_logits.softmax(dim=-1)
        if self.dense:
            return router_logits, probs, probs, None
        top_idx = probs.topk(self.top_k, dim=-1).indices
        return router_logits, probs, top_k_gates(probs, top_idx), top_idx

    def _contrastive_loss(
        self, token_shape: torch.Size, gated_codes: torch.Tensor, gates: torch.Tensor
    ):
        batch_shape = _as_sequences(token_shape)
        mask = self._token_mask(batch_shape, gates)
        features, labels = self._expert_representations(
            gated_codes.view(*batch_shape, -1), gates.view(*batch_shape, -1), mask
        )
        if self.routing_context.across_processes:
            # Every process then computes the loss of the global batch and enqueues the same rows.
            features, labels = autograd_all_gather(features), autograd_all_gather(labels)
        queue = self.memory_queue
        if queue is None:
            return supervised_contrastive_loss(features, labels, self.cl_temperature)
        replaying = self.routing_context.replaying
        if not replaying:
            # A snapshot: autograd keeps the bank for the backward pass, enqueue writes in place,
            # and a replay must see the bank as it was.
            self._queue_snapshot = queue.features.clone(), queue.labels.clone()
        loss = supervised_contrastive_loss(
            features, labels, self.cl_temperature, *self._queue_snapshot
        )
        if not replaying:
            queue.enqueue(features.detach(), labels)  # after the loss: never a batch's own bank
        return loss

    def _token_mask(self, batch_shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        token_mask = self.routing_context.token_mask
        if token_mask is None:
            return like.new_ones(batch_shape)
        if tuple(token_mask.shape) != batch_shape:
            raise ValueError(
                f"routing token_mask has shape {tuple(token_mask.shape)} but the layer input has "
                f"(batch, seq) = {batch_shape}"
            )
        return token_mask.to(like.dtype)

    def _expert_representations(self, gated_codes, gates, mask):
        """z_{s,e} = normalize(B_e @ sum_t g_{t,e} A_e x_t) over the real tokens routed to e,
        labelled e, or with `cl_labels: discipline` the discipline of s.

        The gate-weighted sum (a mean up to a positive factor, which normalize removes) makes the
        contrastive loss reach the router too. Returns (B*E, d_out) features and (B*E,) labels.
        """
        batch = mask.shape[0]
        code_sums = (mask.unsqueeze(1) @ gated_codes).view(batch, self.num_experts, self.rank)
        # (E, B, d_out): each expert's B applied to its summed codes of every sequence.
        features = torch.bmm(code_sums.transpose(0, 1), self.lora_B.transpose(1, 2))
        features = F.normalize(features.transpose(0, 1), dim=-1).flatten(0, 1)
        routed = (mask.unsqueeze(1) @ gates).squeeze(1) > 0  # (B, E): e saw a real token of s
        if self.cl_labels == "discipline":
            label_ids = (
                self._sequence_labels(batch, gates.device).unsqueeze(1).expand(-1, self.num_experts)
            )
        else:
            label_ids = torch.arange(self.num_experts, device=gates.device).expand(batch, -1)
        labels = torch.where(routed, label_ids, -1).flatten()
        return features, labels

    def _sequence_labels(self, batch: int, device: torch.device) -> torch.Tensor:
        labels = self.routing_context.sequence_labels
        if labels is None or tuple(labels.shape) != (batch,):
            raise ValueError(
                f"cl_labels: discipline needs the discipline id of each of the {batch} sequences "
                f"(RoutingContext.sequence_labels), got "
                f"{None if labels is None else tuple(labels.shape)}"
            )
        return labels.to(device)

    def extra_repr(self) -> str:
        dispatch = "grouped" if self.grouped_dispatch else "stacked"
        return (
            f"num_experts={self.num_experts}, rank={self.rank}, top_k={self.top_k}, "
            f"scaling={self.scaling:g}, {dispatch}"
        )


def top_k_gates(probs: torch.Tensor, top_idx: torch.Tensor) -> torch.Tensor:
    """Gate weights of top-k routing: the chosen experts' probabilities renormalised to sum to
    1, 0 for the others."""
    top_p = probs.gather(-1, top_idx)
    return torch.zeros_like(probs).scatter(-1, top_idx, top_p / top_p.sum(dim=-1, keepdim=True))


def _as_sequences(token_shape: torch.Size) -> tuple[int, int]:
    """(batch, seq) view of the token dimensions: a 2-D input is one sequence."""
    if len(token_shape) == 1:
        return (1, token_shape[0])
    return (math.prod(token_shape[:-1]), token_shape[-1])
