#!/usr/bin/env python
"""Summarise GLUE runs the way the LoRA paper reports them: for each experiment and task, the median over seeds of
each run's best dev evaluation, with the min and max over seeds and the last evaluation, as a markdown table laid
out like the paper's GLUE table, plus a PNG of the eval curves per task.

    python scripts/summarize.py runs/ [more folders] [--out summary.md] [--plots plots/] [--json summary.json]
                                [--paper]

A run is an output folder of run_glue.py (the scripts' <experiment>/seed<N>/model): its trainer_state.json
log_history holds every evaluation made during training (per epoch or every eval_steps); all_results.json (or
eval_results.json, or the 4.4.2 fork's eval_results_<task>.txt) holds the evaluation after training, the last one.
A run that stopped early is read from its newest checkpoint-N/trainer_state.json. Runs are grouped by the folder
above seed<N>; the task comes from the run's config.json (finetuning_task).

Metrics (the paper's Table 2): MNLI matched accuracy (the only MNLI set evaluated during training; the mismatched
accuracy after training is listed as well), CoLA Matthews correlation, STS-B Pearson correlation, accuracy for the
others. Values are x100 in the tables. Plots need matplotlib (`pip install -e '.[plot]'`); without it the tables
are still written.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

TASKS = ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"]
TITLES = {"mnli": "MNLI", "sst2": "SST-2", "mrpc": "MRPC", "cola": "CoLA", "qnli": "QNLI", "qqp": "QQP",
          "rte": "RTE", "stsb": "STS-B"}
METRIC = {"cola": "matthews_correlation", "stsb": "pearson"}  # accuracy for the others
# The LoRA rows of the paper's Table 2 (arXiv:2106.09685): median over 5 seeds, +- as printed there.
PAPER_TABLE2 = {
    "paper: RoBERTa-base LoRA (0.3M)": ["87.5±.3", "95.1±.2", "89.7±.7", "63.4±1.2", "93.3±.3", "90.8±.1",
                                        "86.6±.7", "91.5±.2", "87.2"],
    "paper: RoBERTa-large LoRA (0.8M)": ["90.6±.2", "96.2±.5", "90.9±1.2", "68.2±1.9", "94.9±.3", "91.6±.1",
                                         "87.4±2.5", "92.6±.2", "89.0"],
    "paper: RoBERTa-large Adpt^P (0.8M)†": ["90.5±.3", "96.6±.2", "89.7±1.2", "67.8±2.5", "94.8±.3", "91.7±.2",
                                            "80.1±2.9", "91.9±.4", "87.9"],
    "paper: RoBERTa-large Adpt^H (0.8M)†": ["90.3±.3", "96.3±.5", "87.7±1.7", "66.3±2.0", "94.7±.2", "91.5±.1",
                                            "72.9±2.9", "91.5±.5", "86.4"],
    "paper: DeBERTa-XXL LoRA (4.7M)": ["91.9±.2", "96.9±.2", "92.6±.6", "72.4±1.1", "96.0±.1", "92.9±.1",
                                       "94.9±.4", "93.0±.2", "91.3"],
}
RUN_FILES = ("trainer_state.json", "all_results.json", "eval_results.json")
SEED_DIR = re.compile(r"^seed[-_]?(\d+)$")


def metric_of(task):
    return METRIC.get(task, "accuracy")


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_fork_results(folder):
    """The 4.4.2 fork's eval_results_<task>.txt files ("key = value" lines), merged."""
    values = {}
    for path in sorted(glob.glob(os.path.join(folder, "eval_results_*.txt"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep:
                    try:
                        values[key.strip()] = float(value)
                    except ValueError:
                        pass
    return values


def is_run(folder):
    return (any(os.path.isfile(os.path.join(folder, name)) for name in RUN_FILES)
            or glob.glob(os.path.join(folder, "eval_results_*.txt"))
            or glob.glob(os.path.join(folder, "checkpoint-*", "trainer_state.json")))


def find_runs(paths):
    found = []
    for top in paths:
        if not os.path.isdir(top):
            raise SystemExit(f"summarize.py: error: {top} is not a folder")
        for folder, subdirs, _ in os.walk(top):
            subdirs.sort()
            if os.path.basename(folder).startswith("checkpoint-"):
                subdirs[:] = []
            elif is_run(folder):
                found.append(folder)
                subdirs[:] = [d for d in subdirs if not d.startswith("checkpoint-")]
    return sorted(set(found))


def newest_state(folder):
    """trainer_state.json of the finished run, else of its newest checkpoint (a run that stopped early)."""
    path = os.path.join(folder, "trainer_state.json")
    if os.path.isfile(path):
        return read_json(path)
    steps = []
    for ckpt in glob.glob(os.path.join(folder, "checkpoint-*", "trainer_state.json")):
        match = re.search(r"checkpoint-(\d+)", ckpt)
        if match:
            steps.append((int(match.group(1)), ckpt))
    return read_json(max(steps)[1]) if steps else None


def detect_task(folder, names, keys):
    config = read_json(os.path.join(folder, "config.json")) or {}
    task = str(config.get("finetuning_task") or "").lower().replace("-", "")
    if task in TASKS:
        return task
    for name in names:  # a folder name holding a task, e.g. roberta_base_rte
        for token in re.split(r"[^a-z0-9]+", name.lower()):
            if token in TASKS:
                return token
    if any("matthews" in k for k in keys):
        return "cola"
    if any("pearson" in k for k in keys):
        return "stsb"
    return None


def load_run(folder):
    """One run: its task, seed, experiment, every evaluation (epoch, step, value) and the final values."""
    run_dir = os.path.dirname(folder) if os.path.basename(folder) == "model" else folder
    match = SEED_DIR.match(os.path.basename(run_dir))
    seed = int(match.group(1)) if match else None
    experiment_dir = os.path.dirname(run_dir) if match else run_dir
    experiment = os.path.basename(os.path.normpath(experiment_dir)) or experiment_dir

    final = {}
    for name in ("eval_results.json", "all_results.json"):
        final.update(read_json(os.path.join(folder, name)) or {})
    for key, value in read_fork_results(folder).items():
        final.setdefault(key if key.startswith("eval_") else f"eval_{key}", value)
    state = newest_state(folder) or {}
    history = state.get("log_history") or []

    task = detect_task(folder, [experiment, os.path.basename(run_dir)],
                       list(final) + [k for entry in history for k in entry])
    if task is None:
        return None
    key = f"eval_{metric_of(task)}"
    evals = [{"epoch": entry.get("epoch"), "step": entry.get("step"), "value": float(entry[key])}
             for entry in history if key in entry and entry[key] is not None]
    last_step = state.get("global_step")
    if key in final:
        # the evaluation after training, when it is not the one made at the last step already
        if not evals or (last_step is not None and evals[-1]["step"] != last_step):
            evals.append({"epoch": final.get("epoch"), "step": last_step, "value": float(final[key])})
    if not evals:
        return None
    best = max(evals, key=lambda e: e["value"])  # max() keeps the first of equal values: the earliest
    last = evals[-1]
    checkpoint = None
    if best["step"] is not None:
        candidate = os.path.join(folder, f"checkpoint-{best['step']}")
        checkpoint = candidate if os.path.isdir(candidate) else None
    return {"folder": folder, "experiment": experiment, "experiment_dir": experiment_dir, "seed": seed,
            "task": task, "metric": metric_of(task), "evals": evals, "best": best, "last": last,
            "best_checkpoint": checkpoint, "mnli_mm": final.get("eval_mnli-mm_accuracy")}


def row_name(experiment, task):
    """The experiment without its task: roberta_base_rte -> roberta_base, mnli.rdrop -> rdrop."""
    tokens = re.split(r"([_.-])", experiment)
    words = tokens[0::2]
    if task in words and len(words) > 1:
        i = words.index(task)
        keep = [w for j, w in enumerate(words) if j != i]
        seps = [s for j, s in enumerate(tokens[1::2]) if j != max(i - 1, 0)]
        out = keep[0]
        for sep, word in zip(seps, keep[1:]):
            out += sep + word
        return out
    return experiment


def summarise(runs):
    groups = {}
    for run in runs:
        groups.setdefault((run["experiment_dir"], run["task"]), []).append(run)
    results = []
    for (experiment_dir, task), members in sorted(groups.items()):
        members.sort(key=lambda r: (r["seed"] is None, r["seed"], r["folder"]))
        best = [r["best"]["value"] for r in members]
        last = [r["last"]["value"] for r in members]
        mm = [r["mnli_mm"] for r in members if r["mnli_mm"] is not None]
        results.append({
            "experiment": members[0]["experiment"], "row": row_name(members[0]["experiment"], task),
            "experiment_dir": experiment_dir, "task": task, "metric": members[0]["metric"],
            "seeds": [r["seed"] for r in members], "n": len(members),
            "best_median": statistics.median(best), "best_min": min(best), "best_max": max(best),
            "last_median": statistics.median(last), "last_min": min(last), "last_max": max(last),
            "mnli_mm_last_median": statistics.median(mm) if mm else None,
            "runs": [{"seed": r["seed"], "folder": r["folder"], "best": r["best"], "last": r["last"],
                      "best_checkpoint": r["best_checkpoint"], "evaluations": len(r["evals"])} for r in members],
        })
    return results


def pct(value):
    return f"{100 * value:.1f}"


def when(point):
    epoch, step = point.get("epoch"), point.get("step")
    if epoch is None:
        return f"step {step}"
    text = f"{epoch:.2f}".rstrip("0").rstrip(".")
    return f"epoch {text}" + (f" (step {step})" if step is not None else "")


def markdown(results, with_paper=False):
    lines = ["# GLUE dev results", "",
             "Each cell: median over seeds of each run's best dev evaluation, x100, with (min-max) over seeds and "
             "the number of seeds. MNLI matched accuracy, CoLA Matthews correlation, STS-B Pearson correlation, "
             "accuracy for the other tasks.", ""]
    rows = {}
    for r in results:
        name = r["row"] if r["task"] not in rows.get(r["row"], {}) else r["experiment_dir"]  # two roots, same name
        rows.setdefault(name, {})[r["task"]] = r
    header = "| Experiment | " + " | ".join(TITLES[t] for t in TASKS) + " | Avg. |"
    lines += [header, "|" + "---|" * (len(TASKS) + 2)]
    for name, cells in rows.items():
        values = []
        for task in TASKS:
            r = cells.get(task)
            values.append("-" if r is None else
                          f"{pct(r['best_median'])} ({pct(r['best_min'])}-{pct(r['best_max'])}, n={r['n']})")
        avg = (pct(statistics.mean(cells[t]["best_median"] for t in TASKS))
               if all(t in cells for t in TASKS) else "-")
        lines.append(f"| {name} | " + " | ".join(values) + f" | {avg} |")
    if with_paper:
        for name, values in PAPER_TABLE2.items():
            lines.append(f"| {name} | " + " | ".join(values) + " |")
    lines += ["", "## Per task", "",
              "| Experiment | Task | Metric | Seeds | Best: median | min | max | Last: median | min | max | Notes |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        note = (f"MNLI-mm after training: {pct(r['mnli_mm_last_median'])}"
                if r["mnli_mm_last_median"] is not None else "")
        seeds = ", ".join("?" if s is None else str(s) for s in r["seeds"])
        lines.append(f"| {r['experiment']} | {TITLES[r['task']]} | {r['metric']} | {seeds} | "
                     f"{pct(r['best_median'])} | {pct(r['best_min'])} | {pct(r['best_max'])} | "
                     f"{pct(r['last_median'])} | {pct(r['last_min'])} | {pct(r['last_max'])} | {note} |")
    lines += ["", "## Runs", "", "| Experiment | Task | Seed | Best | at | Last | at | Best checkpoint |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for run in r["runs"]:
            seed = "?" if run["seed"] is None else run["seed"]
            lines.append(f"| {r['experiment']} | {TITLES[r['task']]} | {seed} | {pct(run['best']['value'])} | "
                         f"{when(run['best'])} | {pct(run['last']['value'])} | {when(run['last'])} | "
                         f"{run['best_checkpoint'] or '-'} |")
    return "\n".join(lines) + "\n"


def plot(results, runs, folder):
    """One PNG per task: every run's dev metric against the epoch, one colour per experiment, best marked."""
    try:
        import matplotlib
    except ImportError:
        print("summarize.py: matplotlib is not installed, no plots (pip install -e '.[plot]')", file=sys.stderr)
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    written = []
    for task in TASKS:
        mine = [r for r in runs if r["task"] == task]
        if not mine:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        experiments = sorted({r["experiment_dir"] for r in mine})
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, experiment in enumerate(experiments):
            colour = colours[i % len(colours)]
            for j, run in enumerate(r for r in mine if r["experiment_dir"] == experiment):
                xs = [e["epoch"] if e["epoch"] is not None else e["step"] for e in run["evals"]]
                ys = [100 * e["value"] for e in run["evals"]]
                label = os.path.basename(experiment) if j == 0 else None
                ax.plot(xs, ys, color=colour, alpha=0.7, marker=".", label=label)
                bx = run["best"]["epoch"] if run["best"]["epoch"] is not None else run["best"]["step"]
                ax.plot([bx], [100 * run["best"]["value"]], color=colour, marker="*", markersize=10)
        ax.set_title(f"{TITLES[task]}: dev {metric_of(task)} (x100), * = best of each run")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric_of(task))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = os.path.join(folder, f"{task}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="run folders, or folders above them (e.g. runs/)")
    parser.add_argument("--out", help="write the markdown here (default: print it)")
    parser.add_argument("--json", help="also write the numbers as json here")
    parser.add_argument("--plots", help="write <task>.png eval curves into this folder")
    parser.add_argument("--paper", action="store_true", help="add the paper's Table 2 LoRA/adapter rows")
    args = parser.parse_args(argv)

    runs = [run for run in map(load_run, find_runs(args.paths)) if run is not None]
    if not runs:
        raise SystemExit(f"summarize.py: error: no GLUE run with evaluations under {', '.join(args.paths)}")
    results = summarise(runs)
    text = markdown(results, with_paper=args.paper)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"summarize.py: {len(runs)} run(s), {len(results)} experiment/task group(s) -> {args.out}")
    else:
        print(text, end="")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    if args.plots:
        for path in plot(results, runs, args.plots):
            print(f"summarize.py: plot {path}")
    return results


if __name__ == "__main__":
    main()
