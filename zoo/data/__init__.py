"""Unpaired training data: image decoding, augmentation, the ``image_folder`` and ``synthetic`` datasets, loaders.

Importing this package is cheap; the datasets register when their modules are imported (the index says which).
"""
