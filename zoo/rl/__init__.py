"""RL-controlled editing (Kosugi & Yamasaki, AAAI 2020): policy networks, algorithms, the RL editor generator.

Importing this package is cheap; import the submodules you need (``zoo.rl.networks``, ``zoo.rl.a2c``, ...).
"""
