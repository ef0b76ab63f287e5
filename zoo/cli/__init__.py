"""The ``zoo`` command line. Each module here adds its commands through ``register(app)``."""
