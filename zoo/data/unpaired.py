"""The shared part of unpaired datasets: sampling a target for each source, augmentation, per-sample seeds.

A sample is ``{"source": 3 x H x W, "target": 3 x H x W}`` (float32, ``[0, 1]``), plus ``"source_original"``
(the source before EnlightenGAN's random darkening) when ``darken > 0``. Source and target are unpaired: sample
``i`` takes source ``i mod n_source`` and a target drawn at random.

Indexing: ``dataset[i]`` works as usual (its randomness is a fixed function of the dataset's ``seed`` and ``i``),
and ``dataset[(i, sample_seed)]`` is what the training stream (:mod:`zoo.data.loader`) passes, so a sample's
randomness depends only on the run's seed, the epoch and its position, never on worker processes.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch

from zoo.contracts import Dataset as DatasetBase
from zoo.data import augment
from zoo.errors import DataError


def sample_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) % (2**63) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` float array -> ``3 x H x W`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


class UnpairedDataset(torch.utils.data.Dataset, DatasetBase):
    """Base class: subclasses provide ``n_source``, ``n_target``, ``load_source(i)`` and ``load_target(j)``.

    Its contract (:meth:`zoo.contracts.Dataset.contract`) gives the size of the samples from the parameters:
    ``resize`` (square), else ``crop_size`` (square), else ``None`` (the files' own sizes).
    """

    seeded_index = True  # accepts (index, sample_seed) keys
    component = "dataset"

    def __init__(
        self,
        *,
        seed: int = 0,
        load_size: int | None = None,
        crop_size: int | None = None,
        resize: int | None = None,
        hflip: bool = True,
        vflip: bool = False,
        darken: float = 0.0,
        darken_factor: tuple[float, float] = (2.0, 4.0),
        upscale_small: bool = True,
    ) -> None:
        self.seed = int(seed)
        self.crop_size = crop_size
        self._geometric = augment.geometric_pipeline(
            load_size=load_size,
            crop_size=crop_size,
            resize=resize,
            hflip=hflip,
            vflip=vflip,
            upscale_small=upscale_small,
            where=self.component,
        )
        self._darken = augment.darken_pipeline(darken, tuple(darken_factor), where=self.component)
        self._bad: set[tuple[str, int]] = set()

    # subclasses ---------------------------------------------------------------------------------------
    n_source: int = 0
    n_target: int = 0

    def load_source(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def load_target(self, index: int) -> np.ndarray:
        raise NotImplementedError

    # dataset ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return max(self.n_source, self.n_target)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        if isinstance(key, (tuple, list)):
            index, seed = int(key[0]), int(key[1])
        else:
            index, seed = int(key), sample_seed(self.seed, int(key))
        if not 0 <= index < len(self):
            raise IndexError(f"{self.component}: index {index} out of range 0..{len(self) - 1}")
        rng = np.random.default_rng(seed)
        py_rng = random.Random(seed)
        target_index = int(rng.integers(self.n_target))
        known_bad = len(self._bad)
        source = self._load("source", index % self.n_source)
        target = self._load("target", target_index)
        failures = len(self._bad) - known_bad  # files that failed to decode mid-run (the trainer counts them)
        source = augment.run(self._geometric, source, rng, py_rng)
        target = augment.run(self._geometric, target, rng, py_rng)
        sample = {"target": to_tensor(target)}
        if self._darken is not None:
            sample["source_original"] = to_tensor(source)
            source = augment.run(self._darken, source, rng, py_rng)
        sample["source"] = to_tensor(source)
        sample["decode_failures"] = failures
        return sample

    def _load(self, domain: str, index: int) -> np.ndarray:
        """Load with fallback: a file that fails to decode mid-run is reported once and the next one is used."""
        count = self.n_source if domain == "source" else self.n_target
        loader = self.load_source if domain == "source" else self.load_target
        last: Exception | None = None
        for step in range(count):
            i = (index + step) % count
            if (domain, i) in self._bad:
                continue
            try:
                return loader(i)
            except DataError as exc:
                self._bad.add((domain, i))
                warnings.warn(f"{self.component}: skipping a {domain} image that failed to decode: {exc}", stacklevel=2)
                last = exc
        raise DataError(f"{self.component}: no {domain} image could be decoded (last error: {last}).")

    def describe(self) -> dict[str, Any]:
        return {"source_images": self.n_source, "target_images": self.n_target, "length": len(self)}
