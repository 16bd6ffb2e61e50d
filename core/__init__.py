"""tinkerflow core: hookspecs, plugin manager, Experiment base class, runner, run directory, CLI.

The public contract for plugin authors is importable from here::

    from tinkerflow.core import hookimpl, Experiment, ExperimentConfig, Splits, DataState, knob
    from tinkerflow.core import Exporter, ExportContext, VariantResult  # a new export format
"""

from .config import ExperimentConfig, TrainerConfig, knob
from .errors import ConfigError, DataError, PluginError, RunDirError, RunFailed, TinkerflowError
from .experiment import (DataState, DeployInfo, Experiment, ExportSpec, ImageClassifierSpec, Metric, SampleOptions,
                         Splits)
from .exporter import ExportContext, Exporter, VariantResult
from .hookspecs import hookimpl
from .plugins import Registry, make_plugin_manager
from .rundir import Run, RunResult, Sweep

__all__ = [
    "ConfigError",
    "DataError",
    "DataState",
    "DeployInfo",
    "Experiment",
    "ExperimentConfig",
    "ExportContext",
    "ExportSpec",
    "Exporter",
    "ImageClassifierSpec",
    "Metric",
    "PluginError",
    "Registry",
    "Run",
    "RunDirError",
    "RunFailed",
    "RunResult",
    "SampleOptions",
    "Sweep",
    "Splits",
    "TinkerflowError",
    "TrainerConfig",
    "VariantResult",
    "hookimpl",
    "knob",
    "make_plugin_manager",
]
