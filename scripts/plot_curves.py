"""Training curves from trainer_state.json files: one PNG with the training loss, the learning rate and each eval
metric against the optimizer step, one line per run.

    python scripts/plot_curves.py out/rte out/rte_seed1/trainer_state.json --out curves.png
    python scripts/plot_curves.py runs/*/seed0/model --metrics eval_accuracy eval_loss

A run is a trainer_state.json or a folder holding one (an output_dir, else its newest checkpoint-N). Needs
matplotlib (pip install -e '.[plot]'). Bad input: one line on stderr, exit status 1, nothing written.
"""
import argparse
import json
import os
import re
import sys


def find_state(path):
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(path, "trainer_state.json")):
        return os.path.join(path, "trainer_state.json")
    steps = [int(m.group(1)) for m in map(re.compile(r"^checkpoint-(\d+)$").match, os.listdir(path)) if m] \
        if os.path.isdir(path) else []
    if steps:  # a run that stopped before its final save
        return os.path.join(path, f"checkpoint-{max(steps)}", "trainer_state.json")
    raise ValueError(f"{path}: no trainer_state.json there: pass a run's output_dir, a checkpoint-N folder or the "
                     "file itself")


def read_curves(state_file):
    """{series name: ([steps], [values])} from the state's log_history."""
    try:
        with open(state_file) as f:
            history = json.load(f)["log_history"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{state_file}: not a trainer_state.json with a log_history ({e})") from None
    curves = {}
    for entry in history:
        for key, value in entry.items():
            if key in ("loss", "learning_rate") or key.startswith("eval_") and not key.endswith(
                    ("_runtime", "_per_second", "_samples")):
                if isinstance(value, (int, float)) and "step" in entry:
                    xs, ys = curves.setdefault(key, ([], []))
                    xs.append(entry["step"])
                    ys.append(value)
    return curves


def run_label(state_file, labels):
    """The shortest trailing part of the folder path that tells the runs apart."""
    parts = os.path.normpath(os.path.dirname(os.path.abspath(state_file))).split(os.sep)
    others = [os.path.normpath(os.path.dirname(os.path.abspath(f))).split(os.sep) for f in labels if f != state_file]
    for n in range(1, len(parts) + 1):
        if all(o[-n:] != parts[-n:] for o in others):
            return "/".join(parts[-n:])
    return "/".join(parts)


def plot(runs, out, metrics=None):
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    series = ["loss", "learning_rate"] + sorted({k for c in runs.values() for k in c if k.startswith("eval_")})
    if metrics:
        series = [s for s in series if s in ("loss", "learning_rate") or s in metrics]
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.6 * len(series)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], series):
        for label, curves in runs.items():
            if name in curves:
                xs, ys = curves[name]
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    axes[0, 0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return series


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("runs", nargs="+", help="trainer_state.json files or run folders")
    parser.add_argument("--out", default="curves.png", help="PNG to write (default: curves.png)")
    parser.add_argument("--metrics", nargs="*", help="eval series to plot (default: every eval_* series)")
    args = parser.parse_args(argv)
    try:
        files = [find_state(p) for p in args.runs]
        runs = {run_label(f, files): read_curves(f) for f in files}
        if not any(runs.values()):
            raise ValueError("the runs logged nothing yet: no loss or eval entries in their log_history")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("plotting needs matplotlib: pip install -e '.[plot]'") from None
        series = plot(runs, args.out, args.metrics)
    except (ValueError, OSError) as e:
        sys.exit(f"plot_curves.py: error: {e}")
    print(f"wrote {args.out}: {', '.join(series)} for {len(runs)} run(s)")


if __name__ == "__main__":
    main()
