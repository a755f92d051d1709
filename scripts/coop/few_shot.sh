#!/usr/bin/env bash
# CoOp few-shot training, arguments of CoOp's scripts/coop/main.sh, seeds $SEEDS (default 1 2 3):
#   DATA=... bash scripts/coop/few_shot.sh DATASET CFG CTP NCTX SHOTS CSC [KEY VALUE ...]
# e.g. ... caltech101 rn50 end 16 1 False -> output/caltech101/CoOp/rn50_1shots/nctx16_cscFalse_ctpend/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoOp
parse_args "DATASET CFG CTP NCTX SHOTS CSC" "$@"
few_shot "/nctx${NCTX}_csc${CSC}_ctp${CTP}" TRAINER.COOP.N_CTX "$NCTX" TRAINER.COOP.CSC "$CSC" \
    TRAINER.COOP.CLASS_TOKEN_POSITION "$CTP"
