"""Generators: networks that map a batch of images to enhanced images (``{"image": ...}`` plus extras)."""
