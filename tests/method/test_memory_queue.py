"""The expert memory queue: FIFO ring semantics, constant memory, exact state round trip."""

import pytest
import torch

from sdoc_model.method.memory_queue import ExpertMemoryQueue


def rows(start, count, dim=3):
    """Entries whose features and labels both encode their position in the stream."""
    ids = torch.arange(start, start + count)
    return ids[:, None].float().expand(count, dim), ids * 10


def test_fifo_order_and_labels_across_wrap_around():
    queue = ExpertMemoryQueue(size=5, dim=3)
    features, labels = queue.ordered()
    assert (labels == -1).all() and queue.count == 0
    for start in (0, 3, 6):  # 9 entries through 5 slots: the ring wraps once
        queue.enqueue(*rows(start, 3))
    features, labels = queue.ordered()
    assert features[:, 0].tolist() == [4, 5, 6, 7, 8]  # the newest five, oldest first
    assert labels.tolist() == [40, 50, 60, 70, 80]  # each label stays with its features
    assert queue.ptr == 9 % 5 and queue.count == 5


def test_partly_filled_queue_keeps_empty_slots_last():
    queue = ExpertMemoryQueue(size=4, dim=3)
    queue.enqueue(*rows(0, 3))
    _, labels = queue.ordered()
    assert labels.tolist() == [0, 10, 20, -1] and queue.count == 3


def test_a_batch_larger_than_the_queue_keeps_its_newest_rows():
    queue = ExpertMemoryQueue(size=4, dim=3)
    queue.enqueue(*rows(0, 2))
    queue.enqueue(*rows(2, 7))
    _, labels = queue.ordered()
    assert labels.tolist() == [50, 60, 70, 80] and queue.count == 4


def test_memory_is_constant_over_a_long_run():
    queue = ExpertMemoryQueue(size=64, dim=16)
    storage = queue.features.untyped_storage().data_ptr()
    batch = torch.randn(24, 16), torch.arange(24) % 8
    sizes = {}
    for step in range(1, 10_001):
        queue.enqueue(*batch)
        if step in (10, 10_000):
            sizes[step] = queue.nbytes()
    assert sizes[10] == sizes[10_000] == 64 * 16 * 4 + 64 * 8 + 2 * 8
    assert queue.features.untyped_storage().data_ptr() == storage  # written in place, never regrown


def test_entries_are_detached():
    queue = ExpertMemoryQueue(size=4, dim=2)
    features = torch.randn(2, 2, requires_grad=True)
    queue.enqueue(features * 2, torch.tensor([0, 1]))
    assert not queue.features.requires_grad and queue.features.grad_fn is None


def test_state_round_trips_exactly():
    queue = ExpertMemoryQueue(size=5, dim=3)
    for start in (0, 3, 6):
        queue.enqueue(torch.randn(3, 3), torch.arange(start, start + 3))
    restored = ExpertMemoryQueue(size=5, dim=3)
    restored.load_state_dict(queue.state_dict())
    for name, buffer in queue.state_dict().items():
        assert torch.equal(restored.state_dict()[name], buffer), name
    # ... and both continue identically.
    batch = torch.randn(4, 3), torch.arange(4)
    queue.enqueue(*batch)
    restored.enqueue(*batch)
    assert all(torch.equal(a, b) for a, b in zip(queue.ordered(), restored.ordered(), strict=True))


def test_bad_shapes_are_refused():
    queue = ExpertMemoryQueue(size=4, dim=3)
    with pytest.raises(ValueError, match="enqueue expects"):
        queue.enqueue(torch.randn(2, 4), torch.arange(2))
    with pytest.raises(ValueError, match="enqueue expects"):
        queue.enqueue(torch.randn(2, 3), torch.arange(3))
    with pytest.raises(ValueError, match="size > 0"):
        ExpertMemoryQueue(size=0, dim=3)
