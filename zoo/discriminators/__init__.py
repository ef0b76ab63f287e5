"""Discriminators (critics): networks mapping images to scores, ``N x 1 x h x w`` patch maps or ``N x 1``.

``patchgan.py``: EnlightenGAN's no-norm PatchGAN; ``local.py``: a wrapper that scores random local patches with
any discriminator; ``kosugi.py``: the RL-editing WGAN-GP critic.
"""
