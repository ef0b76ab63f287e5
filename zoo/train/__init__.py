"""Training: the shared trainer base, checkpoints, tracking, devices and distributed helpers.

Importing this package is cheap (no torch); import the submodules you need.
"""
