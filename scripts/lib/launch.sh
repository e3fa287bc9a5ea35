# shellcheck shell=bash
# What the GLUE scripts (scripts/<model>_<task>.sh, mnli.rdrop.sh, ...) share, and nothing else. A script sets
# MODEL, SEED and FORK_GPUS, sources this file, lists its run_glue.py arguments and ends with
#     glue_launch "${args[@]}" -- "$@"
# Sourcing checks PRESET and sets OUTPUT_DIR (the run folder) and MNLI_LORA (the MNLI LoRA weights a warm start
# reads). glue_launch chooses the processes and the device, keeps the fork's global batch (FORK_GPUS x the
# script's --per_device_train_batch_size) by gradient accumulation, drops --fp16 on the CPU, appends the arguments
# the script was given and runs run_glue.py under torchrun; with DRY_RUN=1 it prints the command instead.
# The environment variables (NUM_GPUS, DEVICE, GLOBAL_BATCH, ...) are described in scripts/README.md.
set -euo pipefail

JOB=$(basename "${BASH_SOURCE[1]}" .sh)
RUN_GLUE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/examples/text-classification/run_glue.py

_die() { echo "$JOB: error: $*" >&2; exit 2; }

PRESET=${PRESET:-fork}
[[ $PRESET == fork || $PRESET == paper ]] || _die "PRESET must be fork or paper, got '$PRESET'"
_suffix=""; [[ $PRESET == fork ]] || _suffix=-paper  # runs of the two presets go to different folders
OUTPUT_ROOT=${OUTPUT_ROOT:-runs}
OUTPUT_DIR=${OUTPUT_DIR:-$OUTPUT_ROOT/$JOB$_suffix/seed$SEED}
_MNLI_JOB=${JOB%_*}_mnli  # roberta_base_rte -> roberta_base_mnli
MNLI_LORA=${MNLI_LORA:-$OUTPUT_ROOT/$_MNLI_JOB$_suffix/seed${MNLI_SEED:-0}/model/pytorch_model_lora.bin}

_python() {
    if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"; else command -v python || command -v python3 || echo python3; fi
}

_count_gpus() {  # nvidia-smi's GPUs, at most as many as CUDA_VISIBLE_DEVICES names; else torch's count
    local n visible
    if command -v nvidia-smi >/dev/null 2>&1 && n=$(nvidia-smi -L 2>/dev/null); then
        n=$(grep -c '^GPU ' <<<"$n" || true)
        if [[ -v CUDA_VISIBLE_DEVICES ]]; then
            visible=0
            if [[ -n $CUDA_VISIBLE_DEVICES && $CUDA_VISIBLE_DEVICES != -1* ]]; then
                visible=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c .)
            fi
            ((visible < n)) && n=$visible
        fi
        echo "$n"
    else
        "$(_python)" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0
    fi
}

_positive() {  # NAME VALUE
    [[ $2 =~ ^[1-9][0-9]*$ ]] || _die "$1 must be a positive integer, got '$2'"
}

glue_launch() {  # glue_launch SCRIPT_ARGS... -- EXTRA_ARGS...
    local args=() extra=() a i
    while (($#)) && [[ $1 != -- ]]; do args+=("$1"); shift; done
    (($#)) && shift
    extra=("$@")
    for a in "${extra[@]}"; do
        case ${a%%=*} in
            --per_device_train_batch_size | --per-device-train-batch-size | --gradient_accumulation_steps | \
                --gradient-accumulation-steps | --nproc_per_node | --nproc-per-node)
                _die "$a is set by the script: use GLOBAL_BATCH, MAX_PER_DEVICE_BATCH or NUM_GPUS" ;;
        esac
    done
    local -A at=()  # --flag -> the index of the word after it in args (its value, for flags that take one)
    for i in "${!args[@]}"; do [[ ${args[i]} != --* ]] || at[${args[i]}]=$((i + 1)); done

    # processes and device
    local device=${DEVICE:-auto} gpus="" nproc=${NUM_GPUS:-}
    if [[ $device == auto || -z $nproc ]]; then gpus=$(_count_gpus); fi
    case $device in
        auto) if ((gpus > 0)); then device=cuda; else device=cpu; fi ;;
        cuda | cpu) ;;
        *) _die "DEVICE must be auto, cuda or cpu, got '$device'" ;;
    esac
    if [[ -z $nproc ]]; then
        if [[ $device == cuda ]] && ((gpus > 0)); then nproc=$gpus; else nproc=1; fi
    fi
    _positive NUM_GPUS "$nproc"

    # the global batch: the largest per-device batch up to the script's (or MAX_PER_DEVICE_BATCH) that divides it
    local fork_batch=${args[${at[--per_device_train_batch_size]}]}
    local global=${GLOBAL_BATCH:-$((fork_batch * FORK_GPUS))} cap=$fork_batch per_device=0 accumulation=0
    _positive GLOBAL_BATCH "$global"
    if [[ -n ${MAX_PER_DEVICE_BATCH:-} ]]; then
        _positive MAX_PER_DEVICE_BATCH "$MAX_PER_DEVICE_BATCH"
        ((MAX_PER_DEVICE_BATCH < cap)) && cap=$MAX_PER_DEVICE_BATCH
    fi
    for ((i = cap; i >= 1; i--)); do
        ((global % (i * nproc))) || { per_device=$i accumulation=$((global / (i * nproc))); break; }
    done
    ((per_device > 0)) || _die "a global batch of $global cannot be split evenly over $nproc processes: pick \
NUM_GPUS dividing $global, or set GLOBAL_BATCH"
    args[${at[--per_device_train_batch_size]}]=$per_device
    if ((accumulation > 1)); then
        if [[ -v "at[--gradient_accumulation_steps]" ]]; then
            args[${at[--gradient_accumulation_steps]}]=$accumulation
        else
            args+=(--gradient_accumulation_steps "$accumulation")
        fi
    fi
    if [[ -n ${DATA_SEED:-} ]]; then  # the training order from (DATA_SEED, epoch): the same batches on any NUM_GPUS
        [[ $DATA_SEED =~ ^[0-9]+$ ]] || _die "DATA_SEED must be a non-negative integer, got '$DATA_SEED'"
        args+=(--data_seed "$DATA_SEED")
    fi
    local dropped_fp16=""
    if [[ $device == cpu && -v "at[--fp16]" ]]; then
        dropped_fp16=1
        for i in "${!args[@]}"; do [[ ${args[i]} != --fp16 ]] || unset "args[i]"; done
    fi

    local launcher=() launcher_args=()
    if [[ -n ${TORCHRUN:-} ]]; then read -r -a launcher <<<"$TORCHRUN"
    elif [[ -n ${PYTHON:-} ]]; then launcher=("$PYTHON" -m torch.distributed.run)
    elif command -v torchrun >/dev/null 2>&1; then launcher=(torchrun)
    else launcher=("$(_python)" -m torch.distributed.run); fi
    read -r -a launcher_args <<<"${TORCHRUN_ARGS---standalone}"
    export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:16:8}  # the fork's value, for reproducible cuBLAS
    export PYTHONHASHSEED=${PYTHONHASHSEED:-0}
    local command=("${launcher[@]}" "${launcher_args[@]}" "--nproc_per_node=$nproc" "$RUN_GLUE" "${args[@]}"
                   "${extra[@]}")

    local model=${args[${at[--model_name_or_path]}]} task=${args[${at[--task_name]}]}
    local run=${args[${at[--output_dir]}]} lora="" data=""
    [[ ! -v "at[--lora_path]" ]] || lora=${args[${at[--lora_path]}]}
    [[ ! -v "at[--data_dir]" ]] || data=${args[${at[--data_dir]}]}
    local reference="the fork's launch: $fork_batch per device x $FORK_GPUS GPUs = $((fork_batch * FORK_GPUS))"
    [[ -z ${GLOBAL_BATCH:-} ]] || reference+=", replaced by GLOBAL_BATCH"
    echo "# $JOB: $model on $task, preset $PRESET, seed ${args[${at[--seed]}]}, $nproc process(es) on $device"
    echo "# $JOB: effective batch $global = $per_device per device x $nproc process(es) x $accumulation \
accumulation step(s) ($reference)"
    [[ -z ${DATA_SEED:-} ]] || echo "# $JOB: data order from --data_seed $DATA_SEED (the same global batches on any \
number of processes)"
    [[ -z $dropped_fp16 ]] || echo "# $JOB: no GPU: --fp16 dropped (fp16 mixed precision needs CUDA)"
    echo "# $JOB: output $run"
    [[ -z $lora ]] || echo "# $JOB: warm start from $lora"
    if [[ ${DRY_RUN:-0} != 0 ]]; then
        printf 'CUBLAS_WORKSPACE_CONFIG=%q PYTHONHASHSEED=%q' "$CUBLAS_WORKSPACE_CONFIG" "$PYTHONHASHSEED"
        printf ' %q' "${command[@]}" && echo && exit 0
    fi
    [[ -z $lora || -f $lora ]] || _die "the warm start $lora is not there: run scripts/$_MNLI_JOB.sh first (same \
OUTPUT_ROOT, PRESET and SEED=${MNLI_SEED:-0}), or point MNLI_LORA at an MNLI LoRA checkpoint"
    [[ -z $data || -d $data ]] || _die "$data not found: GLUE_DIR must hold the GLUE folders (MNLI, SST-2, ...)"
    mkdir -p "$OUTPUT_DIR"
    exec "${command[@]}"
}
