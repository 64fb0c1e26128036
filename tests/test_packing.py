"""Tensors packed into one allocation (darts.packing)."""

from __future__ import annotations

import torch

from darts.packing import packed, unpacked


def test_packed_copies_lie_in_one_allocation_per_dtype():
    tensors = [torch.randn(3, 4, requires_grad=True), torch.tensor(2.5), torch.arange(5), torch.randn(0, 2),
               torch.randn(2, 1, 3), torch.arange(2).view(1, 2), torch.ones(3, dtype=torch.float64)]
    copies = packed(tensors)
    for original, copy in zip(tensors, copies):
        assert copy.shape == original.shape and copy.dtype == original.dtype
        assert torch.equal(copy, original.detach())
        assert not copy.requires_grad
        assert original.numel() == 0 or copy.untyped_storage().data_ptr() != original.untyped_storage().data_ptr()
    floats = {copies[i].untyped_storage().data_ptr() for i in (0, 1, 4)}
    integers = {copies[i].untyped_storage().data_ptr() for i in (2, 5)}
    assert len(floats) == 1 and len(integers) == 1 and floats != integers
    for i in (0, 6):  # copies, a dtype's lone tensor too: the originals keep their values
        copies[i].add_(1.0)
        assert not torch.equal(copies[i], tensors[i].detach())
    assert packed([]) == []


def test_unpacked_views_follow_the_flat_tensor_in_order():
    like = [torch.empty(2, 3), torch.empty(()), torch.empty(4)]
    flat = torch.arange(11.0)
    views = unpacked(flat, like)
    assert [v.shape for v in views] == [t.shape for t in like]
    assert torch.equal(views[0], torch.arange(6.0).view(2, 3)) and views[1].item() == 6.0
    assert torch.equal(views[2], torch.arange(7.0, 11.0))
    flat.zero_()
    assert all(not v.any() for v in views)
