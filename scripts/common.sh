# Shared logic of scripts/<method>/*.sh (sourced, never run). A method script sets TRAINER (and CFG when it
# is not a positional argument), calls `parse_args "NAME1 NAME2 ..." "$@"`, then one recipe:
# b2n_train, b2n_eval, xd_train, xd_test or few_shot. Layouts follow CoOp / PromptSRC / Prompt-OT.
#
# Environment:
#   DATA     dataset root (train.py --root), required; must be a directory
#   PY       python command (default: python)
#   OUTPUT   parent folder of the output roots (default: the repository root, as upstream), so that the
#            roots are $OUTPUT/output (CoOp, IVLP, PromptSRC) and $OUTPUT/output${DIV} (Prompt-OT)
#   LOADEP   checkpoint epoch the evaluation scripts load (train.py --load-epoch N loads model.pth.tar-N)
#   SUBS     class subsets the base-to-new evaluation scripts test, e.g. "base new"
#   SEEDS    seeds of the few-shot scripts (default "1 2 3")
# Trailing arguments after a script's positionals are KEY VALUE config overrides appended to train.py's
# command line (after the script's own, so they win).
#
# Skip / resume: a training run whose output directory holds a log with "Finish training" followed by a
# complete "=> result" block is skipped; so is an evaluation whose log holds a complete "=> result" block
# (sweep/finished.py, the rule extract_log.py uses). Anything else re-runs
# train.py into the same directory: a partial training resumes from its last checkpoint (Dassl), and
# train.py never overwrites an existing log.txt (it writes log.txt-<time stamp>). The check looks only at the
# directory (as upstream's layout): a run with other trailing overrides needs another OUTPUT or a new directory.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHOTS_B2N=16  # base-to-new and cross-dataset runs use 16 shots (upstream SHOTS=16)
read -r -a PYCMD <<< "${PY:-python}"
# Positionals are the only inputs besides the documented environment: never pick these up from the caller.
unset DATASET SEED DIV CFG SHOTS WEIGHTSPATH CTP NCTX CSC
TRAINER="" CFG="" DEFAULT_LOADEP="" EXTRA=() FLAGS=()

die() {
    echo "Error: $*" >&2
    exit 2
}

# Absolute form of a path given relative to the caller's working directory.
abspath() {
    case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac
}

# check_data: DATA must name an existing directory; sets DATA_DIR (absolute).
check_data() {
    if [ -z "${DATA:-}" ]; then
        die "DATA is not set. Point it at the folder holding the datasets (CoOp layout), e.g." \
            "DATA=/path/to/datasets bash scripts/$(basename "$(dirname "$0")")/$(basename "$0") ..."
    fi
    [ -d "$DATA" ] || die "DATA=$DATA is not a directory (it must be the folder holding the datasets)"
    DATA_DIR=$(cd "$DATA" && pwd)
}

# parse_args "DATASET SEED ..." "$@": assign the positionals to those names, keep the rest in EXTRA,
# check DATA and the values, then work from the repository root (as the upstream scripts expect).
parse_args() {
    local names=($1)
    shift
    local script
    script=$(basename "$0")
    if [ $# -lt ${#names[@]} ]; then
        echo "Usage: bash scripts/$(basename "$(dirname "$0")")/$script ${names[*]} [KEY VALUE ...]" >&2
        echo "  (missing: ${names[*]:$#})" >&2
        exit 2
    fi
    local n
    for n in "${names[@]}"; do
        printf -v "$n" '%s' "$1"
        shift
    done
    EXTRA=("$@")
    if [ $(( ${#EXTRA[@]} % 2 )) -ne 0 ]; then
        die "trailing config overrides must be KEY VALUE pairs, got: ${EXTRA[*]}"
    fi

    check_data

    if [ -n "${SEED+x}" ]; then
        [[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
    fi
    if [ -n "${SHOTS+x}" ]; then
        [[ $SHOTS =~ ^-?[0-9]+$ ]] || die "SHOTS must be an integer, got '$SHOTS'"
    fi
    local root=output
    if [ -n "${DIV+x}" ]; then  # Prompt-OT fork convention: lambda on the command line, root output${DIV}
        check_div "(check the argument order: ${names[*]})"
        FLAGS=(--div "$DIV")
        root=output$DIV
    fi
    [ -f "$REPO/configs/datasets/$DATASET.yaml" ] || die "unknown dataset '$DATASET': no" \
        "configs/datasets/$DATASET.yaml (known: $(cd "$REPO/configs/datasets" && ls | sed 's/\.yaml$//' | tr '\n' ' '))"
    if [ -n "${WEIGHTSPATH+x}" ]; then
        WEIGHTSPATH=$(abspath "$WEIGHTSPATH")
    fi
    ROOT=$(out_root "$root")
    cd "$REPO"
}

# parse_args_cfg "NAME1 ..." "$@": parse_args with an optional config name right after the positionals (a
# config name holds no '.', a trailing KEY does); without one, CFG keeps the value the script set.
parse_args_cfg() {
    local names=$1 n
    shift
    n=$(wc -w <<< "$names")
    if [ $# -gt "$n" ] && [[ ${*:n+1:1} != *.* ]]; then
        CFG=${*:n+1:1}
        set -- "${@:1:n}" "${@:n+2}"
    fi
    parse_args "$names" "$@"
}

# check_div [HINT]: DIV (Prompt-OT's lambda, kept as typed: it names the root output${DIV}) must be a number.
check_div() {
    [[ $DIV =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || die "DIV (lambda) must be a number, got '$DIV' ${1:-}"
}

# out_root NAME: NAME under $OUTPUT (made absolute) if set, else NAME relative to the repository root.
out_root() {
    if [ -n "${OUTPUT:-}" ]; then
        printf '%s\n' "$(abspath "$OUTPUT")/$1"
    else
        printf '%s\n' "$1"
    fi
}

# check_cfg: set CFG_FILE from TRAINER and CFG, or stop naming the configs that exist.
check_cfg() {
    CFG_FILE="configs/trainers/$TRAINER/$CFG.yaml"
    [ -f "$CFG_FILE" ] || die "no config $CFG_FILE (configs of $TRAINER:" \
        "$(cd "configs/trainers/$TRAINER" && ls | sed 's/\.yaml$//' | tr '\n' ' '))"
}

# MAX_EPOCH of the run: the config file's value, or an OPTIM.MAX_EPOCH override among the trailing args.
max_epoch() {
    local ep i
    ep=$(sed -n 's/^ *MAX_EPOCH: *\([0-9][0-9]*\).*/\1/p' "$CFG_FILE" | tail -n 1)
    ep=${ep:-10}  # Dassl default
    for ((i = 0; i + 1 < ${#EXTRA[@]}; i += 2)); do
        if [ "${EXTRA[i]}" = OPTIM.MAX_EPOCH ]; then ep=${EXTRA[i + 1]}; fi
    done
    printf '%s\n' "$ep"
}

# Epoch the evaluation loads: $LOADEP, else the method's default, else the last epoch.
load_epoch() {
    if [ -n "${LOADEP:-}" ]; then
        printf '%s\n' "$LOADEP"
    elif [ -n "$DEFAULT_LOADEP" ]; then
        printf '%s\n' "$DEFAULT_LOADEP"
    else
        max_epoch
    fi
}

# train_done DIR / eval_done DIR: whether DIR holds a finished training / evaluation (exit 0 = yes), by the
# one rule extract_log.py also uses (sweep/finished.py: the last "=> result" block has a valid accuracy line,
# after "Finish training" for a training log). Standard library only: any python3 runs it.
finished() {
    local py=python3
    command -v python3 >/dev/null 2>&1 || py=${PYCMD[0]}
    "$py" "$REPO/sweep/finished.py" "$1" "$2" >/dev/null
}
train_done() {
    finished train "$1"
}
eval_done() {
    finished eval "$1"
}

# train_py DIR [flags and KEY VALUE opts]: run train.py for the current DATASET/SEED/TRAINER/CFG.
train_py() {
    local dir=$1
    shift
    local cmd=("${PYCMD[@]}" train.py --root "$DATA_DIR" --seed "$SEED" --trainer "$TRAINER"
        --dataset-config-file "configs/datasets/$DATASET.yaml" --config-file "$CFG_FILE"
        --output-dir "$dir" "$@")
    [ ${#EXTRA[@]} -eq 0 ] || cmd+=("${EXTRA[@]}")
    echo "+ ${cmd[*]}"
    "${cmd[@]}"
}

# run_train DIR [KEY VALUE opts]: skip a finished run, resume a partial one.
run_train() {
    local dir=$1
    shift
    check_cfg
    if train_done "$dir"; then
        echo "Training finished in $dir (log has 'Finish training' and '=> result'). Skipping."
        return 0
    fi
    if [ -d "$dir" ]; then
        echo "Unfinished run in $dir. Resuming..."
    else
        echo "Run this job and save the output to $dir"
    fi
    train_py "$dir" "${FLAGS[@]}" "$@"
}

# run_eval DIR MODEL_DIR [KEY VALUE opts]: evaluate checkpoint epoch $(load_epoch) of MODEL_DIR.
run_eval() {
    local dir=$1 model_dir=$2 ep
    shift 2
    check_cfg
    ep=$(load_epoch)
    [[ $ep =~ ^[0-9]+$ ]] || die "LOADEP must be a checkpoint epoch (integer), got '$ep'"
    if eval_done "$dir"; then
        echo "Results are available in $dir (log has '=> result'). Skipping."
        return 0
    fi
    [ -d "$model_dir" ] || die "model directory $model_dir not found (train first, or check WEIGHTSPATH)"
    echo "Evaluating $model_dir (epoch $ep); output to $dir"
    train_py "$dir" --model-dir "$model_dir" --load-epoch "$ep" --eval-only "${FLAGS[@]}" "$@"
}

b2n_common() {
    printf '%s\n' "$DATASET/shots_$SHOTS_B2N/$TRAINER/$CFG/seed$SEED"
}

# Base-to-new training on the base classes.
b2n_train() {
    run_train "$ROOT/base2new/train_base/$(b2n_common)" \
        DATASET.NUM_SHOTS "$SHOTS_B2N" DATASET.SUBSAMPLE_CLASSES base
}

# b2n_eval MODEL_DIR DEFAULT_SUBS: evaluate on each subset of ${SUBS:-DEFAULT_SUBS} into test_<sub>/.
b2n_eval() {
    local model_dir=$1 sub
    for sub in ${SUBS:-$2}; do
        case $sub in base | new | all) ;; *) die "SUBS entries must be base, new or all, got '$sub'" ;; esac
        run_eval "$ROOT/base2new/test_$sub/$(b2n_common)" "$model_dir" \
            DATASET.NUM_SHOTS "$SHOTS_B2N" DATASET.SUBSAMPLE_CLASSES "$sub"
    done
}

# b2n_zeroshot DEFAULT_SUBS: evaluate the frozen backbone (nothing trained or loaded: ZeroshotCLIP) on each
# subset of ${SUBS:-DEFAULT_SUBS} into test_<sub>/, the layout of the other methods' evaluations.
b2n_zeroshot() {
    local sub dir
    check_cfg
    for sub in ${SUBS:-$1}; do
        case $sub in base | new | all) ;; *) die "SUBS entries must be base, new or all, got '$sub'" ;; esac
        dir="$ROOT/base2new/test_$sub/$(b2n_common)"
        if eval_done "$dir"; then
            echo "Results are available in $dir (log has '=> result'). Skipping."
            continue
        fi
        echo "Evaluating zero-shot on the $sub classes; output to $dir"
        train_py "$dir" --eval-only DATASET.NUM_SHOTS "$SHOTS_B2N" DATASET.SUBSAMPLE_CLASSES "$sub"
    done
}

# Model directory of the base-to-new training run of this dataset/seed/config.
b2n_model_dir() {
    printf '%s\n' "$ROOT/base2new/train_base/$(b2n_common)"
}

xd_source_dir() {  # $1: source dataset
    printf '%s\n' "$ROOT/$1/$TRAINER/${CFG}_${SHOTS_B2N}shots/seed$SEED"
}

# Cross-dataset / DG source training (all classes, 16 shots), normally on imagenet.
xd_train() {
    run_train "$(xd_source_dir "$DATASET")" DATASET.NUM_SHOTS "$SHOTS_B2N"
}

# Cross-dataset / DG evaluation of the imagenet model on DATASET (all classes, as upstream).
xd_test() {
    run_eval "$ROOT/evaluation/$TRAINER/${CFG}_${SHOTS_B2N}shots/$DATASET/seed$SEED" "$(xd_source_dir imagenet)"
}

# few_shot SUFFIX [KEY VALUE opts]: train DATASET with SHOTS shots for each of $SEEDS into
# $ROOT/DATASET/TRAINER/CFG_SHOTSshots<SUFFIX>/seed<S>; the final test of each run is the result.
few_shot() {
    local suffix=$1
    shift
    for SEED in ${SEEDS:-1 2 3}; do
        [[ $SEED =~ ^[0-9]+$ ]] || die "SEEDS must hold integers, got '$SEED'"
        run_train "$ROOT/$DATASET/$TRAINER/${CFG}_${SHOTS}shots$suffix/seed$SEED" DATASET.NUM_SHOTS "$SHOTS" "$@"
    done
}
