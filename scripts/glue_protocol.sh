#!/usr/bin/env bash
# The paper's protocol: run GLUE scripts once per seed, then summarise every run under OUTPUT_ROOT (median over the
# seeds of each run's best dev evaluation, min/max, last evaluation, eval curves).
#
#   scripts/glue_protocol.sh SCRIPT [SCRIPT ...] [-- RUN_GLUE_ARGS ...]
#       SCRIPT: roberta_base_mnli, roberta_base_mnli.sh or a path to a script; run in the order given (put an
#       MNLI script before the MRPC/RTE/STS-B ones that warm-start from it)
#   SEEDS     seeds to run (default "0 1 2 3 4"; spaces or commas)
#   RERUN=1   also rerun seeds whose run already finished (default: skip them)
#   KEEP_GOING=1  go on with the other runs when one fails (the exit status is still 1)
#   DATA_SEED=each  each run's training order from its own seed (--data_seed SEED); a number: one order for all
#   SUMMARY   the markdown table (default $OUTPUT_ROOT/summary.md); plots go to $OUTPUT_ROOT/plots/<task>.png
# Everything else (NUM_GPUS, MODEL, GLUE_DIR, OUTPUT_ROOT, PRESET, MNLI_LORA, DRY_RUN, ...) reaches the scripts.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-$(command -v python || command -v python3 || echo python3)}

scripts=()
while (($#)) && [[ $1 != -- ]]; do
    scripts+=("$1")
    shift
done
(($#)) && shift  # the --
extra=("$@")
((${#scripts[@]})) || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
[[ -z ${OUTPUT_DIR:-} ]] || { echo "glue_protocol.sh: error: unset OUTPUT_DIR (each seed needs its own folder)" >&2; exit 2; }

SEEDS=${SEEDS:-0 1 2 3 4}
read -r -a seeds <<<"${SEEDS//,/ }"
for seed in "${seeds[@]}"; do
    [[ $seed =~ ^[0-9]+$ ]] || { echo "glue_protocol.sh: error: seed '$seed' is not a number" >&2; exit 2; }
done

export OUTPUT_ROOT=${OUTPUT_ROOT:-runs}
suffix=""
[[ ${PRESET:-fork} == paper ]] && suffix=-paper
failed=0
for script in "${scripts[@]}"; do
    name=$(basename "$script" .sh)
    path=$script
    [[ -f $path ]] || path=$HERE/$name.sh
    [[ -f $path ]] || { echo "glue_protocol.sh: error: no script $script (looked for $path)" >&2; exit 2; }
    for seed in "${seeds[@]}"; do
        run=$OUTPUT_ROOT/$name$suffix/seed$seed
        if [[ ${DRY_RUN:-0} == 0 && ${RERUN:-0} == 0 && -f $run/model/trainer_state.json \
              && -f $run/model/all_results.json ]]; then
            echo "# $name seed $seed: finished before ($run), skipped (RERUN=1 reruns it)"
            continue
        fi
        echo "# $name seed $seed"
        data_seed=${DATA_SEED:-}
        [[ $data_seed != each ]] || data_seed=$seed
        if ! SEED=$seed DATA_SEED=$data_seed bash "$path" "${extra[@]}"; then
            echo "glue_protocol.sh: $name seed $seed failed" >&2
            failed=1
            [[ ${KEEP_GOING:-0} != 0 ]] || exit 1
        fi
    done
done

if [[ ${DRY_RUN:-0} == 0 && -d $OUTPUT_ROOT ]]; then
    "$PYTHON" "$HERE/summarize.py" "$OUTPUT_ROOT" --out "${SUMMARY:-$OUTPUT_ROOT/summary.md}" \
        --plots "$OUTPUT_ROOT/plots"
fi
exit "$failed"
