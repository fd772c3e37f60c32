#!/usr/bin/env bash
# Healthy means ready: the role `sluice` logs in to its database over TCP with its password.
set -euo pipefail
PGPASSWORD="$(cat "$POSTGRES_SECRETS/postgres-password")" psql -h 127.0.0.1 -U sluice -d sluice -qAtc 'SELECT 1' | grep -qx 1
