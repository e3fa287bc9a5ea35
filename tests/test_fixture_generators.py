"""The fixture generators refuse to run against this repository's transformers (which also reports 4.4.2): a
regeneration in the wrong venv would otherwise write fixtures that test the code against itself.

Each generator runs on a copy of itself in a temporary folder (so a missing guard could not overwrite the real
fixtures), with this interpreter, where `import transformers` is ours; all at once, as they only import and stop."""
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUNS = [("make_training_fixtures.py", ["schedules"]), ("make_bert_fixtures.py", []),
        ("make_deberta_fixtures.py", ["models"]), ("make_deberta_fixtures.py", ["models442"]),
        ("make_deberta_fixtures.py", ["tokenizer"]), ("make_heldout_fixtures.py", []),
        ("make_heldout_fixtures.py", ["t442"]), ("make_roberta_fixtures.py", []),
        ("make_roberta_fixtures.py", ["--oracle", "t442"]), ("make_deberta_fixtures.py", ["grads"]),
        ("make_peft_fixtures.py", [])]
REFUSAL = ("is this repository's transformers, not an oracle: run this generator with the oracle venv's interpreter "
           "(/tmp/t442/bin/python for 4.4.2, .peer-venv/bin/python for latest)")


def test_every_generator_refuses_our_package(tmp_path):
    runs = []
    for i, (script, args) in enumerate(RUNS):
        copy = tmp_path / str(i) / "tests" / "fixtures"
        copy.mkdir(parents=True)
        for name in (script, "fixture_io.py"):
            shutil.copy(FIXTURES / name, copy / name)
        proc = subprocess.Popen([sys.executable, str(copy / script), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=copy.parents[1])
        runs.append((f"{script} {' '.join(args)}", copy, proc))
    for name, copy, proc in runs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode != 0 and err.strip().splitlines()[-1].endswith(REFUSAL), (name, err[-1000:])
        written = {p.name for p in copy.iterdir()} - {"__pycache__", "fixture_io.py", name.split()[0]}
        assert not written, (name, written)
