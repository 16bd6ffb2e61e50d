"""The built-in experiment plugins, one package per experiment.

Each registers through the ``tinkerflow`` entry point group, exactly as a third-party
plugin does (see pyproject.toml), and ships its browser widget in ``web/``.
"""
