"""``python -m zoo`` is the ``zoo`` command (torchrun uses it: ``torchrun ... -m zoo train RECIPE``)."""

from zoo.cli.main import main

if __name__ == "__main__":
    main()
