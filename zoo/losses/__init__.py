"""Losses: adversarial objectives (``adversarial.py``) and content losses (``content.py``, ``feature.py``).

Both live under the registry kind ``loss``; adversarial objectives set ``is_adversarial = True``.
Importing this package is cheap: build components with ``zoo.registry.create("loss", ...)``.
"""
