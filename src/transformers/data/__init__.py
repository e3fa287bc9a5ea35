"""Collators (torch) and GLUE loading and metrics (numpy). Names load on first use (PEP 562): a script that only
needs the GLUE task table to build its --help does not import torch through the collators."""
import importlib

_SOURCE = {**dict.fromkeys(("DataCollator", "DataCollatorWithPadding", "default_data_collator"), "data_collator"),
           **dict.fromkeys(("GLUE_TASKS", "GlueDataError", "glue_compute_metrics", "glue_submission", "load_glue"),
                           "glue")}
__all__ = sorted(_SOURCE)


def __getattr__(name):
    if name not in _SOURCE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_SOURCE[name]}", __name__), name)
