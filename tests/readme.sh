#!/usr/bin/env bash
# Runs every shell command of README.md, as written and in order, the way a new user would:
# each ```sh block, except those right after a `<!-- not run by tests/readme.sh: REASON -->`
# line. The `serve` command runs in the background (as in its own terminal) until the end;
# `tests/run` is the command that runs this script, so it is not run again.
#
# State goes to a fresh SLUICE_DATA_DIR; the README's address, 127.0.0.1:8080, must be free.
# Usage: tests/readme.sh
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM -- "-$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if ss -Hltn 'sport = :8080' | grep -q .; then
    echo "tests/readme.sh: 127.0.0.1:8080, the README's address, is taken" >&2
    exit 1
fi

# The commands, one per line (continuation lines joined), each with its README line number.
python3 - README.md > "$work/commands" <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
in_block, skip, previous, pending, start = False, False, "", "", 0
for number, line in enumerate(lines, 1):
    if not in_block:
        if line.strip() == "```sh":
            in_block = True
            skip = previous.startswith("<!-- not run by tests/readme.sh:")
        elif line.strip():
            previous = line.strip()
        continue
    if line.strip() == "```":
        in_block, previous = False, ""
        continue
    if skip:
        continue
    if not pending:
        start = number
    if line.endswith("\\"):
        pending += line[:-1] + " "
        continue
    command = (pending + line).strip()
    pending = ""
    if command and not command.startswith("#"):
        print(f"{start}\t{command}")
PY

export SLUICE_DATA_DIR="$work/data"
ran=0
while IFS=$'\t' read -r number command; do
    bare=${command%%#*}
    bare=${bare%"${bare##*[![:space:]]}"}
    if [[ "$bare" == "tests/run" ]]; then
        continue
    fi
    echo "README.md:$number: $command" >&2
    if [[ "$bare" =~ (^|[[:space:]])serve$ ]]; then
        setsid bash -c "$command" > "$work/serve.log" 2>&1 &
        server_pid=$!
        # A first `cargo run --release` builds the release binary: allow for it.
        for _ in $(seq 1 3600); do
            if curl -fsS -o /dev/null http://127.0.0.1:8080/readyz 2>/dev/null; then
                break
            fi
            if ! kill -0 "$server_pid" 2>/dev/null; then
                echo "README.md:$number: the server stopped:" >&2
                tail -20 "$work/serve.log" >&2
                exit 1
            fi
            sleep 0.5
        done
        curl -fsS -o /dev/null http://127.0.0.1:8080/readyz
    else
        # Each command runs in this shell, so `export` lines carry over to the next ones.
        if ! eval "$command" < /dev/null > "$work/out" 2>&1; then
            echo "README.md:$number: failed:" >&2
            tail -30 "$work/out" >&2
            exit 1
        fi
    fi
    ran=$((ran + 1))
done < "$work/commands"
(( ran >= 10 )) || { echo "tests/readme.sh: only $ran commands found in README.md" >&2; exit 1; }
echo "tests/readme.sh: all $ran README commands ran" >&2
