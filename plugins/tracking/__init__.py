"""The built-in trackers, plugins like any other (``tracking=mlflow``, ``tensorboard``, ``both``).

Each module is one plugin, found through its own ``tinkerflow`` entry point: it registers its
name with ``register_trackers`` and does its work in the run hooks (``before_run``,
``extra_callbacks``, ``after_run``, ``after_export``) and the sweep hooks (``before_sweep``,
``after_sweep``) when the run's ``tracking.use`` names it. docs/tracking.md says what each
records and how to add another.
"""
