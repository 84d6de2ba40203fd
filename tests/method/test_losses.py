"""The auxiliary losses against hand-computed examples, and the contrastive loss learning."""

import math

import torch
import torch.nn.functional as F

from sdoc_model.method.losses import (
    expert_load,
    load_balancing_loss,
    router_entropy,
    router_z_loss,
    supervised_contrastive_loss,
)

# Three tokens, two experts, top-1; the third token is padding.
PROBS = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]], requires_grad=True)
TOP1 = torch.tensor([[0], [0], [1]])
MASK = torch.tensor([1, 1, 0])


def test_load_balancing_by_hand():
    # Real tokens both go to expert 0: f = (1, 0);
    # P = ((0.8 + 0.6) / 2, (0.2 + 0.4) / 2) = (0.7, 0.3).
    assert torch.allclose(expert_load(PROBS, TOP1, MASK), torch.tensor([1.0, 0.0]))
    loss = load_balancing_loss(PROBS, TOP1, MASK)
    assert math.isclose(loss.item(), 2 * (1.0 * 0.7 + 0.0 * 0.3), rel_tol=1e-6)
    (grad,) = torch.autograd.grad(loss, PROBS)
    # d/dp_te = E * f_e / n_real on real tokens; padding gets nothing; f is a constant.
    assert torch.allclose(grad, torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))


def test_load_balancing_is_one_when_balanced_and_counts_every_slot():
    probs = torch.full((4, 4), 0.25)
    top2 = torch.tensor([[0, 1], [2, 3], [1, 0], [3, 2]])
    assert torch.allclose(expert_load(probs, top2), torch.full((4,), 0.25))
    assert math.isclose(load_balancing_loss(probs, top2).item(), 1.0, rel_tol=1e-6)


def test_dense_load_balancing_uses_the_probabilities_as_load():
    # Dense routing sends every token to every expert; its load is the gate weight itself,
    # so the loss is E * sum_e P_e^2: 2 * (0.7^2 + 0.3^2) = 1.16 here.
    loss = load_balancing_loss(PROBS, None, MASK)
    assert math.isclose(loss.item(), 1.16, rel_tol=1e-6)


def test_losses_batch_over_leading_axes():
    stacked = torch.stack([PROBS.detach(), PROBS.detach().flip(-1)])
    per_layer = load_balancing_loss(stacked, torch.stack([TOP1, 1 - TOP1]), MASK)
    assert torch.allclose(per_layer, torch.tensor([1.4, 1.4]))


def test_router_z_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0], [5.0, 5.0]])
    # logsumexp: log 2, log 4, (padding); squares averaged over the two real tokens.
    expected = (math.log(2) ** 2 + math.log(4) ** 2) / 2
    assert math.isclose(router_z_loss(logits, MASK).item(), expected, rel_tol=1e-6)


def test_router_entropy_by_hand():
    probs = torch.tensor([[0.25] * 4, [1.0, 0.0, 0.0, 0.0]])
    assert math.isclose(router_entropy(probs).item(), math.log(4) / 2, rel_tol=1e-6)


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=-1)


def test_supervised_contrastive_by_hand():
    features = unit([1, 0], [1, 0], [0, 1], [0, 1])
    labels = torch.tensor([0, 0, 1, 1])
    # Every anchor: one positive at similarity 1, two negatives at 0 (tau = 1).
    expected = -math.log(math.e / (math.e + 2))
    loss = supervised_contrastive_loss(features, labels, temperature=1.0)
    assert math.isclose(loss.item(), expected, rel_tol=1e-12)
    # Temperature divides the similarities.
    loss = supervised_contrastive_loss(features, labels, temperature=0.5)
    assert math.isclose(loss.item(), -math.log(math.e**2 / (math.e**2 + 2)), rel_tol=1e-12)


def test_supervised_contrastive_with_bank_ignored_rows_and_lonely_anchors():
    features = unit([1, 0], [1, 0], [0, 1], [0, 1], [1, 1])
    labels = torch.tensor([0, 0, 1, 1, -1])  # the last row has no representation
    bank = unit([0, 1], [5, 5])
    bank_labels = torch.tensor([0, -1])  # an expert-0 entry at (0, 1), and an empty slot
    loss = supervised_contrastive_loss(features, labels, 1.0, bank, bank_labels)
    e = math.e
    # Anchors 0, 1: positives the other (s = 1) and the bank entry (s = 0); denominator e + 3.
    label0 = -0.5 * (math.log(e / (e + 3)) + math.log(1 / (e + 3)))
    # Anchors 2, 3: positive the other (s = 1); negatives 0, 1 (s = 0) and the bank entry (s = 1).
    label1 = -math.log(e / (2 * e + 2))
    assert math.isclose(loss.item(), (label0 + label1) / 2, rel_tol=1e-12)
    # An expert seen once, with no positive anywhere, is not an anchor but still a negative.
    lonely = supervised_contrastive_loss(features[:3], labels[:3], 1.0)
    assert math.isclose(lonely.item(), -math.log(e / (e + 1)), rel_tol=1e-12)


def test_supervised_contrastive_without_any_anchor_is_zero_and_differentiable():
    features = unit([1, 0], [0, 1]).requires_grad_(True)
    loss = supervised_contrastive_loss(features, torch.tensor([0, -1]), 0.07)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(features.grad).all()


def test_supervised_contrastive_falls_on_separable_data():
    """A linear encoder trained on four Gaussian clusters, 16 points each, with an empty bank."""
    torch.manual_seed(0)
    centres = torch.randn(4, 16)
    labels = torch.arange(64) % 4
    inputs = centres[labels] + 0.5 * torch.randn(64, 16)
    encoder = torch.nn.Linear(16, 8)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.05)
    bank = F.normalize(torch.randn(32, 8), dim=-1)
    losses = []
    for _ in range(60):
        features = F.normalize(encoder(inputs), dim=-1)
        loss = supervised_contrastive_loss(features, labels, 0.1, bank, torch.full((32,), -1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # SupCon is bounded below by log(positives per anchor) = log 15, reached by perfect clusters.
    excess = [loss - math.log(15) for loss in losses]
    assert excess[-1] < 0.1 * excess[0]
    similarity = features @ features.T
    same = labels[:, None] == labels[None, :]
    assert similarity[same].mean() > 0.9 and similarity[~same].mean() < 0.2
