# shellcheck shell=bash
# Shared by the per-model/per-task GLUE scripts (scripts/<model>_<task>.sh, mnli.rdrop.sh, ...). A script sources
# this file, names its job, sets its hyper-parameters with `hp`/`switch` (the fork's values) and `paper` (the
# appendix values that PRESET=paper applies), then calls `glue_launch "$@"`, which resolves the environment below,
# prints the effective batch and runs run_glue.py under torchrun (or, with DRY_RUN=1, prints the command and stops).
#
# Environment (all optional; scripts/README.md has the details):
#   NUM_GPUS              processes to launch (default: the visible GPUs, else 1 process on the CPU)
#   DEVICE                auto | cuda | cpu (default auto: cuda when a GPU is visible); on cpu --fp16 is dropped
#   MODEL                 --model_name_or_path (default: the script's model)
#   GLUE_DIR              folder holding MNLI/ SST-2/ MRPC/ CoLA/ QNLI/ QQP/ RTE/ STS-B/ (default: the Hub)
#   OUTPUT_ROOT           where runs go (default ./runs): $OUTPUT_ROOT/<script>[-paper]/seed<SEED>/{model,log}
#   OUTPUT_DIR            the run folder itself, instead of the layout above
#   SEED                  --seed (default: the script's, 0; 42 for mnli.rdrop/mnli.cutoff)
#   PRESET                fork (default) | paper: the paper's appendix values where they differ from the script
#   MNLI_LORA             MRPC/RTE/STS-B warm start (default: the MNLI run's model/pytorch_model_lora.bin, seed
#                         MNLI_SEED, default 0, same OUTPUT_ROOT and preset)
#   GLOBAL_BATCH          global batch to keep (default: the fork's per-device batch x the fork's GPU count)
#   MAX_PER_DEVICE_BATCH  cap on the per-device batch (more accumulation instead), for smaller GPUs
#   DRY_RUN=1             print the resolved command and exit
#   PYTHON, TORCHRUN, TORCHRUN_ARGS   interpreter, launcher command (default torchrun), launcher flags
#                         (default --standalone)
# Arguments given to a script are appended to run_glue.py's (the last occurrence of a flag wins), except the
# batch-shaping flags, which GLOBAL_BATCH / MAX_PER_DEVICE_BATCH / NUM_GPUS control.

set -euo pipefail

_GLUE_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLUE_ROOT=$(cd "$_GLUE_LIB/../.." && pwd)
RUN_GLUE="$GLUE_ROOT/examples/text-classification/run_glue.py"

_HP_ORDER=()              # flag names in the order they were first set
declare -A _HP=()         # flag -> the fork's value ('' for a switch)
declare -A _IS_SWITCH=()  # flag -> 1 for value-less flags
declare -A _PAPER=()      # flag -> the paper's value; '<drop>' removes the flag under PRESET=paper

_glue_die() {
    echo "$JOB_NAME: error: $*" >&2
    exit 2
}

_glue_note() {
    echo "# $*"
}

_glue_set() {  # _glue_set FLAG VALUE IS_SWITCH
    [[ -v "_HP[$1]" ]] || _HP_ORDER+=("$1")
    _HP[$1]=$2
    _IS_SWITCH[$1]=$3
}

# glue_job MODEL TASK FORK_GPUS [FORK_SEED]: the script's defaults; the job is named after the script file.
glue_job() {
    JOB_NAME=$(basename "${BASH_SOURCE[1]}" .sh)
    JOB_MODEL=$1
    JOB_TASK=$2
    FORK_GPUS=$3
    FORK_SEED=${4:-0}
    WARM_START=0
}

# hp FLAG VALUE [FLAG VALUE ...]: flags with a value, as the fork's script sets them.
hp() {
    while (($#)); do
        (($# >= 2)) || _glue_die "hp: flag $1 has no value"
        _glue_set "$1" "$2" 0
        shift 2
    done
}

# switch FLAG...: value-less flags (--do_train, --apply_lora, --fp16, ...).
switch() {
    local flag
    for flag in "$@"; do _glue_set "$flag" "" 1; done
}

# paper FLAG VALUE [...]: the paper's appendix value where it differs from the script; VALUE '<drop>' removes it.
paper() {
    while (($#)); do
        (($# >= 2)) || _glue_die "paper: flag $1 has no value"
        _PAPER[$1]=$2
        shift 2
    done
}

# warm_start: MRPC/RTE/STS-B start from the MNLI run's LoRA checkpoint (--lora_path).
warm_start() {
    WARM_START=1
}

# ---- families: the flags every script of a kind shares in the fork ----------------------------------------------

roberta_lora() {  # the fork's roberta_{base,large}_*.sh; the paper's Table 9 warmup ratio is 0.06 too
    switch do_train do_eval apply_lora
    hp evaluation_strategy epoch save_strategy epoch warmup_ratio 0.06 logging_steps 10 \
        lora_r 8 lora_alpha 16 weight_decay 0.1
}

deberta_lora() {  # the fork's deberta_v2_xxlarge_*.sh; Table 10: warmup ratio 0.1, r_q = r_v = 8, alpha 8
    switch do_train do_eval overwrite_output_dir fp16 apply_lora use_deterministic_algorithms
    hp logging_steps 10 evaluation_strategy steps save_strategy steps lora_r 16 lora_alpha 32
    paper lora_r 8 lora_alpha 8 warmup_ratio 0.1 warmup_steps '<drop>'
}

# every_steps N: evaluate and save every N optimizer steps (DeBERTa scripts).
every_steps() {
    hp eval_steps "$1" save_steps "$1"
}

# ---- resolution -------------------------------------------------------------------------------------------------

_glue_python() {
    if [[ -n ${PYTHON:-} ]]; then
        echo "$PYTHON"
    else
        command -v python || command -v python3 || echo python3
    fi
}

# Visible CUDA devices: nvidia-smi's list (cut to CUDA_VISIBLE_DEVICES when that is set), else torch's count.
_glue_count_gpus() {
    local listed visible
    if command -v nvidia-smi >/dev/null 2>&1 && listed=$(nvidia-smi -L 2>/dev/null); then
        listed=$(grep -c '^GPU ' <<<"$listed" || true)
        if [[ -v CUDA_VISIBLE_DEVICES ]]; then
            if [[ -z $CUDA_VISIBLE_DEVICES || $CUDA_VISIBLE_DEVICES == -1* ]]; then
                visible=0
            else
                visible=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c .)
            fi
            ((visible < listed)) && listed=$visible
        fi
        echo "$listed"
        return
    fi
    "$(_glue_python)" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0
}

_glue_positive_int() {  # NAME VALUE
    [[ $2 =~ ^[1-9][0-9]*$ ]] || _glue_die "$1 must be a positive integer, got '$2'"
}

_glue_data_dir_name() {
    case $1 in
        mnli) echo MNLI ;; sst2) echo SST-2 ;; mrpc) echo MRPC ;; cola) echo CoLA ;;
        qnli) echo QNLI ;; qqp) echo QQP ;; rte) echo RTE ;; stsb) echo STS-B ;;
        *) _glue_die "no GLUE folder name for task $1" ;;
    esac
}

glue_launch() {
    local preset=${PRESET:-fork}
    [[ $preset == fork || $preset == paper ]] || _glue_die "PRESET must be fork or paper, got '$preset'"
    local flag
    for flag in "$@"; do
        case ${flag%%=*} in
            --per_device_train_batch_size | --per-device-train-batch-size | --gradient_accumulation_steps | \
                --gradient-accumulation-steps | --nproc_per_node | --nproc-per-node)
                _glue_die "$flag is set by the script: use GLOBAL_BATCH, MAX_PER_DEVICE_BATCH or NUM_GPUS" ;;
        esac
    done

    # the preset: the paper's values replace or remove the script's
    local -A hp=() is_switch=()
    local order=()
    for flag in "${_HP_ORDER[@]}"; do
        hp[$flag]=${_HP[$flag]}
        is_switch[$flag]=${_IS_SWITCH[$flag]}
        order+=("$flag")
    done
    if [[ $preset == paper ]]; then
        for flag in "${!_PAPER[@]}"; do
            if [[ ${_PAPER[$flag]} == '<drop>' ]]; then
                unset "hp[$flag]"
            else
                [[ -v "hp[$flag]" ]] || order+=("$flag")
                hp[$flag]=${_PAPER[$flag]}
                is_switch[$flag]=0
            fi
        done
    fi

    # devices
    local device=${DEVICE:-auto} gpus=""
    if [[ $device == auto || -z ${NUM_GPUS:-} ]]; then
        gpus=$(_glue_count_gpus)
    fi
    case $device in
        auto) if ((gpus > 0)); then device=cuda; else device=cpu; fi ;;
        cuda | cpu) ;;
        *) _glue_die "DEVICE must be auto, cuda or cpu, got '$device'" ;;
    esac
    local nproc=${NUM_GPUS:-}
    if [[ -z $nproc ]]; then
        if [[ $device == cuda ]] && ((gpus > 0)); then nproc=$gpus; else nproc=1; fi
    fi
    _glue_positive_int NUM_GPUS "$nproc"

    # batch: keep the fork's global batch; accumulate what fewer processes cannot hold
    local fork_batch=${hp[per_device_train_batch_size]}
    local global=${GLOBAL_BATCH:-$((fork_batch * FORK_GPUS))}
    _glue_positive_int GLOBAL_BATCH "$global"
    local cap=$fork_batch
    if [[ -n ${MAX_PER_DEVICE_BATCH:-} ]]; then
        _glue_positive_int MAX_PER_DEVICE_BATCH "$MAX_PER_DEVICE_BATCH"
        ((MAX_PER_DEVICE_BATCH < cap)) && cap=$MAX_PER_DEVICE_BATCH
    fi
    local per_device=0 accumulation=0 candidate
    for ((candidate = cap; candidate >= 1; candidate--)); do
        if ((global % (candidate * nproc) == 0)); then
            per_device=$candidate
            accumulation=$((global / (candidate * nproc)))
            break
        fi
    done
    ((per_device > 0)) || _glue_die "a global batch of $global cannot be split evenly over $nproc processes: pick \
NUM_GPUS dividing $global, or set GLOBAL_BATCH"
    hp[per_device_train_batch_size]=$per_device
    if ((accumulation > 1)); then
        [[ -v "hp[gradient_accumulation_steps]" ]] || order+=(gradient_accumulation_steps)
        hp[gradient_accumulation_steps]=$accumulation
        is_switch[gradient_accumulation_steps]=0
    fi
    if [[ $device == cpu && -v "hp[fp16]" ]]; then
        unset "hp[fp16]"
        local dropped_fp16=1
    fi

    # paths
    local seed=${SEED:-$FORK_SEED} suffix=""
    [[ $preset == paper ]] && suffix=-paper
    local root=${OUTPUT_ROOT:-runs}
    local run=${OUTPUT_DIR:-$root/$JOB_NAME$suffix/seed$seed}
    local model=${MODEL:-$JOB_MODEL}
    local args=(--model_name_or_path "$model")
    local lora_path=""
    if ((WARM_START)); then
        local mnli_job=${JOB_NAME%_"$JOB_TASK"}_mnli
        lora_path=${MNLI_LORA:-$root/$mnli_job$suffix/seed${MNLI_SEED:-0}/model/pytorch_model_lora.bin}
        args+=(--lora_path "$lora_path")
    fi
    args+=(--task_name "$JOB_TASK")
    local data_dir=""
    if [[ -n ${GLUE_DIR:-} ]]; then
        data_dir=$GLUE_DIR/$(_glue_data_dir_name "$JOB_TASK")
        args+=(--data_dir "$data_dir")
    fi
    args+=(--output_dir "$run/model" --logging_dir "$run/log" --seed "$seed")
    for flag in "${order[@]}"; do
        [[ -v "hp[$flag]" ]] || continue
        args+=("--$flag")
        [[ ${is_switch[$flag]} == 1 ]] || args+=("${hp[$flag]}")
    done
    args+=("$@")

    # the launch
    local launcher=()
    if [[ -n ${TORCHRUN:-} ]]; then
        read -r -a launcher <<<"$TORCHRUN"
    elif [[ -n ${PYTHON:-} ]]; then
        launcher=("$PYTHON" -m torch.distributed.run)
    elif command -v torchrun >/dev/null 2>&1; then
        launcher=(torchrun)
    else
        launcher=("$(_glue_python)" -m torch.distributed.run)
    fi
    local launcher_args=()
    read -r -a launcher_args <<<"${TORCHRUN_ARGS---standalone}"
    export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:16:8}  # the fork's value, for reproducible cuBLAS
    export PYTHONHASHSEED=${PYTHONHASHSEED:-0}
    local command=("${launcher[@]}" "${launcher_args[@]}" "--nproc_per_node=$nproc" "$RUN_GLUE" "${args[@]}")

    _glue_note "$JOB_NAME: $model on $JOB_TASK, preset $preset, seed $seed, $nproc process(es) on $device"
    local reference="the fork's launch: $fork_batch per device x $FORK_GPUS GPUs = $((fork_batch * FORK_GPUS))"
    [[ -n ${GLOBAL_BATCH:-} ]] && reference+=", replaced by GLOBAL_BATCH"
    _glue_note "$JOB_NAME: effective batch $global = $per_device per device x $nproc process(es) x $accumulation \
accumulation step(s) ($reference)"
    [[ -n ${dropped_fp16:-} ]] && _glue_note "$JOB_NAME: no GPU: --fp16 dropped (fp16 mixed precision needs CUDA)"
    _glue_note "$JOB_NAME: output $run/model"
    if [[ -n $lora_path ]]; then
        _glue_note "$JOB_NAME: warm start from $lora_path"
    fi
    if [[ ${DRY_RUN:-0} != 0 ]]; then
        printf 'CUBLAS_WORKSPACE_CONFIG=%q PYTHONHASHSEED=%q' "$CUBLAS_WORKSPACE_CONFIG" "$PYTHONHASHSEED"
        printf ' %q' "${command[@]}"
        printf '\n'
        exit 0
    fi
    if [[ -n $lora_path && ! -f $lora_path ]]; then
        _glue_die "the warm start $lora_path is not there: run scripts/$mnli_job.sh first (same OUTPUT_ROOT, \
PRESET and SEED=${MNLI_SEED:-0}), or point MNLI_LORA at an MNLI LoRA checkpoint"
    fi
    if [[ -n $data_dir && ! -d $data_dir ]]; then
        _glue_die "$data_dir not found: GLUE_DIR must hold the GLUE folders (MNLI, SST-2, ...)"
    fi
    mkdir -p "$run"
    exec "${command[@]}"
}
