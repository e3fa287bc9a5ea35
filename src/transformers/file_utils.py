"""Finding files: a local directory first, else the Hugging Face hub through huggingface_hub's cache.

Offline (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1 or local_files_only=True) only the cache is read. So it is when
the hub cannot be reached at all (checked once, in at most HUB_PROBE_SECONDS), instead of retrying for half a minute.
"""
import functools
import os
import socket
from urllib.parse import urlparse

from .utils import logging

logger = logging.get_logger(__name__)

HUB_PROBE_SECONDS = 3.0

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"
SAFE_WEIGHTS_NAME = "model.safetensors"
LORA_WEIGHTS_NAME = "pytorch_model_lora.bin"
SAFE_LORA_WEIGHTS_NAME = "model_lora.safetensors"


def is_offline_mode():
    return any(os.environ.get(k, "").upper() in ("1", "ON", "YES", "TRUE") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


class HubFileNotFound(OSError):
    pass


def hub_endpoint():
    from huggingface_hub import constants

    return constants.ENDPOINT


@functools.lru_cache(maxsize=None)
def _can_connect(endpoint):
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=HUB_PROBE_SECONDS).close()
        return True
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def _warn_once(message):
    logger.warning(message)


def hub_reachable():
    """Whether a connection to the hub opens (behind a proxy, assumed yes: only the proxy knows)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    return _can_connect(hub_endpoint())


def resolve_file(path_or_id, filename, cache_dir=None, revision=None, use_auth_token=None,
                 local_files_only=False, force_download=False, **_ignored):
    """Local path of `filename` for a directory or a hub repo id; None when the repo has no such file.

    Raises OSError with a one-line explanation when the repo itself cannot be reached and is not cached.
    """
    path_or_id = str(path_or_id)
    if os.path.isdir(path_or_id):
        candidate = os.path.join(path_or_id, filename)
        return candidate if os.path.isfile(candidate) else None
    if path_or_id.count("/") > 1 or path_or_id.startswith((".", "/", "~")) or os.path.isfile(path_or_id):
        raise OSError(f"{path_or_id} is not a directory: pass an existing model folder or a hub id such as 'roberta-base'")

    import huggingface_hub
    from huggingface_hub.utils import (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError,
                                       RepositoryNotFoundError)

    offline = local_files_only or is_offline_mode()
    unreachable = not offline and not hub_reachable()
    try:
        found = huggingface_hub.hf_hub_download(
            path_or_id, filename, cache_dir=cache_dir, revision=revision, token=use_auth_token,
            local_files_only=offline or unreachable, force_download=force_download,
        )
        if unreachable:
            _warn_once(f"the hub, {hub_endpoint()}, cannot be reached: reading cached files (HF_HUB_OFFLINE=1 skips "
                       "this check)")
        return found
    except LocalEntryNotFoundError:  # before EntryNotFoundError: newer hubs make it a subclass
        # Either the file is absent from a cached snapshot, or nothing is cached and the hub is unreachable.
        if _snapshot_is_cached(path_or_id, cache_dir, revision):
            return None
        how = "offline mode is on" if offline else f"the hub, {hub_endpoint()}, cannot be reached"
        raise HubFileNotFound(
            f"'{path_or_id}' is not a local directory and is not in the cache ({how}): pass a local folder holding "
            f"{filename}, or download it once with network access (HF_HUB_OFFLINE=1 then reads only the cache)"
        ) from None
    except EntryNotFoundError:
        return None
    except (RepositoryNotFoundError, HFValidationError):
        raise HubFileNotFound(
            f"'{path_or_id}' is neither a local directory nor a model id on the hub: check the name or path"
        ) from None


def _snapshot_is_cached(repo_id, cache_dir, revision):
    from huggingface_hub import constants

    root = os.path.join(cache_dir or constants.HF_HUB_CACHE, "models--" + repo_id.replace("/", "--"))
    ref = os.path.join(root, "refs", revision or "main")
    if os.path.isfile(ref):
        with open(ref) as f:
            revision = f.read().strip()
    return bool(revision) and os.path.isdir(os.path.join(root, "snapshots", revision))


# -- which optional libraries are installed (4.4.2 names; only PyTorch models live in this package) --------------
def _installed(name):
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def is_torch_available():
    return _installed("torch")


def is_tokenizers_available():
    return _installed("tokenizers")


def is_sentencepiece_available():
    return _installed("sentencepiece")


def is_datasets_available():
    return _installed("datasets")


def is_sklearn_available():
    return _installed("sklearn") and _installed("scipy")


def is_pandas_available():
    return _installed("pandas")


def is_psutil_available():
    return _installed("psutil")


def is_apex_available():
    return _installed("apex")


def is_faiss_available():
    return _installed("faiss")


def is_scatter_available():
    return _installed("torch_scatter")


def is_protobuf_available():
    return _installed("google.protobuf")


def is_torch_tpu_available():
    return _installed("torch_xla")


def is_tf_available():
    """Always False: this package has no TensorFlow models, whether or not TensorFlow is installed."""
    return False


def is_flax_available():
    """Always False: this package has no Flax models."""
    return False


def __getattr__(name):
    # 4.4.2 defined ModelOutput here; it lives in modeling_outputs (which imports torch) and is re-exported lazily.
    if name == "ModelOutput":
        from .modeling_outputs import ModelOutput

        return ModelOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
