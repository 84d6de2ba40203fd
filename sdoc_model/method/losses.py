"""Auxiliary losses and routing statistics of SparseDoctor (see the README's method section).

The router functions take per-token tensors with the tokens on the second-to-last axis,
(..., N, E), and any leading axes (e.g. one per layer, to treat every layer in one op); the
optional `token_mask` (N,) is 1 for real tokens and 0 for padding, which is left out.

With `across_processes`, the token means run over the tokens of every process of the default
process group (data-parallel training), so that each process computes the loss of the whole
global batch, as one process would. The collectives are differentiable: each process's
backward sums the gradients of all processes' (identical) losses, and DDP's gradient mean
brings that back to the gradient of the one loss. They are torch.distributed's blocking ones:
torch's asynchronous functional collectives corrupted the heap now and then on gloo ("malloc():
unaligned tcache chunk detected" inside wait_tensor, about one two-process CPU run in three of
40 steps).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def masked_mean(
    values: torch.Tensor, token_mask: torch.Tensor | None, across_processes: bool = False
) -> torch.Tensor:
    """Mean over the last axis (N tokens) of `values`, real tokens only."""
    if across_processes:
        real = token_mask if token_mask is not None else values.new_ones(values.shape[-1])
        weights = real.to(values.dtype)
        count = autograd_all_reduce_sum(weights.sum().detach())
        return autograd_all_reduce_sum(values @ weights) / count.clamp_min(1)
    if token_mask is None:
        return values.mean(dim=-1)
    weights = token_mask.to(values.dtype) / token_mask.sum().clamp_min(1)
    return values @ weights


def autograd_all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable all-reduce sum over the default process group (a new tensor)."""
    return _AllReduceSum.apply(tensor)


def autograd_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable all-gather over the default process group: the processes' rows in rank
    order, which is the global batch's order (every process holds an equal slice of it)."""
    return _AllGather.apply(tensor)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        return autograd_all_reduce_sum(grad)  # every process's loss reads the same sum


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor):
        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor)
        ctx.rows = tensor.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        # This process's rows, as read by every process's loss: a reduce-scatter, which gloo
        # lacks, written as an all-reduce (the gathered batch is small).
        start = dist.get_rank() * ctx.rows
        return autograd_all_reduce_sum(grad)[start : start + ctx.rows]


def routing_dispatch(probs: torch.Tensor, top_idx: torch.Tensor | None) -> torch.Tensor:
    """Each token's share of its routed slots per expert (..., N, E): 1/k for each of its k
    chosen experts; under dense routing (top_idx None) the probabilities themselves."""
    if top_idx is None:
        return probs.detach()
    top_k = top_idx.shape[-1]
    return torch.zeros_like(probs).scatter_(-1, top_idx, 1.0 / top_k)


def expert_load(
    probs: torch.Tensor,
    top_idx: torch.Tensor | None,
    token_mask=None,
    across_processes: bool = False,
) -> torch.Tensor:
    """Fraction of routed (token, slot) pairs each expert received (..., E); under dense
    routing, its mean router probability."""
    return masked_mean(
        routing_dispatch(probs, top_idx).transpose(-1, -2), token_mask, across_processes
    )


def load_balancing_loss(
    probs: torch.Tensor,
    top_idx: torch.Tensor | None,
    token_mask=None,
    across_processes: bool = False,
) -> torch.Tensor:
    """Switch Transformer balance loss `E * sum_e f_e * P_e` (...,); 1 when perfectly balanced.

    f_e (the expert load) is a count and carries no gradient, as in Switch; P_e, the mean
    router probability, does.
    """
    mean_prob = masked_mean(probs.transpose(-1, -2), token_mask, across_processes)
    load = expert_load(probs, top_idx, token_mask, across_processes)
    return probs.shape[-1] * (load * mean_prob).sum(dim=-1)


def router_z_loss(
    router_logits: torch.Tensor, token_mask=None, across_processes: bool = False
) -> torch.Tensor:
    """ST-MoE z-loss: mean squared log-partition function of the router logits (...,)."""
    return masked_mean(router_logits.logsumexp(dim=-1).square(), token_mask, across_processes)


def router_entropy(probs: torch.Tensor, token_mask=None) -> torch.Tensor:
    """Mean entropy (nats) of the router distribution (...,)."""
    return masked_mean(-(probs * probs.clamp_min(1e-12).log()).sum(dim=-1), token_mask)


def supervised_contrastive_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    bank_features: torch.Tensor | None = None,
    bank_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """SupCon loss (Khosla et al., 2020) with an optional memory bank of extra candidates.

    features: (N, D) L2-normalised anchors; labels: (N,) class ids, -1 = ignore this row.
    bank_features/bank_labels: (M, D)/(M,) detached past entries, -1 = empty slot; they act as
    positives and negatives but are never anchors.

    For each anchor i with at least one positive,
        l_i = -mean_{p in P(i)} log( exp(s_ip / tau) / sum_{a in A(i)} exp(s_ia / tau) )
    with A(i) every valid candidate but i itself and P(i) those with i's label. Anchors without
    positives are skipped; with none at all the loss is 0 (still attached to the graph). No host
    synchronisation: the masks stay on the device.
    """
    similarities, candidate_labels = features @ features.T, labels
    if bank_features is not None:
        # A separate product: the bank gets no gradient, so its (M, D) one is never formed.
        bank_similarities = features @ bank_features.to(features.dtype).T
        similarities = torch.cat([similarities, bank_similarities], dim=1)  # (N, N + M)
        candidate_labels = torch.cat([labels, bank_labels])
    logits = similarities / temperature
    num_anchors = features.shape[0]
    not_self = ~torch.eye(num_anchors, logits.shape[1], dtype=torch.bool, device=features.device)
    valid = not_self & (candidate_labels >= 0).unsqueeze(0)
    # A finite fill keeps rows without any candidate NaN-free in the backward pass.
    logits = logits.masked_fill(~valid, torch.finfo(logits.dtype).min)
    log_prob = logits - logits.logsumexp(dim=1, keepdim=True)
    positive = valid & (labels.unsqueeze(1) == candidate_labels.unsqueeze(0))
    num_positives = positive.sum(dim=1)
    anchor_loss = -log_prob.masked_fill(~positive, 0.0).sum(dim=1) / num_positives.clamp_min(1)
    is_anchor = (labels >= 0) & (num_positives > 0)
    return (anchor_loss * is_anchor).sum() / is_anchor.sum().clamp_min(1)
