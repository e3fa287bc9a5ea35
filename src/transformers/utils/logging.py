"""Library-wide logging: every module logs under the 'transformers' root logger, WARNING by default."""
import logging
import os
import sys
import threading

from logging import CRITICAL, DEBUG, ERROR, FATAL, INFO, NOTSET, WARN, WARNING  # noqa: F401

_lock = threading.Lock()
_handler = None
_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR, "critical": CRITICAL}
log_levels = _LEVELS  # 4.4.2's public name


def _root():
    return logging.getLogger(__name__.split(".")[0])


def _configure():
    global _handler
    with _lock:
        if _handler is not None:
            return
        _handler = logging.StreamHandler(sys.stderr)
        _handler.flush = sys.stderr.flush
        root = _root()
        root.addHandler(_handler)
        env = os.getenv("TRANSFORMERS_VERBOSITY", "")
        if env and env.lower() not in _LEVELS:
            logging.getLogger().warning(f"Unknown option TRANSFORMERS_VERBOSITY={env}, has to be one of: "
                                        f"{', '.join(_LEVELS)}")
        root.setLevel(_LEVELS.get(env.lower(), WARNING))
        root.propagate = False


def _reset_library_root_logger():
    """Remove the library's handler and level: the next get_logger() configures them again (re-reading
    TRANSFORMERS_VERBOSITY)."""
    global _handler
    with _lock:
        if _handler is None:
            return
        root = _root()
        root.removeHandler(_handler)
        root.setLevel(NOTSET)
        _handler = None


def get_logger(name=None):
    _configure()
    return logging.getLogger(name or _root().name)


def get_verbosity():
    _configure()
    return _root().getEffectiveLevel()


def set_verbosity(level):
    _configure()
    _root().setLevel(level)


def set_verbosity_debug():
    set_verbosity(DEBUG)


def set_verbosity_info():
    set_verbosity(INFO)


def set_verbosity_warning():
    set_verbosity(WARNING)


def set_verbosity_error():
    set_verbosity(ERROR)


def disable_default_handler():
    _configure()
    _root().removeHandler(_handler)


def enable_default_handler():
    _configure()
    _root().addHandler(_handler)


def disable_propagation():
    _configure()
    _root().propagate = False


def enable_propagation():
    _configure()
    _root().propagate = True


def enable_explicit_format():
    """Prefix each record with level, file and line, as run_glue.py-style scripts ask for."""
    _configure()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(filename)s:%(lineno)d: %(message)s", datefmt="%H:%M:%S")
    for h in _root().handlers:
        h.setFormatter(fmt)


def reset_format():
    _configure()
    for h in _root().handlers:
        h.setFormatter(None)
