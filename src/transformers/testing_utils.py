"""Helpers for tests, public as they were in Transformers 4.4.2: skip decorators for optional dependencies and slow
tests, the device to test on, a log capturer, an environment patcher and a TestCase with temporary folders.

Written for this package; names and behaviour follow 4.4.2 so that tests written against it import unchanged.
"""
import contextlib
import inspect
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from .file_utils import (_installed, is_datasets_available, is_faiss_available, is_flax_available,
                         is_pandas_available, is_scatter_available, is_sentencepiece_available, is_tf_available,
                         is_tokenizers_available, is_torch_available)

# Hub repositories the 4.4.2 tests use (tests needing them are skipped or excluded offline).
SMALL_MODEL_IDENTIFIER = "julien-c/bert-xsmall-dummy"
DUMMY_UNKWOWN_IDENTIFIER = "julien-c/dummy-unknown"  # (sic) the 4.4.2 spelling
DUMMY_UNKNOWN_IDENTIFIER = DUMMY_UNKWOWN_IDENTIFIER
DUMMY_DIFF_TOKENIZER_IDENTIFIER = "julien-c/dummy-diff-tokenizer"


def parse_flag_from_env(key, default=False):
    """True/False from an environment variable holding yes/no, true/false, on/off or 1/0."""
    value = os.environ.get(key)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "y", "yes", "t", "true", "on"):
        return True
    if lowered in ("0", "n", "no", "f", "false", "off", ""):
        return False
    raise ValueError(f"{key}={value!r}: use yes/no (or 1/0, true/false, on/off)")


def parse_int_from_env(key, default=None):
    value = os.environ.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{key}={value!r} is not an integer") from None


# the suite's switches, read once: RUN_SLOW=1 runs the slow tests, and so on
_SWITCHES = {name: parse_flag_from_env(name, default=False) for name in (
    "RUN_SLOW", "RUN_PT_TF_CROSS_TESTS", "RUN_PT_FLAX_CROSS_TESTS", "RUN_CUSTOM_TOKENIZERS", "RUN_PIPELINE_TESTS")}
_run_slow_tests = _SWITCHES["RUN_SLOW"]  # some 4.4.2 tests import this name


def _skip_unless(condition, reason):
    def decorate(test_case):
        return test_case if condition else unittest.skip(reason)(test_case)
    return decorate


def slow(test_case):
    """Runs only with RUN_SLOW=1 (these tests download checkpoints or take long)."""
    return _skip_unless(_run_slow_tests, "test is slow (set RUN_SLOW=1 to run it)")(test_case)


def custom_tokenizers(test_case):
    reason = "test of a custom tokenizer (set RUN_CUSTOM_TOKENIZERS=1)"
    return _skip_unless(_SWITCHES["RUN_CUSTOM_TOKENIZERS"], reason)(test_case)


def _marked(test_case, flag, marker, reason):
    if not flag or not is_torch_available() or not is_tf_available():
        return unittest.skip(reason)(test_case)
    try:
        import pytest
    except ImportError:
        return test_case
    return getattr(pytest.mark, marker)()(test_case)


def is_pt_tf_cross_test(test_case):
    """PyTorch <-> TensorFlow tests: run only with RUN_PT_TF_CROSS_TESTS=1 and both frameworks installed."""
    return _marked(test_case, _SWITCHES["RUN_PT_TF_CROSS_TESTS"], "is_pt_tf_cross_test",
                   "PT-TF cross test (needs TensorFlow)")


def is_pt_flax_cross_test(test_case):
    if not _SWITCHES["RUN_PT_FLAX_CROSS_TESTS"] or not is_torch_available() or not is_flax_available():
        return unittest.skip("PT-Flax cross test (needs Flax)")(test_case)
    return test_case


def is_pipeline_test(test_case):
    return _skip_unless(_SWITCHES["RUN_PIPELINE_TESTS"], "pipeline test (set RUN_PIPELINE_TESTS=1)")(test_case)


def require_torch(test_case):
    return _skip_unless(is_torch_available(), "test requires PyTorch")(test_case)


def require_tf(test_case):
    return _skip_unless(is_tf_available(), "test requires TensorFlow")(test_case)


def require_flax(test_case):
    return _skip_unless(is_flax_available(), "test requires Flax")(test_case)


def require_tokenizers(test_case):
    return _skip_unless(is_tokenizers_available(), "test requires tokenizers")(test_case)


def require_sentencepiece(test_case):
    return _skip_unless(is_sentencepiece_available(), "test requires sentencepiece")(test_case)


def require_datasets(test_case):
    return _skip_unless(is_datasets_available(), "test requires datasets")(test_case)


def require_pandas(test_case):
    return _skip_unless(is_pandas_available(), "test requires pandas")(test_case)


def require_scatter(test_case):
    return _skip_unless(is_scatter_available(), "test requires torch-scatter")(test_case)


def require_faiss(test_case):
    return _skip_unless(is_faiss_available(), "test requires faiss")(test_case)


def require_optuna(test_case):
    return _skip_unless(_installed("optuna"), "test requires optuna")(test_case)


def require_ray(test_case):
    return _skip_unless(_installed("ray"), "test requires ray[tune]")(test_case)


def require_torch_scatter(test_case):
    return require_scatter(test_case)


def _gpu_count():
    if not is_torch_available():
        return 0
    import torch

    return torch.cuda.device_count()


def require_torch_gpu(test_case):
    return _skip_unless(_gpu_count() >= 1, "test requires a CUDA GPU")(test_case)


def require_torch_multi_gpu(test_case):
    return _skip_unless(_gpu_count() > 1, "test requires several CUDA GPUs")(test_case)


def require_torch_non_multi_gpu(test_case):
    return _skip_unless(is_torch_available() and _gpu_count() < 2, "test requires at most one GPU")(test_case)


def require_torch_tpu(test_case):
    return _skip_unless(False, "test requires a TPU (torch_xla)")(test_case)


require_torch_non_multi_gpu_but_fake = require_torch_non_multi_gpu

if is_torch_available():
    import torch

    torch_device = "cuda" if torch.cuda.is_available() else "cpu"
else:
    torch_device = None


def get_gpu_count():
    return _gpu_count()


def get_tests_dir(append_path=None):
    """The folder of the test file calling this (joined with `append_path` when given)."""
    caller = inspect.stack()[1].filename
    tests_dir = os.path.abspath(os.path.dirname(caller))
    return os.path.join(tests_dir, append_path) if append_path else tests_dir


def apply_print_resets(buf):
    """Drop everything a carriage return overwrote on each line (progress bars)."""
    return re.sub(r"^.*\r", "", buf, 0, re.M)


def assert_screenout(out, what):
    assert what.lower() in apply_print_resets(out).lower(), f"expected {what!r} in the output:\n{out}"


class CaptureStd:
    """Collects what is printed to stdout / stderr inside the block: `.out` and `.err` (replayed on exit)."""

    def __init__(self, out=True, err=True):
        self._want = {"out": out, "err": err}
        self.out = "" if out else "not capturing stdout"
        self.err = "" if err else "not capturing stderr"

    def __enter__(self):
        self._buffers, self._saved = {}, {}
        for which, wanted in self._want.items():
            if wanted:
                self._buffers[which] = io.StringIO()
                self._saved[which] = getattr(sys, "std" + which)
                setattr(sys, "std" + which, self._buffers[which])
        return self

    def __exit__(self, *exc):
        for which, buffer in self._buffers.items():
            setattr(sys, "std" + which, self._saved[which])
            text = buffer.getvalue()
            self._saved[which].write(text)
            setattr(self, which, apply_print_resets(text))

    def __repr__(self):
        return "".join(f"std{k}: {getattr(self, k)}\n" for k, v in self._want.items() if v)


class CaptureStdout(CaptureStd):
    def __init__(self):
        super().__init__(err=False)


class CaptureStderr(CaptureStd):
    def __init__(self):
        super().__init__(out=False)


class CaptureLogger:
    """Collects what `logger` emits inside the block into `.out` (one record per line, the message alone)."""

    def __init__(self, logger):
        self.logger = logger
        self.io = io.StringIO()
        self.handler = logging.StreamHandler(self.io)
        self.out = ""

    def __enter__(self):
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.out = self.io.getvalue()

    def __repr__(self):
        return f"captured: {self.out}\n"


def mockenv(**kwargs):
    """Decorator / context manager setting environment variables for the duration of a test."""
    return mock.patch.dict(os.environ, kwargs)


@contextlib.contextmanager
def mockenv_context(*remove, **update):
    """Temporarily remove the variables named in `remove` and set those of `update`."""
    saved = {k: os.environ[k] for k in set(remove) | set(update) if k in os.environ}
    try:
        for key in remove:
            os.environ.pop(key, None)
        os.environ.update(update)
        yield
    finally:
        for key in set(remove) | set(update):
            os.environ.pop(key, None)
        os.environ.update(saved)


class TestCasePlus(unittest.TestCase):
    """unittest.TestCase knowing its paths (test file, tests, repo root, src) and making temporary folders that
    are removed after the test."""

    def setUp(self):
        super().setUp()
        self.teardown_tmp_dirs = []
        self._test_file_path = inspect.getfile(type(self))
        path = Path(self._test_file_path).resolve()
        self._test_file_dir = path.parent
        for up in range(1, 4):
            candidate = path.parents[up]
            if (candidate / "src").is_dir() and (candidate / "tests").is_dir():
                self._repo_root_dir = candidate
                break
        else:
            self._repo_root_dir = path.parents[1]
        self._tests_dir = self._repo_root_dir / "tests"
        self._examples_dir = self._repo_root_dir / "examples"
        self._src_dir = self._repo_root_dir / "src"

    test_file_path = property(lambda self: self._test_file_path)
    test_file_path_str = property(lambda self: str(self._test_file_path))
    test_file_dir = property(lambda self: self._test_file_dir)
    test_file_dir_str = property(lambda self: str(self._test_file_dir))
    tests_dir = property(lambda self: self._tests_dir)
    tests_dir_str = property(lambda self: str(self._tests_dir))
    examples_dir = property(lambda self: self._examples_dir)
    examples_dir_str = property(lambda self: str(self._examples_dir))
    repo_root_dir = property(lambda self: self._repo_root_dir)
    repo_root_dir_str = property(lambda self: str(self._repo_root_dir))
    src_dir = property(lambda self: self._src_dir)
    src_dir_str = property(lambda self: str(self._src_dir))

    def get_env(self):
        """os.environ with src/ (and the tests folder) first on PYTHONPATH, for subprocesses."""
        env = os.environ.copy()
        paths = [self.src_dir_str, self.tests_dir_str] + [p for p in env.get("PYTHONPATH", "").split(":") if p]
        env["PYTHONPATH"] = ":".join(paths)
        return env

    def get_auto_remove_tmp_dir(self, tmp_dir=None, before=None, after=None):
        """A temporary folder (a new one, or `tmp_dir` emptied first when before=True), removed after the test
        unless after=False (default: removed when made here, kept when `tmp_dir` was given)."""
        if tmp_dir is not None:
            before = True if before is None else before
            after = False if after is None else after
            path = Path(tmp_dir).resolve()
            if not str(tmp_dir).startswith("./"):
                raise ValueError(f"tmp_dir={tmp_dir!r} must start with './' (a folder below the current one)")
            if before and path.exists():
                shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, exist_ok=True)
        else:
            after = True if after is None else after
            path = Path(tempfile.mkdtemp())
        if after:
            self.teardown_tmp_dirs.append(str(path))
        return str(path)

    def tearDown(self):
        for path in self.teardown_tmp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.teardown_tmp_dirs = []
        super().tearDown()


def execute_subprocess_async(cmd, env=None, stdin=None, timeout=180, quiet=False, echo=True):
    """Run `cmd` (a list), echoing its output unless quiet; raise RuntimeError with its stderr on a failure."""
    if echo:
        print("\nRunning:", " ".join(cmd))
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)
    if not quiet:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    if proc.returncode:
        raise RuntimeError(f"'{' '.join(cmd)}' failed with return code {proc.returncode}: {proc.stderr.strip()}")
    if not proc.stdout and not proc.stderr:
        raise RuntimeError(f"'{' '.join(cmd)}' produced no output")
    return proc


# -- pytest hooks the 4.4.2 conftest.py calls -------------------------------------------------------------------
def pytest_addoption_shared(parser):
    """Adds --make-reports=ID (once, however many conftest files call this)."""
    option = "--make-reports"
    if option not in getattr(parser, "_compat_options", set()):
        try:
            parser.addoption(option, action="store", default=False,
                             help="write the test reports under reports/ID/ (ID names the run)")
        except ValueError:  # already added by another conftest
            pass
        parser._compat_options = getattr(parser, "_compat_options", set()) | {option}


def pytest_terminal_summary_main(tr, id):
    """Writes reports/ID/{durations,failures_short,failures_long,stats,summary_short}.txt for --make-reports."""
    folder = Path("reports") / (id if id and id is not True else "tests")
    folder.mkdir(parents=True, exist_ok=True)
    stats = tr.stats
    reports = [r for key in ("failed", "error") for r in stats.get(key, [])]
    with open(folder / "failures_long.txt", "w") as f:
        for r in reports:
            f.write(f"{'_' * 20} {r.nodeid} {'_' * 20}\n{r.longreprtext}\n\n")
    with open(folder / "failures_short.txt", "w") as f:
        for r in reports:
            f.write(f"{r.nodeid}: {r.longreprtext.strip().splitlines()[-1] if r.longreprtext.strip() else ''}\n")
    timed = [r for key in ("passed", "failed", "error") for r in stats.get(key, []) if hasattr(r, "duration")]
    with open(folder / "durations.txt", "w") as f:
        for r in sorted(timed, key=lambda r: r.duration, reverse=True):
            f.write(f"{r.duration:.3f}s {r.when} {r.nodeid}\n")
    with open(folder / "stats.txt", "w") as f:
        f.write("".join(f"{key}: {len(value)}\n" for key, value in stats.items() if key))
    with open(folder / "summary_short.txt", "w") as f:
        for key in ("failed", "error", "skipped"):
            for r in stats.get(key, []):
                f.write(f"{key.upper()} {r.nodeid}\n")
