#!/usr/bin/env bash
# Smoke-test variant (upstream name): as reproduce_base2novel_setting.sh, loading epoch 1 unless LOADEP is set.
LOADEP=${LOADEP:-1} exec bash "$(dirname "${BASH_SOURCE[0]}")/reproduce_base2novel_setting.sh" "$@"
