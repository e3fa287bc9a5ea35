"""LoRA weights in three layouts: this fork's files, PEFT adapter folders, and merged plain models.

- legacy (pytorch_model_lora.bin / model_lora.safetensors, and the LoRA paper's released files): `<module>.lora_A`,
  `<module>.lora_B`, plus the head under its model names (`classifier.dense.weight`, `pooler.dense.weight`, ...);
- PEFT adapter folder (adapter_config.json + adapter_model.safetensors, what `peft.PeftModel.from_pretrained` reads):
  `base_model.model.<module>.lora_A.weight`, and the head modules listed in `modules_to_save` stored under
  `base_model.model.<their names>`;
- merged: a plain model folder for stock Transformers with W + (alpha / r) B A folded in and no LoRA tensors.

Every key rename between the first two goes through `to_peft_key` / `to_legacy_key`; the trainer's save, the
`--lora_path` loader and scripts/convert_lora.py all use them.

One layer above `lora` (the layer itself) and `parameter_groups` (the name rules), and importing neither adapters
nor `method_loading`, whose `load_lora_state_dict` checks and loads what `read_lora_path` returns here.
"""
import copy
import json
import os
import shutil
import tempfile
import warnings

import torch

from . import lora
from .file_utils import CONFIG_NAME, LORA_WEIGHTS_NAME, SAFE_LORA_WEIGHTS_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_NAME
from .parameter_groups import is_adapter_key
from .safe_loading import sniff
from .utils import logging

logger = logging.get_logger(__name__)

PEFT_PREFIX = "base_model.model."
ADAPTER_DIR = "peft_adapter"  # the adapter folder the trainer writes inside every save directory
ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
_LORA_SUFFIXES = (".lora_A", ".lora_B")
# Config fields only this fork reads; stock Transformers does not know them.
FORK_CONFIG_FIELDS = ("apply_lora", "lora_r", "lora_alpha", "lora_dropout", "apply_adapter", "adapter_type",
                      "adapter_size", "apply_bitfit", "reg_loss_wgt", "masking_prob", "cls_dropout")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "vocab.txt", "spm.model", "added_tokens.json")


# -- the key mapping ------------------------------------------------------------------------------------------------
def to_peft_key(key):
    """'roberta.(...).query.lora_A' -> 'base_model.model.roberta.(...).query.lora_A.weight'; head keys only gain the
    prefix ('classifier.dense.weight' -> 'base_model.model.classifier.dense.weight')."""
    return PEFT_PREFIX + key + (".weight" if key.endswith(_LORA_SUFFIXES) else "")


def to_legacy_key(key):
    """Inverse of `to_peft_key`."""
    if not key.startswith(PEFT_PREFIX):
        raise ValueError(f"tensor {key} does not start with '{PEFT_PREFIX}'")
    key = key[len(PEFT_PREFIX):]
    return key[:-len(".weight")] if key.endswith(tuple(s + ".weight" for s in _LORA_SUFFIXES)) else key


def _is_lora(key):
    return key.endswith(_LORA_SUFFIXES)


def describe_legacy(sd, source="LoRA state dict"):
    """Check a legacy state dict and read off what an adapter config needs: r, target module names, head modules.

    Raises ValueError (one line) for anything PEFT could not represent."""
    if not sd:
        raise ValueError(f"{source}: holds no tensors: pass a pytorch_model_lora.bin written by training")
    odd = [k for k in sd if "lora_" in k.rsplit(".", 1)[-1] and not _is_lora(k)]
    if odd:
        raise ValueError(f"{source}: {odd[0]} is not a lora_A/lora_B tensor: only loralib LoRA files are supported")
    modules = sorted({k.rsplit(".", 1)[0] for k in sd if _is_lora(k)})
    if not modules:
        raise ValueError(f"{source}: holds no LoRA tensors (<module>.lora_A / .lora_B): it is not a LoRA checkpoint")
    ranks = set()
    for m in modules:
        a, b = sd.get(m + ".lora_A"), sd.get(m + ".lora_B")
        if a is None or b is None:
            raise ValueError(f"{source}: {m} has only one of lora_A/lora_B: the file is incomplete")
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise ValueError(f"{source}: {m}.lora_A {list(a.shape)} and .lora_B {list(b.shape)} do not form B @ A")
        ranks.add(a.shape[0])
    if len(ranks) > 1:
        raise ValueError(f"{source}: LoRA ranks differ across modules ({sorted(ranks)}): one r per file is supported")
    # Head modules by the name PEFT matches (a name suffix): the model's child ('classifier', DeBERTa's 'pooler'),
    # or the backbone's child for a trained tensor inside the backbone ('bert.pooler' -> 'pooler').
    backbones = {m.split(".", 1)[0] for m in modules}
    saved = set()
    for k in sd:
        parts = k.split(".")
        if not _is_lora(k):
            if len(parts) < 2 + (parts[0] in backbones):
                raise ValueError(f"{source}: tensor {k} belongs to no head module: it cannot go in modules_to_save")
            saved.add(parts[1] if parts[0] in backbones else parts[0])
    return {"r": ranks.pop(), "target_modules": sorted({m.rsplit(".", 1)[-1] for m in modules}),
            "modules_to_save": sorted(saved) or None}


def make_adapter_config(sd, lora_alpha, lora_dropout=0.0, base_model_name_or_path=None, source="LoRA state dict"):
    """The adapter_config.json contents for a legacy state dict (PEFT's field names and meanings)."""
    if lora_alpha is None or lora_alpha <= 0:
        raise ValueError(f"{source}: a positive lora_alpha is needed (it is not stored in legacy files): pass it")
    info = describe_legacy(sd, source)
    return {"peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": base_model_name_or_path,
            "revision": None, "r": info["r"], "lora_alpha": lora_alpha, "lora_dropout": float(lora_dropout or 0.0),
            "target_modules": info["target_modules"], "modules_to_save": info["modules_to_save"], "bias": "none",
            "fan_in_fan_out": False, "use_rslora": False, "use_dora": False, "init_lora_weights": True,
            "inference_mode": True, "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {},
            "alpha_pattern": {}}


def legacy_to_peft(sd):
    return {to_peft_key(k): v for k, v in sd.items()}


def _under(module_path, names):
    """Does the module at `module_path` sit inside a module PEFT would match by one of `names` (a name suffix)?"""
    parts = module_path.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(p == n or p.endswith("." + n) for p in prefixes for n in names)


def check_adapter_config(cfg, source):
    """Refuse adapter settings whose arithmetic differs from loralib's W x + (alpha / r) B A x."""
    need = {"peft_type": "LORA", "task_type": "SEQ_CLS", "bias": "none"}
    for field, want in need.items():
        if cfg.get(field, want) != want:
            raise ValueError(f"{source}: {field} is {cfg.get(field)!r}; only {field}={want!r} adapters map onto this "
                             "package's sequence classifiers")
    for flag in ("use_rslora", "use_dora", "fan_in_fan_out", "lora_bias"):
        if cfg.get(flag):
            raise ValueError(f"{source}: {flag}=true is not loralib LoRA (scaling or layout differs): retrain or "
                             "convert without it")
    for field in ("rank_pattern", "alpha_pattern"):
        if cfg.get(field):
            raise ValueError(f"{source}: {field} is set (per-module r/alpha): one r and one lora_alpha per model "
                             "are supported")
    for field in ("r", "lora_alpha"):
        if not isinstance(cfg.get(field), (int, float)) or isinstance(cfg.get(field), bool) or cfg[field] <= 0:
            raise ValueError(f"{source}: {field} is {cfg.get(field)!r}: adapter_config.json needs a positive number")


def peft_to_legacy(peft_sd, cfg, source="PEFT adapter"):
    """Adapter tensors -> legacy state dict, refusing tensors that are neither LoRA nor under modules_to_save."""
    check_adapter_config(cfg, source)
    saved = cfg.get("modules_to_save") or []
    sd = {}
    for key, value in peft_sd.items():
        try:
            legacy = to_legacy_key(key)
        except ValueError as e:
            raise ValueError(f"{source}: {e}: not a PEFT adapter of a whole model") from None
        if "lora_" in key:
            if not _is_lora(legacy):
                raise ValueError(f"{source}: {key} is not a lora_A/lora_B weight (embedding LoRA, LoRA biases and "
                                 "adapter names inside keys are not supported)")
        elif "." not in legacy or not _under(legacy.rsplit(".", 1)[0], saved):
            raise ValueError(f"{source}: {key} is neither a LoRA tensor nor under modules_to_save {saved}")
        sd[legacy] = value
    info = describe_legacy(sd, source)
    if info["r"] != cfg["r"]:
        raise ValueError(f"{source}: adapter_config.json says r={cfg['r']} but the tensors have rank {info['r']}")
    return sd


# -- files ----------------------------------------------------------------------------------------------------------
def _tensors(sd):
    # safetensors refuses shared or strided storage: an independent contiguous copy of each tensor (values unchanged).
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in sd.items()}


def _write_folder(path, weights_name, tensors, json_name, obj):
    """Write a folder holding one safetensors file and one JSON file. It is built in a temporary sibling and then
    swapped in, so a crash never leaves a half-written folder."""
    from safetensors.torch import save_file

    path = os.path.abspath(path)
    if os.path.isfile(path):
        raise ValueError(f"{path} is a file: pass a folder path")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        save_file(tensors, os.path.join(tmp, weights_name), metadata={"format": "pt"})
        with open(os.path.join(tmp, json_name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o755)  # mkdtemp's 0o700 would hide the folder from other users
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_adapter(path, legacy_sd, cfg):
    """Write a PEFT adapter folder from a legacy state dict and an adapter config (see `make_adapter_config`)."""
    _write_folder(path, ADAPTER_WEIGHTS_NAME, _tensors(legacy_to_peft(legacy_sd)), ADAPTER_CONFIG_NAME, cfg)


def read_adapter(path):
    """Read a PEFT adapter folder -> (legacy state dict, adapter config). ValueError with one line on bad input."""
    cfg_file, weights = os.path.join(path, ADAPTER_CONFIG_NAME), os.path.join(path, ADAPTER_WEIGHTS_NAME)
    if not os.path.isfile(cfg_file):
        raise ValueError(f"{path}: no {ADAPTER_CONFIG_NAME}: not a PEFT adapter folder")
    try:
        with open(cfg_file, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{cfg_file} is not valid JSON ({str(e).splitlines()[0]}): rewrite or reconvert it") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_file} does not hold a JSON object: rewrite or reconvert it")
    if not os.path.isfile(weights):
        other = " (adapter_model.bin is not read: re-save it with safe_serialization)" if os.path.isfile(
            os.path.join(path, "adapter_model.bin")) else ""
        raise ValueError(f"{path}: no {ADAPTER_WEIGHTS_NAME}{other}")
    from safetensors.torch import load_file

    try:
        peft_sd = load_file(weights, device="cpu")
    except Exception as e:  # noqa: BLE001 - any reader failure means a damaged file to the user
        raise ValueError(f"{weights} is not a readable safetensors file ({type(e).__name__}): re-save it") from None
    return peft_to_legacy(peft_sd, cfg, source=path), cfg


def read_legacy(path):
    """Read a legacy LoRA file -> (state dict, adapter config stored in its metadata by convert_lora.py, or None)."""
    from .modeling_utils import load_state_dict_file

    try:
        sd = load_state_dict_file(path, expected=f"the {SAFE_LORA_WEIGHTS_NAME} or {LORA_WEIGHTS_NAME} of a LoRA run")
    except OSError as e:
        raise ValueError(str(e)) from None
    cfg = None
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        cfg = json.loads(meta["adapter_config"]) if "adapter_config" in meta else None
    return sd, cfg


def write_legacy(path, sd, cfg=None):
    """Write a legacy file (.bin: torch.save; .safetensors: with the adapter config in its metadata, so a later
    conversion back to PEFT needs no flags). Written to a temporary name, then renamed."""
    path = os.path.abspath(path)
    tmp = f"{path}.tmp"
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import save_file

            meta = {"format": "pt"}
            if cfg is not None:
                meta["adapter_config"] = json.dumps(cfg, sort_keys=True)
            save_file(_tensors(sd), tmp, metadata=meta)
        else:
            torch.save(_tensors(sd), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


LORA_INPUTS = (f"pass the {SAFE_LORA_WEIGHTS_NAME} or {LORA_WEIGHTS_NAME} of a LoRA run, its save folder, or a PEFT "
               "adapter folder")


def _not_lora_file(path):
    """(what a file that cannot hold LoRA weights is, what to pass instead), or None when it may hold tensors."""
    name, kind = os.path.basename(path), sniff(path)
    tokenizer = ("a tokenizer file", f"tokenizers go to --tokenizer_name; for --lora_path {LORA_INPUTS}")
    if kind == "a JSON file":
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except (OSError, ValueError):
            obj = None
        if isinstance(obj, dict):
            if "peft_type" in obj:
                return "the config of a PEFT adapter", f"pass its folder, {os.path.dirname(path) or '.'}"
            if "model_type" in obj or "architectures" in obj:
                return "a model config (config.json)", LORA_INPUTS
            if "log_history" in obj:
                return "a trainer state (trainer_state.json)", LORA_INPUTS
            if "added_tokens" in obj or "model_max_length" in obj:
                return tokenizer
    if name in TOKENIZER_FILES:
        return tokenizer
    return (kind, LORA_INPUTS) if kind else None


def _refuse_model_checkpoint(sd, path):
    """A LoRA file never holds the token embeddings: a file that does is a whole model, and loading it as LoRA
    would overwrite the pretrained backbone."""
    if not any(k.endswith("word_embeddings.weight") for k in sd):
        return
    if any(_is_lora(k) for k in sd):
        raise ValueError(f"{path} is the full model of a LoRA run ({len(sd)} tensors, the frozen backbone included), "
                         f"not a LoRA file: pass the {SAFE_LORA_WEIGHTS_NAME} or {LORA_WEIGHTS_NAME} saved next to "
                         "it, or its folder")
    raise ValueError(f"{path} is a model without LoRA tensors (pretrained or fully fine-tuned, {len(sd)} tensors), "
                     f"not a LoRA file: give its folder as --model_name_or_path, or {LORA_INPUTS}")


def _refuse_folder(path):
    names = set(os.listdir(path))
    if {SAFE_WEIGHTS_NAME, WEIGHTS_NAME} & names:
        what = "a model folder without LoRA files"
    elif names and names <= set(TOKENIZER_FILES):
        what = "a tokenizer folder"
    else:
        what = "an empty folder" if not names else "a folder without LoRA files"
    raise ValueError(f"{path} is {what} (a LoRA folder holds {ADAPTER_CONFIG_NAME} + {ADAPTER_WEIGHTS_NAME}, "
                     f"{ADAPTER_DIR}/, {SAFE_LORA_WEIGHTS_NAME} or {LORA_WEIGHTS_NAME}): {LORA_INPUTS}")


def read_lora_path(path):
    """What `--lora_path` accepts -> (legacy state dict, adapter config or None): a legacy file, a PEFT adapter folder,
    or a save folder of this trainer (its peft_adapter/, else its model_lora.safetensors / pytorch_model_lora.bin).
    Anything else is a one-line ValueError saying what it is: a whole model, a config, a tokenizer file, a damaged
    or empty file, a folder without LoRA files."""
    path = str(path)
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist: {LORA_INPUTS}")
    if not os.path.isdir(path):
        found = _not_lora_file(path)
        if found:
            raise ValueError(f"{path} is {found[0]}, not LoRA weights: {found[1]}")
        sd = read_legacy(path)[0]
        _refuse_model_checkpoint(sd, path)
        return sd, None
    for folder in (path, os.path.join(path, ADAPTER_DIR)):
        if os.path.isfile(os.path.join(folder, ADAPTER_CONFIG_NAME)):
            return read_adapter(folder)
    for name in (SAFE_LORA_WEIGHTS_NAME, LORA_WEIGHTS_NAME):
        if os.path.isfile(os.path.join(path, name)):
            return read_legacy(os.path.join(path, name))[0], None
    _refuse_folder(path)


def check_adapter_fits(model, cfg, source):
    """The adapter's alpha / r must be the scaling the model's LoRA layers apply (shapes are checked by the loader)."""
    layers = lora._lora_layers(model)
    if layers and abs(layers[0].scaling - cfg["lora_alpha"] / cfg["r"]) > 1e-12 * layers[0].scaling:
        raise ValueError(f"{source}: adapter has lora_alpha {cfg['lora_alpha']} with r {cfg['r']} but the model "
                         f"scales LoRA by {layers[0].scaling:g} (lora_alpha {layers[0].lora_alpha}): pass "
                         f"--lora_alpha {cfg['lora_alpha']} --lora_r {cfg['r']}")


# -- from a model ---------------------------------------------------------------------------------------------------
def lora_free_position_query(model):
    """True when the model has DeBERTa-V2 attention whose relative-position query reuses query_proj's base weight
    without its LoRA delta (share_att_key with p2c): PEFT and merged weights cannot express that path."""
    return any(getattr(m, "share_att_key", False) and getattr(m, "relative_attention", False)
               and "p2c" in getattr(m, "pos_att_type", ()) and getattr(getattr(m, "query_proj", None), "r", 0) > 0
               for m in model.modules())


_POSITION_QUERY_NOTE = ("with share_att_key and p2c, this DeBERTa-V2 projects relative positions with query_proj's "
                        "base weight only (the fork's behaviour); stock Transformers applies the LoRA delta (or the "
                        "merged weight) there too, so its logits differ")
_warned = set()


def save_peft_adapter(model, path, state_dict=None):
    """Write `model`'s LoRA + head tensors (lora.lora_state_dict, or `state_dict`) as a PEFT adapter folder."""
    sd = lora.lora_state_dict(model) if state_dict is None else state_dict
    config = model.config
    layers = lora._lora_layers(model)
    dropout = getattr(layers[0].lora_dropout, "p", 0.0) if layers else 0.0
    try:
        cfg = make_adapter_config(sd, getattr(config, "lora_alpha", None), dropout,
                                  getattr(config, "_name_or_path", None) or None, source=type(model).__name__)
    except ValueError as e:  # a model PEFT cannot describe must not stop training: the legacy files are written
        logger.warning(f"no PEFT adapter written: {e}")
        return None
    write_adapter(path, sd, cfg)
    if lora_free_position_query(model) and "peft" not in _warned:
        _warned.add("peft")
        logger.warning(f"PEFT adapter {path}: {_POSITION_QUERY_NOTE}")
    return cfg


def stock_config_dict(config, architecture):
    """config.json contents for stock Transformers: the fork-only fields dropped."""
    d = config.to_dict()
    for field in FORK_CONFIG_FIELDS + ("_name_or_path", "transformers_version"):
        d.pop(field, None)
    cls_dropout = getattr(config, "cls_dropout", None)
    if config.model_type == "deberta-v2" and cls_dropout is not None:
        d["cls_dropout"] = cls_dropout  # stock DeBERTa-V2 reads this very field
    elif cls_dropout is not None and d.get("classifier_dropout") is None:
        d["classifier_dropout"] = cls_dropout  # stock RoBERTa/BERT name for the same dropout
    d["architectures"] = [architecture]
    return d


@torch.no_grad()
def merged_state_dict(model):
    """The model's state dict with W + (alpha / r) B A in each LoRA layer's weight and no LoRA tensors."""
    lora_layers = set(lora._lora_layers(model))
    layers = {name: m for name, m in model.named_modules() if m in lora_layers}
    out = {}
    for key, value in model.state_dict().items():
        if _is_lora(key):
            continue
        module, _, leaf = key.rpartition(".")
        m = layers.get(module)
        if m is not None and leaf == "weight" and not m.merged:  # a merged layer already holds the sum
            value = (value.float() + lora._delta(m).float()).to(value.dtype)  # summed in float32 for half models
        out[key] = value.detach().cpu().clone(memory_format=torch.contiguous_format)
    return out


def sample_batch(config, batch=2, length=24, seed=0):
    """Fixed random token ids (never the pad id) for comparing two models' logits."""
    g = torch.Generator().manual_seed(seed)
    limit = getattr(config, "max_position_embeddings", 512) - 2
    length = max(2, min(length, limit))
    ids = torch.randint(0, config.vocab_size, (batch, length), generator=g)
    pad = getattr(config, "pad_token_id", None)
    if pad is not None:
        ids[ids == pad] = (pad + 1) % config.vocab_size
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def export_merged(model, path, check=True):
    """Write a plain model folder for stock Transformers: config.json without the fork-only fields and
    model.safetensors with W + (alpha / r) B A folded into each LoRA weight, no LoRA tensors.

    With `check`, rebuilds the plain model with this package and returns the largest absolute logit difference
    against `model` on a fixed sample batch (always checked, and warned about, for DeBERTa-V2 with a LoRA-free
    position query, which no merged weight can reproduce). Returns {"path", "max_abs_logit_diff"}."""
    if any(is_adapter_key(name) for name, _ in model.named_parameters()):
        # an adapter is extra layers with a nonlinearity, not a weight delta: no stock model has a place for it
        raise ValueError(f"{type(model).__name__} has adapter layers, which cannot be folded into a plain model: "
                         "use save_pretrained and this package to serve it (only LoRA merges)")
    sd = merged_state_dict(model)
    _write_folder(path, SAFE_WEIGHTS_NAME, sd, CONFIG_NAME, stock_config_dict(model.config, type(model).__name__))
    approximate = lora_free_position_query(model)
    diff = None
    if check or approximate:
        diff = _merged_logit_diff(model, sd)
    if approximate:
        warnings.warn(f"merged export {path}: {_POSITION_QUERY_NOTE}; largest logit difference on a sample batch "
                      f"{diff:.3g}", stacklevel=2)
    return {"path": str(path), "max_abs_logit_diff": diff}


@torch.no_grad()
def _merged_logit_diff(model, merged_sd):
    config = copy.deepcopy(model.config)
    config.apply_lora = False
    plain = type(model)(config)
    plain.load_state_dict(merged_sd, strict=True)
    plain.to(next(model.parameters()).device).eval()
    was_training = model.training
    model.eval()
    try:
        inputs = {k: v.to(next(model.parameters()).device) for k, v in sample_batch(model.config).items()}
        ours, theirs = model(**inputs).logits, plain(**inputs).logits
    finally:
        model.train(was_training)
    return (ours.float() - theirs.float()).abs().max().item()
