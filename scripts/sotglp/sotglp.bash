# Sourced by scripts/sotglp/*.sh (never run): SOT-GLP's per-dataset configs (CFG = the dataset) and 16 shots.
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=SOTGLP
VARIANT=""

# sotglp_args DATASET [SEED] [KEY VALUE ...]: the positionals, SEEDS (the SEED argument, else $SEEDS, else 1).
sotglp_args() {
    local seeds=${SEEDS:-1}
    if [ $# -ge 2 ] && [ $(( $# % 2 )) -eq 0 ]; then
        [[ $2 =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$2'"
        seeds=$2
        set -- "$1" "${@:3}"
    fi
    parse_args "DATASET" "$@"
    SEEDS=$seeds CFG=$DATASET SHOTS=16
}

# sotglp_train [KEY VALUE ...]: train DATASET for each of $SEEDS into
# $ROOT/DATASET/SOTGLP/DATASET${VARIANT}_16shots/seed<S> (finished runs skipped, partial ones resumed).
sotglp_train() {
    for SEED in $SEEDS; do
        [[ $SEED =~ ^[0-9]+$ ]] || die "SEEDS must hold integers, got '$SEED'"
        run_train "$ROOT/$DATASET/$TRAINER/${DATASET}${VARIANT}_${SHOTS}shots/seed$SEED" DATASET.NUM_SHOTS "$SHOTS" "$@"
    done
}
