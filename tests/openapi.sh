#!/usr/bin/env bash
# Validates the OpenAPI document the API serves (written to target/openapi.json by the API test
# `the_openapi_document_describes_the_real_api`) with openapi-spec-validator, installed from PyPI
# into a cached virtual environment (~/.cache/sluice/venv-openapi).
set -euo pipefail
cd "$(dirname "$0")/.."

document=target/openapi.json
if [[ ! -s "$document" ]]; then
    echo "tests/openapi.sh: no $document: run cargo test -p sluice-api --test router first" >&2
    exit 1
fi
venv="${SLUICE_CACHE:-$HOME/.cache/sluice}/venv-openapi"
if [[ ! -x "$venv/bin/openapi-spec-validator" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'openapi-spec-validator==0.7.*'
fi
"$venv/bin/openapi-spec-validator" "$document"
