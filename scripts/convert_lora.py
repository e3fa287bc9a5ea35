"""Convert a LoRA checkpoint between this fork's legacy file and a PEFT adapter folder; tensors are copied bit for bit.

legacy -> PEFT (the source is a file; legacy files do not store alpha, so give it unless a .safetensors written by
this script carries it):
    python scripts/convert_lora.py roberta_base_lora_mnli.bin mnli_adapter --lora_alpha 16 --base_model roberta-base
PEFT -> legacy (the source is an adapter folder, or a save folder holding peft_adapter/; the destination's
extension picks torch .bin or .safetensors, the latter keeping the adapter config for the way back):
    python scripts/convert_lora.py mnli_adapter mnli_lora.bin

Bad input: one line on stderr naming the problem, exit status 1, nothing written.
"""
import argparse
import os
import sys

from transformers import lora_interop as li

LEGACY_EXTENSIONS = (".bin", ".pt", ".pth", ".safetensors")


def convert(src, dst, lora_alpha=None, lora_dropout=None, base_model=None, overwrite=False):
    """Returns a one-line summary; raises ValueError (one line) on bad input."""
    if not os.path.exists(src):
        raise ValueError(f"{src} does not exist: pass a legacy LoRA file or a PEFT adapter folder")
    if os.path.exists(dst) and not overwrite:
        raise ValueError(f"{dst} exists: pass --overwrite to replace it, or choose another destination")
    if os.path.isdir(dst) and os.listdir(dst) and not os.path.isfile(os.path.join(dst, li.ADAPTER_CONFIG_NAME)):
        raise ValueError(f"{dst} is a folder that is not a PEFT adapter: --overwrite replaces only adapter folders")
    if os.path.isdir(src):
        folder = src if os.path.isfile(os.path.join(src, li.ADAPTER_CONFIG_NAME)) else os.path.join(src, li.ADAPTER_DIR)
        if not dst.endswith(LEGACY_EXTENSIONS):
            raise ValueError(f"{dst}: a PEFT folder converts to a legacy file: end the destination with "
                             f"{' or '.join(LEGACY_EXTENSIONS)}")
        if lora_alpha is not None or lora_dropout is not None or base_model is not None:
            raise ValueError("--lora_alpha/--lora_dropout/--base_model apply to legacy -> PEFT only: the adapter "
                             "folder already records them")
        if os.path.isdir(dst):
            raise ValueError(f"{dst} is a folder: a legacy destination is a file")
        sd, cfg = li.read_adapter(folder)
        li.write_legacy(dst, sd, cfg)
        return (f"wrote {dst}: {_counts(sd)} from the PEFT adapter {folder} (r={cfg['r']}, lora_alpha="
                f"{cfg['lora_alpha']}: load with --apply_lora --lora_r {cfg['r']} --lora_alpha {cfg['lora_alpha']})")

    if not src.endswith(LEGACY_EXTENSIONS):
        raise ValueError(f"{src}: a legacy LoRA file ends with {' or '.join(LEGACY_EXTENSIONS)}; a PEFT source is a "
                         "folder")
    if dst.endswith(LEGACY_EXTENSIONS) or os.path.isfile(dst):
        raise ValueError(f"{dst}: a legacy file converts to a PEFT adapter folder: give a folder path")
    sd, stored = li.read_legacy(src)
    if stored is not None:  # written by this script from a PEFT folder: its config comes back, flags override
        cfg = dict(stored)
        cfg.update({k: v for k, v in (("lora_alpha", lora_alpha), ("lora_dropout", lora_dropout),
                                      ("base_model_name_or_path", base_model)) if v is not None})
        li.peft_to_legacy(li.legacy_to_peft(sd), cfg, source=src)  # the stored config must still fit the tensors
    else:
        if lora_alpha is None:
            raise ValueError(f"{src}: legacy files do not record lora_alpha: pass --lora_alpha (the value used in "
                             "training, e.g. 16 for the paper's RoBERTa-base scripts)")
        cfg = li.make_adapter_config(sd, lora_alpha, lora_dropout or 0.0, base_model, source=src)
    li.write_adapter(dst, sd, cfg)
    return (f"wrote {dst}: {_counts(sd)} (r={cfg['r']}, lora_alpha={cfg['lora_alpha']}, target_modules="
            f"{','.join(cfg['target_modules'])}, modules_to_save={','.join(cfg['modules_to_save'] or []) or '-'})")


def _counts(sd):
    n_lora = sum(li._is_lora(k) for k in sd)
    return f"{n_lora} LoRA tensors + {len(sd) - n_lora} head tensors"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("src", help="legacy LoRA file (.bin/.safetensors) or PEFT adapter folder")
    parser.add_argument("dst", help="PEFT adapter folder, or legacy file (.bin/.safetensors)")
    parser.add_argument("--lora_alpha", type=float, help="LoRA alpha used in training (legacy -> PEFT)")
    parser.add_argument("--lora_dropout", type=float, help="LoRA dropout used in training (legacy -> PEFT; default 0)")
    parser.add_argument("--base_model", help="base model id or path recorded in adapter_config.json (legacy -> PEFT)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    args = parser.parse_args(argv)
    alpha = args.lora_alpha
    if alpha is not None and alpha.is_integer():
        alpha = int(alpha)  # 16, not 16.0, as PEFT and the training scripts write it
    try:
        print(convert(args.src, args.dst, alpha, args.lora_dropout, args.base_model, args.overwrite))
    except (ValueError, OSError) as e:
        sys.exit(f"convert_lora.py: error: {e}")


if __name__ == "__main__":
    main()
