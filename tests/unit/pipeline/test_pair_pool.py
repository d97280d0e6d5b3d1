"""The training pair pool: deterministic, rebuilt exactly on resume, refreshed in the background, and every
batch item is an aligned (degraded, clean, mask) triple."""

import pytest
import skimage.data
import torch

from pipeline.training.data import PairPool


@pytest.fixture(scope="module")
def photos():
    return [skimage.data.astronaut()[::4, ::4], skimage.data.coffee()[::4, ::4]]


def _pool(photos, mixture="blind", size=6, refresh=2):
    return PairPool(photos, 32, mixture, seed=0, rank=0, size=size, refresh=refresh)


def _same(a, b):
    return all(
        torch.equal(x, y)
        for x, y in zip(
            (a.degraded, a.clean, a.defect_mask), (b.degraded, b.clean, b.defect_mask), strict=True
        )
    )


def test_resumed_pool_gives_the_same_batches(photos):
    straight = _pool(photos)
    batches = [straight.batch(step, 4) for step in range(5)]
    resumed = _pool(photos)  # a new process resuming at step 3 rebuilds the pool from the step alone
    assert _same(resumed.batch(3, 4), batches[3]) and _same(resumed.batch(4, 4), batches[4])
    assert not _same(batches[3], batches[4])
    # Refresh really replaces pairs: after size / refresh steps every slot holds a new pair.
    first = _pool(photos)
    first.batch(0, 1)
    later = _pool(photos)
    later.batch(3, 1)
    assert all(not torch.equal(first.clean[i], later.clean[i]) for i in range(6))


def test_batch_items_are_aligned_triples(photos):
    # Identity-free engine preset: every pair is damaged, and flips/rotations must move degraded, clean and
    # mask together. A transform applied to one but not the others shows as a large clean/degraded gap.
    pool = _pool(photos, mixture="light", size=8, refresh=0)
    batch = pool.batch(0, 16)
    assert batch.degraded.shape == batch.clean.shape == (16, 3, 32, 32) and batch.defect_mask.shape == (
        16,
        1,
        32,
        32,
    )
    assert batch.degraded.min() >= -1 and batch.degraded.max() <= 1
    assert set(torch.unique(batch.defect_mask).tolist()) <= {0.0, 1.0}
    for degraded, clean in zip(batch.degraded, batch.clean, strict=True):
        aligned = (degraded - clean).abs().mean()
        misaligned = min((degraded - clean.rot90(k, (1, 2))).abs().mean() for k in (1, 2, 3))
        assert aligned < misaligned
    # Each item is one of the 8 rotations/flips of a pool entry, never a mix of two.
    entries = [pool.clean[i] for i in range(8)]
    variants = [
        torch.stack([e.rot90(k, (1, 2)), e.rot90(k, (1, 2)).flip(2)]) for e in entries for k in range(4)
    ]
    candidates = torch.cat(variants).float() / 255
    for clean in (batch.clean + 1) / 2:
        assert (candidates - clean).abs().flatten(1).amax(1).min() < 1e-6


def test_mixture_has_identity_pairs(photos):
    pool = _pool(photos, size=60, refresh=0)
    pool.batch(0, 1)
    identical = sum(torch.equal(pool.degraded[i], pool.clean[i]) for i in range(60))
    assert 1 <= identical <= 15  # ~10% identity pairs by design
    with pytest.raises(ValueError, match="unknown degradation mixture"):
        _pool(photos, mixture="sepia-only").batch(0, 1)


def test_real_photo_pairs_are_judged_only_on_their_painted_defects(photos):
    # A real print has no clean original: its pair's target is the print itself, so the loss may judge only
    # the painted defects and a rim around them; synthetic pairs are judged everywhere.
    real = [skimage.data.camera()[::4, ::4, None].repeat(3, axis=2)]
    pool = PairPool(photos, 32, "light", seed=0, rank=0, size=16, refresh=0, real=real, real_fraction=0.5)
    batch = pool.batch(0, 32)
    whole = batch.judged.flatten(1).amin(1) == 1
    assert 0 < int((~whole).sum()) < 32  # both kinds drawn
    for judged, mask in zip(batch.judged[~whole], batch.defect_mask[~whole], strict=True):
        assert bool((judged[mask > 0] == 1).all())  # every painted pixel is judged
        assert judged.sum() < judged.numel()  # and not the print's own, unlabelled pixels
    # Outside the judged pixels the real pair's target is the print, not a cleaned one: nothing to learn.
    assert set(torch.unique(batch.judged).tolist()) <= {0.0, 1.0}


def test_without_real_photos_the_pairs_are_those_of_earlier_runs(photos):
    # The real-domain draw must not shift the random stream of runs that use no real photos.
    plain = _pool(photos).batch(2, 4)
    unused = PairPool(photos, 32, "blind", 0, 0, 6, 2, real=None, real_fraction=0.5).batch(2, 4)
    assert plain.judged is None and unused.judged is None and _same(plain, unused)
