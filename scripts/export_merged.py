"""Export a LoRA model as a plain model folder for stock Transformers: W + (alpha / r) B A folded into each LoRA
weight, no LoRA tensors, config.json without this fork's fields, model.safetensors (+ the tokenizer files found).

A run's output (its config.json records apply_lora, lora_r, lora_alpha):
    python scripts/export_merged.py out/rte out/rte_merged
A base model plus a LoRA checkpoint (legacy file, PEFT adapter folder or save folder; r, the label count and, for
PEFT folders, alpha are read from it):
    python scripts/export_merged.py roberta-base mnli_merged --lora_path roberta_base_lora_mnli.bin --lora_alpha 16

The export is rebuilt and compared with the LoRA model on a sample batch; the largest logit difference is printed.
DeBERTa-V2 with share_att_key cannot be merged exactly (see README): a warning reports the difference.
Bad input: one line on stderr, exit status 1, nothing written.
"""
import argparse
import os
import shutil
import sys

from transformers import AutoModelForSequenceClassification, lora
from transformers import lora_interop as li
from transformers.method_loading import load_lora_state_dict


def load_model(model_path, lora_path=None, lora_alpha=None):
    if lora_path is None:
        return AutoModelForSequenceClassification.from_pretrained(model_path)
    if not os.path.exists(lora_path):
        raise ValueError(f"{lora_path} does not exist: pass a LoRA file, a PEFT adapter folder or a save folder")
    sd, cfg = li.read_lora_path(lora_path)
    info = li.describe_legacy(sd, lora_path)
    alpha = lora_alpha if lora_alpha is not None else (cfg or {}).get("lora_alpha")
    if alpha is None:
        raise ValueError(f"{lora_path}: legacy files do not record lora_alpha: pass --lora_alpha")
    heads = [v for k, v in sd.items() if k in ("classifier.out_proj.weight", "classifier.weight")]
    labels = {"num_labels": heads[0].shape[0]} if heads else {}
    model = AutoModelForSequenceClassification.from_pretrained(model_path, apply_lora=True, lora_r=info["r"],
                                                               lora_alpha=alpha, **labels)
    load_lora_state_dict(model, lora_path)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("model", help="model folder or hub id (a run's output, or the base model with --lora_path)")
    parser.add_argument("output", help="folder to write")
    parser.add_argument("--lora_path", help="LoRA checkpoint to apply to the base model first")
    parser.add_argument("--lora_alpha", type=float, help="LoRA alpha, needed with a legacy --lora_path")
    parser.add_argument("--no_check", action="store_true", help="skip the logit comparison on a sample batch")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    args = parser.parse_args(argv)
    try:
        if os.path.exists(args.output) and not args.overwrite:
            raise ValueError(f"{args.output} exists: pass --overwrite to replace it, or choose another folder")
        if os.path.isdir(args.output) and os.listdir(args.output) and not os.path.isfile(
                os.path.join(args.output, "config.json")):
            raise ValueError(f"{args.output} is a folder that is not a model: --overwrite replaces only model folders")
        alpha = args.lora_alpha
        if alpha is not None and alpha.is_integer():
            alpha = int(alpha)
        model = load_model(args.model, args.lora_path, alpha)
        if not lora._lora_layers(model):
            print(f"{args.model} has no LoRA layers: exported with a stock config only")
        result = li.export_merged(model, args.output, check=not args.no_check)
    except (ValueError, OSError, RuntimeError) as e:
        sys.exit(f"export_merged.py: error: {str(e).strip().splitlines()[0]}")
    if os.path.isdir(args.model):  # the tokenizer, so that the folder is complete for stock users
        for name in li.TOKENIZER_FILES:
            if os.path.isfile(os.path.join(args.model, name)):
                shutil.copy2(os.path.join(args.model, name), os.path.join(args.output, name))
    diff = result["max_abs_logit_diff"]
    check = "" if diff is None else f"; largest logit difference from the LoRA model on a sample batch: {diff:.3g}"
    print(f"wrote {args.output} (config.json + model.safetensors){check}")


if __name__ == "__main__":
    main()
