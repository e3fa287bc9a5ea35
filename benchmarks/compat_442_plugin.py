"""pytest plugin loaded by benchmarks/compat_442.py (-p compat_442_plugin) into each run of one original 4.4.2 file.

- Placeholders for the out-of-scope names listed as `[stub]` in compat_442_exclusions.txt, installed only where
  this package lacks the name, so that a file importing e.g. RobertaForMaskedLM at module level still collects;
  using a placeholder raises. Test classes' `all_model_classes` / `all_generative_model_classes` lose them.
- Deselects the excluded test ids (fnmatch patterns allowed) and counts them.
- Writes every test's outcome and the first line of its failure to $COMPAT442_RESULTS (JSON).
"""
import fnmatch
import importlib
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat_442 import parse_exclusions  # noqa: E402

_TESTS, _STUBS = parse_exclusions(os.environ["COMPAT442_EXCLUSIONS"])
_RESULTS = {"tests": {}, "collection_errors": [], "excluded": 0}


class OutOfScope:
    """Stands in for a name outside this package's scope; any use raises."""

    reason = ""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} is out of scope here: {self.reason}")

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        raise NotImplementedError(f"{cls.__name__} is out of scope here: {cls.reason}")

    from_config = from_pretrained


def _module(dotted):
    """The module `dotted`, imported, or a placeholder module (and its missing parents) put into sys.modules."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        parent, _, leaf = dotted.rpartition(".")
        module = types.ModuleType(dotted)
        module.__path__ = []  # a package, so that children can hang under it
        module.__compat442_placeholder__ = True
        sys.modules[dotted] = module
        if parent:
            setattr(_module(parent), leaf, module)
        return module


def install_stubs():
    for dotted, reason in _STUBS.items():
        module_name, _, name = dotted.rpartition(".")
        module = _module(module_name)
        try:
            getattr(module, name)
            continue  # the package has it: the real one is tested
        except AttributeError:
            pass
        setattr(module, name, type(name, (OutOfScope,), {"reason": reason, "__module__": module_name}))


def _is_placeholder(obj):
    return isinstance(obj, type) and issubclass(obj, OutOfScope)


def _short(nodeid):
    return nodeid[len("tests/"):] if nodeid.startswith("tests/") else nodeid


def _excluded(test_id):
    return test_id in _TESTS or any(fnmatch.fnmatchcase(test_id, p) for p in _TESTS if "*" in p or "[" in p)


def pytest_configure(config):
    install_stubs()


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    for item in items:
        cls = getattr(item, "cls", None)
        for attr in ("all_model_classes", "all_generative_model_classes"):
            classes = getattr(cls, attr, None) if cls is not None else None
            if isinstance(classes, (tuple, list)) and any(_is_placeholder(c) for c in classes):
                setattr(cls, attr, tuple(c for c in classes if not _is_placeholder(c)))
        (drop if _excluded(_short(item.nodeid)) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    _RESULTS["excluded"] += len(drop)


def _first_line(report):
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "")[:240]


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longrepr)
        errors = [line[2:].strip() for line in text.splitlines() if line.startswith("E ")]
        _RESULTS["collection_errors"].append(f"{_short(report.nodeid)}: {(errors[-1] if errors else text)[:240]}")


def pytest_runtest_logreport(report):
    """One outcome per test, the worst seen: a failing subTest (reported on its own) or teardown is not hidden by a
    passing call."""
    test_id = _short(report.nodeid)
    current = _RESULTS["tests"].get(test_id)
    if report.failed:
        if current is None or current[0] not in ("failed", "error"):
            outcome = "failed" if report.when == "call" else "error"
            _RESULTS["tests"][test_id] = [outcome, _first_line(report)]
    elif report.skipped:
        if current is None or current[0] == "passed":
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else _first_line(report)
            _RESULTS["tests"][test_id] = ["skipped", str(reason)[:240]]
    elif current is None:
        _RESULTS["tests"][test_id] = ["passed", ""]


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("COMPAT442_RESULTS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_RESULTS, f)
