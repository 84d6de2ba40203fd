"""LoRAMoELinear: the stacked two-GEMM form against a naive per-expert loop, and its contract."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.layer import LoRAMoELinear, RoutingContext
from sdoc_model.method.losses import expert_load, load_balancing_loss, router_entropy, router_z_loss
from sdoc_model.method.reference import DispatchExpertLoop, MaskedExpertLoop


def make_layer(
    d_in,
    d_out,
    num_experts,
    rank,
    top_k,
    *,
    bias=False,
    dtype=torch.float64,
    dropout=0.0,
    dispatch="auto",
    contrastive=False,
    queue_size=0,
    seed=0,
):
    torch.manual_seed(seed)
    base = nn.Linear(d_in, d_out, bias=bias, dtype=dtype).requires_grad_(False)
    config = SparseDoctorConfig(
        num_experts=num_experts, rank=rank, top_k=top_k, alpha=3.0, dropout=dropout,
        dispatch=dispatch, cl_temperature=0.1, queue_size=queue_size,
    )  # fmt: skip
    layer = LoRAMoELinear(base, config, contrastive=contrastive)
    nn.init.normal_(layer.lora_B)  # a trained adapter, not the zero one
    nn.init.normal_(layer.router.weight)
    return layer


def naive_forward(layer: LoRAMoELinear, x: torch.Tensor) -> torch.Tensor:
    """The definition, expert by expert: base(x) + scale * sum_{e in top-k} p_e B_e A_e x."""
    probs = (x @ layer.router.weight.T).softmax(dim=-1)
    chosen = probs.argsort(dim=-1, descending=True)[..., : layer.top_k]
    renormalised = probs / probs.gather(-1, chosen).sum(dim=-1, keepdim=True)
    out = layer.base_layer(x)
    for e in range(layer.num_experts):
        is_chosen = (chosen == e).any(dim=-1, keepdim=True)
        expert_out = x @ layer.lora_A[e].T @ layer.lora_B[e].T
        out = (
            out
            + torch.where(is_chosen, renormalised[..., e : e + 1], 0.0) * layer.scaling * expert_out
        )
    return out


def values_and_grads(layer, forward, x):
    layer.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    out = forward(x)
    out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
    params = (layer.lora_A, layer.lora_B, layer.router.weight)
    return [out.detach(), x.grad, *(p.grad for p in params)]


def rel_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@settings(max_examples=30, deadline=None)
@given(
    d_in=st.integers(1, 12),
    d_out=st.integers(1, 12),
    num_experts=st.integers(1, 6),
    rank=st.integers(1, 4),
    top_k_fraction=st.floats(0, 1),
    layout=st.sampled_from([(7,), (1, 5), (3, 4), (2, 2, 3)]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_stacked_form_equals_naive_loop_in_float64(
    d_in, d_out, num_experts, rank, top_k_fraction, layout, bias, seed
):
    top_k = max(1, round(top_k_fraction * num_experts))  # top_k == num_experts: dense routing
    layer = make_layer(d_in, d_out, num_experts, rank, top_k, bias=bias, seed=seed)
    x = torch.randn(*layout, d_in, dtype=torch.float64)
    stacked = values_and_grads(layer, layer, x)
    naive = values_and_grads(layer, lambda inputs: naive_forward(layer, inputs), x)
    assert stacked[0].shape == (*layout, d_out)
    names = ["output", "x", "lora_A", "lora_B", "router"]
    if top_k == 1:  # the renormalised gate is 1 whatever the logits: no router gradient at all
        assert stacked.pop().abs().max() < 1e-12 and naive.pop().abs().max() < 1e-12
    for name, actual, expected in zip(names, stacked, naive, strict=False):
        assert rel_error(actual, expected) < 1e-10, name


@settings(max_examples=20, deadline=None)
@given(  # grouped_mm wants rows of whole 16 bytes: multiples of 4 float32 values
    d_in=st.sampled_from([4, 8, 12]),
    d_out=st.sampled_from([4, 8, 12]),
    num_experts=st.integers(2, 6),
    rank=st.sampled_from([4, 8]),
    top_k_fraction=st.floats(0, 0.99),
    layout=st.sampled_from([(7,), (3, 4), (2, 2, 3)]),
    seed=st.integers(0, 2**16),
)
def test_grouped_dispatch_equals_naive_loop(
    d_in, d_out, num_experts, rank, top_k_fraction, layout, seed
):
    """grouped_mm has no float64 kernel: float32 against the float64 definition on the same
    weights."""
    top_k = 1 + int(top_k_fraction * (num_experts - 1))  # sparse: 1 <= top_k < num_experts
    reference = make_layer(d_in, d_out, num_experts, rank, top_k, seed=seed)
    layer = make_layer(
        d_in, d_out, num_experts, rank, top_k, dtype=torch.float32, dispatch="grouped", seed=seed
    )
    layer.load_state_dict(reference.state_dict())
    assert layer.grouped_dispatch
    x = torch.randn(*layout, d_in, dtype=torch.float64)
    grouped = values_and_grads(layer, layer, x.float())
    naive = values_and_grads(reference, lambda inputs: naive_forward(reference, inputs), x)
    if top_k == 1:
        grouped.pop(), naive.pop()
    for name, actual, expected in zip(
        ["output", "x", "lora_A", "lora_B", "router"], grouped, naive, strict=False
    ):
        assert rel_error(actual.double(), expected) < 1e-5, name


@pytest.mark.parametrize("top_k", [1, 3])
def test_benchmark_loops_compute_the_same_function(top_k):
    """The per-expert loops the benchmark times against are the same function, so its ratios
    compare like with like."""
    layer = make_layer(10, 6, 4, 3, top_k)
    x = torch.randn(2, 5, 10, dtype=torch.float64)
    expected = values_and_grads(layer, layer, x)[:2]
    for loop in (MaskedExpertLoop(layer), DispatchExpertLoop(layer)):
        actual = values_and_grads(layer, loop, x)[:2]
        assert all(rel_error(a, e) < 1e-10 for a, e in zip(actual, expected, strict=True))


def test_fresh_layer_is_exactly_the_base_layer():
    torch.manual_seed(0)
    base = nn.Linear(16, 8).requires_grad_(False)
    config = SparseDoctorConfig(num_experts=4, rank=2, top_k=2, alpha=4.0, dropout=0.3)
    layer = LoRAMoELinear(base, config).train()
    x = torch.randn(3, 5, 16)
    assert layer.lora_A.shape == (4, 2, 16) and layer.lora_B.shape == (4, 8, 2)
    assert layer.router.weight.shape == (4, 16) and layer.router.bias is None
    assert layer.lora_A.abs().sum() > 0 and torch.equal(
        layer.lora_B, torch.zeros_like(layer.lora_B)
    )
    assert torch.equal(layer(x), base(x))


def test_dropout_acts_on_the_experts_input_in_training_only():
    layer = make_layer(32, 8, 4, 2, 2, dtype=torch.float32, dropout=0.5)
    x = torch.randn(6, 32)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))
    layer.lora_B.data.zero_()
    assert torch.equal(layer(x), layer.base_layer(x))  # the base path never sees dropout


def test_half_precision_base_with_float32_adapter():
    """Like peft: a bf16 base trains a float32 adapter; the output keeps the base's dtype."""
    layer32 = make_layer(16, 8, 4, 2, 2, dtype=torch.float32)
    base16 = nn.Linear(16, 8, bias=False, dtype=torch.bfloat16).requires_grad_(False)
    base16.weight.data.copy_(layer32.base_layer.weight)
    config = SparseDoctorConfig(num_experts=4, rank=2, top_k=2, alpha=3.0, dropout=0.0)
    layer16 = LoRAMoELinear(base16, config)
    layer16.load_state_dict(layer32.state_dict())
    assert layer16.lora_A.dtype == torch.float32
    x = torch.randn(5, 16)
    out = layer16(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), layer32(x), atol=0.05, rtol=0.05)


def contrastive_loss(dispatch):
    layer = make_layer(12, 8, 4, 4, 2, dtype=torch.float32, dispatch=dispatch, contrastive=True)
    layer.train().routing_context = RoutingContext(
        token_mask=torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    )
    layer(torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(0)))
    layer.last_routing.cl.backward()
    return layer.last_routing.cl, [
        p.grad for p in (layer.lora_A, layer.lora_B, layer.router.weight)
    ]


def test_contrastive_loss_reaches_router_and_experts_in_both_dispatch_modes():
    stacked_loss, stacked_grads = contrastive_loss("stacked")
    grouped_loss, grouped_grads = contrastive_loss("grouped")
    assert all(grad.abs().sum() > 0 for grad in stacked_grads)
    assert rel_error(grouped_loss, stacked_loss) < 1e-6
    assert all(rel_error(g, s) < 1e-5 for g, s in zip(grouped_grads, stacked_grads, strict=True))


def test_routing_record_needs_a_matching_token_mask():
    layer = make_layer(12, 6, 4, 3, 2, dtype=torch.float32, contrastive=True).train()
    layer.routing_context = RoutingContext(token_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="token_mask has shape"):
        layer(torch.randn(2, 5, 12))


def test_auto_dispatch_picks_grouped_for_wide_sparse_mixtures_on_cpu():
    def grouped(num_experts, rank, top_k, dtype=torch.float32, dispatch="auto"):
        return make_layer(
            8, 8, num_experts, rank, top_k, dtype=dtype, dispatch=dispatch
        ).grouped_dispatch

    assert not grouped(8, 8, 2) and not grouped(16, 8, 4)  # E*r = 64, 128 < 64*k
    assert grouped(16, 8, 2) and grouped(8, 8, 1)
    assert not grouped(16, 8, 16, dispatch="grouped")  # dense routing
    assert not grouped(16, 8, 2, dtype=torch.float64)  # no float64 grouped_mm
    assert not grouped(16, 6, 2, dispatch="grouped")  # 6 floats: rows not 16-byte multiples
    assert not grouped(16, 8, 2, dispatch="stacked") and grouped(8, 8, 2, dispatch="grouped")


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRAMoELinear(nn.Conv1d(2, 2, 1), SparseDoctorConfig())
    with pytest.raises(ValueError, match="top_k"):
        LoRAMoELinear(nn.Linear(2, 2), SparseDoctorConfig(num_experts=4, top_k=5))
    with pytest.raises(ValueError, match="dispatch must be one of"):
        LoRAMoELinear(nn.Linear(2, 2), SparseDoctorConfig(dispatch="sorted"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("autocast", [False, True])
def test_cuda_training_step_never_waits_for_the_host(autocast):
    """Forward, every routing loss, the contrastive loss with its queue, and backward, with
    CUDA's sync debug mode turning any host synchronisation into an error."""
    layer = make_layer(64, 32, 8, 8, 2, dtype=torch.float32, contrastive=True, queue_size=64)
    layer.cuda().train()
    mask = torch.ones(4, 16, device="cuda")
    mask[1, 12:] = 0
    layer.routing_context = RoutingContext(token_mask=mask)
    x = torch.randn(4, 16, 64, device="cuda", requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = layer(x)
            routing = layer.last_routing
            token_mask = mask.flatten()
            loss = out.float().square().mean() + routing.cl
            loss = loss + load_balancing_loss(routing.probs, routing.top_idx, token_mask)
            loss = loss + router_z_loss(routing.router_logits, token_mask)
        loss.backward()
        stats = (
            expert_load(routing.probs, routing.top_idx, token_mask),
            router_entropy(routing.probs, token_mask),
        )
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(loss) and all(torch.isfinite(s).all() for s in stats)
    assert layer.memory_queue.count.item() == 4 * 8 and x.grad.abs().sum() > 0


@pytest.mark.parametrize("cl_labels", ["expert", "discipline"])
def test_discipline_labels_reach_the_contrastive_loss(cl_labels):
    """Three one-token sequences, each routed to its own expert; the first two share a
    discipline. By expert no representation has a positive (loss 0); by discipline the first
    two are each other's positive and the third their negative: the SupCon loss by hand."""
    layer = make_layer(3, 4, 3, 2, 1, contrastive=True)
    layer.cl_labels = cl_labels
    with torch.no_grad():
        layer.router.weight.copy_(10 * torch.eye(3))  # token i -> expert i
        layer.lora_B.normal_()
    x = torch.eye(3).unsqueeze(1).double()  # (3 sequences, 1 token, 3)
    layer.train().routing_context = RoutingContext(sequence_labels=torch.tensor([5, 5, 9]))
    layer(x)
    assert layer.last_routing.top_idx.flatten().tolist() == [0, 1, 2]
    if cl_labels == "expert":
        assert layer.last_routing.cl.item() == 0
        return
    z = [
        nn.functional.normalize(layer.lora_B[i] @ layer.lora_A[i] @ x[i, 0], dim=0)
        for i in range(3)
    ]
    tau = 0.1

    def anchor_loss(anchor, positive, negative):
        similar, other = (z[anchor] @ z[positive]) / tau, (z[anchor] @ z[negative]) / tau
        return -(similar - torch.logsumexp(torch.stack([similar, other]), dim=0))

    expected = (anchor_loss(0, 1, 2) + anchor_loss(1, 0, 2)) / 2
    assert layer.last_routing.cl.item() == pytest.approx(expected.item(), rel=1e-9)
