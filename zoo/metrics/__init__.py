"""Image-quality metrics (kind ``metric``): NIQE, full-reference PSNR/SSIM/Delta E, and no-reference statistics.

Every metric is an ``nn.Module`` with class attributes ``higher_is_better`` and ``needs_reference`` and
``forward(pred, ref=None) -> (N,)`` (one score per image, float64 on the CPU for NIQE, float32 otherwise).
Build them by name with ``zoo.registry.create("metric", "psnr")``; importing this package is cheap.
"""

from __future__ import annotations
