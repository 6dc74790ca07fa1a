"""The epoch sampler: deterministic order, rank shards, exact resume, and a fresh
augmentation each time an oversampled slice comes back; the epoch stream gives the same
batches as the per-epoch loader while its workers run on across epochs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch

from medssl.data.cache_read import SliceCache
from medssl.data.datasets import LabelledSlices, TwoViews
from medssl.data.splits import budget_slices, make_split
from medssl.data.transforms import byol_view_config, segmentation_config
from medssl.training.sampling import EpochSampler, epoch_stream, resumable_loader


@pytest.fixture(scope="module")
def cache(tiny_cache: Path) -> SliceCache:
    return SliceCache.open(tiny_cache)


def test_order_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochSampler(10, 2, seed=3), EpochSampler(10, 2, seed=3)
    assert torch.equal(a.order(0), b.order(0))
    assert not torch.equal(a.order(0), a.order(1))
    assert not torch.equal(a.order(0), EpochSampler(10, 2, seed=4).order(0))
    assert sorted(a.order(0).tolist()) == list(range(10))


def test_oversampling_sees_every_index_equally_often_and_numbers_the_draws() -> None:
    sampler = EpochSampler(3, batch_size=4, num_samples=24)
    keys = list(sampler)
    assert len(keys) == 24
    counts = defaultdict(list)
    for epoch, index, draw in keys:
        assert epoch == 0
        counts[index].append(draw)
    # each index once per concatenated permutation: draws 0..7, each exactly once
    assert {i: sorted(d) for i, d in counts.items()} == {i: list(range(8)) for i in range(3)}


def test_single_pass_epochs_use_draw_zero() -> None:
    keys = list(EpochSampler(10, batch_size=2))
    assert len(keys) == 10 and {d for _, _, d in keys} == {0}


def test_ranks_partition_the_global_order() -> None:
    world = 3
    shards = [
        list(EpochSampler(7, 2, seed=1, num_samples=20, rank=r, world=world)) for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1  # same number of batches on every rank
    merged = [shards[p % world][p // world] for p in range(world * len(shards[0]))]
    single = EpochSampler(7, 2 * world, seed=1, num_samples=20)
    assert merged == list(single)


def test_resume_replays_the_rest_of_the_epoch() -> None:
    full = list(EpochSampler(9, 2, seed=2, num_samples=30))
    resumed = EpochSampler(9, 2, seed=2, num_samples=30)
    resumed.resume_at(0, 5)
    assert list(resumed) == full[10:]
    assert list(resumed) == full  # the skip applies once


def test_repeated_slices_get_fresh_augmentation(cache: SliceCache) -> None:
    """Two labelled slices trained for 16 samples: each slice comes back 8 times in the
    one-epoch fine-tune and must not be the same crop every time."""
    split = make_split([v.patient for v in cache.volumes], scheme="random")
    budget = budget_slices(cache, split, 2, seed=0)
    for params_only in (False, True):
        ds = LabelledSlices(cache, budget, segmentation_config(32), seed=0, params_only=params_only)
        loader = resumable_loader(ds, 4, seed=0, rank=0, world=1, num_workers=0, num_samples=16)
        seen = defaultdict(list)
        for batch in loader:
            key = "params" if params_only else "image"
            for idx, item in zip(batch["index"].tolist(), batch[key], strict=True):
                seen[idx].append(item)
        assert sorted(len(v) for v in seen.values()) == [8, 8]
        for views in seen.values():
            distinct = {tuple(v.flatten().tolist()) for v in views}
            assert len(distinct) == len(views)


def test_single_pass_keys_match_index_only_requests(cache: SliceCache) -> None:
    """Draw 0 keeps the augmentation streams of single-pass epochs (BYOL)."""
    pool = list(range(6))
    ds = TwoViews(cache, pool, byol_view_config(24), seed=5)
    ds.set_epoch(2)
    for i in pool:
        assert torch.equal(ds[i]["view1"], ds[(2, i, 0)]["view1"])
        assert torch.equal(ds[(2, i)]["view2"], ds[(2, i, 0)]["view2"])
        assert not torch.equal(ds[(2, i, 0)]["view1"], ds[(2, i, 1)]["view1"])


def _epochs(loader, epochs) -> list[list[torch.Tensor]]:
    """Iterate ``loader`` as Lightning does: ``set_epoch`` then a new iterator per epoch."""
    out = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        out.append([b["params1"] for b in loader])
    return out


def _same(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> bool:
    return [len(e) for e in a] == [len(e) for e in b] and all(
        torch.equal(x, y) for ea, eb in zip(a, b, strict=True) for x, y in zip(ea, eb, strict=True)
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_epoch_stream_gives_the_per_epoch_loaders_batches(cache: SliceCache, workers: int) -> None:
    """Same keys, same views, same order, epoch after epoch; and one worker pipeline for
    all of them (the next epoch's batches are prefetched, not started afresh)."""
    ds = TwoViews(cache, list(range(10)), byol_view_config(16), seed=3, params_only=True)
    per_epoch = resumable_loader(ds, 4, seed=1, rank=0, world=1, num_workers=workers)
    stream = epoch_stream(ds, 4, seed=1, rank=0, world=1, num_workers=workers)
    assert len(stream) == len(per_epoch) == 2
    want = _epochs(per_epoch, range(4))
    streams = []
    got = []
    for epoch in range(4):
        stream.sampler.set_epoch(epoch)
        got.append([b["params1"] for b in stream])
        streams.append(stream._iterator)
    assert _same(got, want)
    assert all(s is streams[0] for s in streams)
    workers_of = getattr(streams[0], "_workers", [])
    assert len(workers_of) == workers and all(w.is_alive() for w in workers_of)
    streams.clear()
    stream.close()
    assert stream._iterator is None
    for w in workers_of:  # stopped at once, not when garbage-collected
        w.join(timeout=10)
        assert not w.is_alive()


def test_epoch_stream_resumes_mid_epoch_like_the_per_epoch_loader(cache: SliceCache) -> None:
    ds = TwoViews(cache, list(range(12)), byol_view_config(16), seed=0, params_only=True)
    full = _epochs(resumable_loader(ds, 2, 5, 0, 1, 0), range(2, 5))
    resumed = epoch_stream(ds, 2, seed=5, rank=0, world=1, num_workers=0, resume_position=(2, 4))
    got = _epochs(resumed, range(2, 5))
    assert _same(got, [full[0][4:], *full[1:]])


def test_an_epoch_left_early_or_out_of_order_restarts_the_stream(cache: SliceCache) -> None:
    """A stream that is not where the next epoch starts (the last epoch stopped early, or
    Lightning asks for another epoch) starts again there: never a shifted batch."""
    ds = TwoViews(cache, list(range(12)), byol_view_config(16), seed=0, params_only=True)
    want = _epochs(resumable_loader(ds, 2, 7, 0, 1, 0), range(6))
    stream = epoch_stream(ds, 2, seed=7, rank=0, world=1, num_workers=0)
    stream.sampler.set_epoch(0)
    first = next(iter(stream))["params1"]  # left after one batch
    assert torch.equal(first, want[0][0])
    assert _same(_epochs(stream, [1, 5, 2]), [want[1], want[5], want[2]])


def test_nothing_is_read_before_the_first_batch(cache: SliceCache) -> None:
    """Lightning calls ``iter()`` at set-up, before it sets the epoch of a resumed run:
    the epoch and the resume skip are read at the first batch, with workers too."""
    ds = TwoViews(cache, list(range(12)), byol_view_config(16), seed=0, params_only=True)
    full = _epochs(resumable_loader(ds, 2, 5, 0, 1, 0), [2])
    stream = epoch_stream(ds, 2, seed=5, rank=0, world=1, num_workers=2, resume_position=(2, 4))
    early = iter(stream)
    stream.sampler.set_epoch(2)
    assert _same([[b["params1"] for b in early]], [full[0][4:]])
    stream.close()


def test_an_older_epochs_iterator_cannot_take_a_later_epochs_batches(cache: SliceCache) -> None:
    ds = TwoViews(cache, list(range(12)), byol_view_config(16), seed=0, params_only=True)
    stream = epoch_stream(ds, 2, seed=1, rank=0, world=1, num_workers=0)
    stream.sampler.set_epoch(0)
    old = iter(stream)
    next(old)
    stream.sampler.set_epoch(1)
    next(iter(stream))
    with pytest.raises(RuntimeError, match="later epoch"):
        next(old)
    stream.close()


def test_lightnings_teardown_stops_the_workers(cache: SliceCache) -> None:
    """Lightning's teardown (also after an exception) shuts down a loader's
    ``_iterator``; the next epoch then starts again where it should."""
    from lightning.pytorch.utilities.combined_loader import _shutdown_workers_and_reset_iterator

    ds = TwoViews(cache, list(range(12)), byol_view_config(16), seed=0, params_only=True)
    want = _epochs(resumable_loader(ds, 2, 3, 0, 1, 0), range(2))
    stream = epoch_stream(ds, 2, seed=3, rank=0, world=1, num_workers=2)
    got = _epochs(stream, [0])
    workers = list(stream._iterator._workers)
    _shutdown_workers_and_reset_iterator(stream)
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive()
    got += _epochs(stream, [1])
    assert _same(got, want)
    stream.close()


class _Keys(torch.utils.data.Dataset):
    """Returns its key: the batches show which ``(epoch, index, draw)`` were trained."""

    def __len__(self) -> int:
        return 14

    def __getitem__(self, key: tuple[int, int, int]) -> torch.Tensor:
        return torch.tensor(key)


def _fit_keys(tmp: Path, workers: int, max_steps: int = -1, ckpt: Path | None = None):
    """Train a one-parameter module on an epoch stream as the pretraining module does
    (resume position in the checkpoint); return the keys of every trained batch."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from medssl.training.sampling import ResumePosition

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.resume_position = ResumePosition()
            self.seen: list[list[int]] = []

        def train_dataloader(self):
            pos = self.resume_position.position
            return epoch_stream(_Keys(), 4, 1, 0, 1, workers, pos)

        def training_step(self, batch, idx):
            self.seen += batch.tolist()
            return self.w.sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def on_save_checkpoint(self, checkpoint: dict) -> None:
            self.resume_position.capture(self.trainer)
            checkpoint["position"] = self.resume_position.state_dict()

        def on_load_checkpoint(self, checkpoint: dict) -> None:
            self.resume_position.load_state_dict(checkpoint["position"])

    every = ModelCheckpoint(tmp, every_n_train_steps=1, save_top_k=-1, filename="{step}")
    module = Module()
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=4, max_steps=max_steps, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[every],
        use_distributed_sampler=False,
    )  # fmt: skip
    trainer.fit(module, ckpt_path=ckpt, weights_only=False)
    return module.seen


def test_a_run_resumed_mid_epoch_trains_the_rest_of_the_uninterrupted_run(tmp_path: Path) -> None:
    """Checkpoint in the middle of epoch 1 (3 batches per epoch), resume with workers:
    exactly the batches the uninterrupted run trained after that step."""
    full = _fit_keys(tmp_path / "full", workers=2)
    assert len(full) == 4 * 12 and full[0][0] == 0 and full[-1][0] == 3
    _fit_keys(tmp_path / "cut", workers=2, max_steps=4)
    rest = _fit_keys(tmp_path / "resumed", workers=2, ckpt=tmp_path / "cut" / "step=4.ckpt")
    assert rest == full[4 * 4 :]
