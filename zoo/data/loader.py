"""A seeded, resumable, DDP-aware stream of batches.

:class:`SeededSampler` is a ``DistributedSampler`` (the same per-epoch shuffle and sharding across ranks) that
pairs every index with a per-sample seed mixed from ``(seed, epoch, rank, position, index)`` and can start in the
middle of an epoch. :class:`DataStream` turns it into an endless iterator of batches whose only state is the
number of batches consumed (``position``), which checkpoints store: a resumed run sees exactly the batches an
uninterrupted one would have seen, whatever the number of workers. Workers are seeded with
:func:`seed_worker` (NumPy and Python ``random`` from torch's per-worker seed).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from zoo.data.unpaired import sample_seed
from zoo.errors import DataError


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from torch's per-worker seed."""
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)


class SeededSampler(DistributedSampler):
    """``DistributedSampler`` that yields ``(index, sample_seed)`` pairs and can start mid-epoch.

    Args:
        dataset: the dataset (its length is used).
        num_replicas: world size.
        rank: this process's rank.
        seed: the run's seed (shuffle and per-sample seeds).
        min_length: repeat the epoch's indices until this rank has at least this many (tiny datasets).
        seeded: yield ``(index, seed)`` pairs (datasets with ``seeded_index = True``) or plain indices.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        min_length: int = 1,
        seeded: bool = True,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.min_length = min_length
        self.seeded = seeded
        self.start = 0

    def epoch_indices(self) -> list[int]:
        indices = list(super().__iter__())
        if len(indices) < self.min_length:
            reps = math.ceil(self.min_length / max(len(indices), 1))
            indices = (indices * reps)[: max(self.min_length, len(indices))]
        return indices

    def __iter__(self) -> Iterator[Any]:
        indices = self.epoch_indices()
        for pos in range(self.start, len(indices)):
            index = indices[pos]
            if self.seeded:
                yield (index, sample_seed(self.seed, self.epoch, self.rank, pos, index))
            else:
                yield index

    def __len__(self) -> int:
        return max(max(self.num_samples, self.min_length) - self.start, 0)


class DataStream:
    """An endless iterator of collated batches with a checkpointable ``position`` (batches consumed)."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise DataError("The dataset is empty: there is nothing to train on.")
        self.batch_size = batch_size
        self.sampler = SeededSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            seed=seed,
            min_length=batch_size,
            seeded=bool(getattr(dataset, "seeded_index", False)),
        )
        self.batches_per_epoch = max(self.sampler.num_samples, batch_size) // batch_size
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(seed),  # never touch the global RNG
            drop_last=True,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
        )
        self.position = 0
        self._iter: Iterator[Any] | None = None

    def seek(self, position: int) -> None:
        """Continue from ``position`` batches into the stream (what a checkpoint recorded)."""
        self.position = int(position)
        self._iter = None

    def _open(self) -> None:
        epoch, offset = divmod(self.position, self.batches_per_epoch)
        self.sampler.set_epoch(epoch)
        self.sampler.start = offset * self.batch_size
        self._iter = iter(self.loader)

    def __iter__(self) -> DataStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._iter is None:
            self._open()
        try:
            batch = next(self._iter)  # type: ignore[arg-type]
        except StopIteration:
            self._iter = None
            self.position = math.ceil(self.position / self.batches_per_epoch) * self.batches_per_epoch
            self._open()
            batch = next(self._iter)  # type: ignore[arg-type]
        self.position += 1
        if self.position % self.batches_per_epoch == 0:
            self._iter = None  # the epoch is over: the next call shuffles anew
        return batch

    def close(self) -> None:
        self._iter = None
        it = getattr(self.loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()


def fixed_batch(dataset: Dataset, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The first ``n`` samples with fixed seeds (sample grids show the same images all run long)."""
    if getattr(dataset, "seeded_index", False):
        items = [dataset[(i, sample_seed(seed, 7, i))] for i in range(n)]
    else:
        items = [dataset[i] for i in range(n)]
    return default_collate(items)
