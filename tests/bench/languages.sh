#!/usr/bin/env bash
# The same plugin logic in each guest language (the template plugin `sluice plugin new` writes,
# in Rust, Python and JavaScript): compile time, instantiation time and memory per instance, and
# records/s through split and transform. Prints a table; writes target/bench/languages.json.
# Usage: tests/bench/languages.sh   (BENCH_RECORDS, BENCH_REPEATS as in host/sluice/benches/languages.rs)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -p sluice >/dev/null
export CARGO_TARGET_DIR="$PWD/target/plugin-projects"   # the Rust project's build, kept between runs
for lang in rust python js; do
    target/release/sluice plugin new "ward-$lang" --lang "$lang" --dir "$work/$lang" >/dev/null
    (cd "$work/$lang" && ./build >/dev/null)
done
unset CARGO_TARGET_DIR
BENCH_PLUGINS="rust=$work/rust/ward-rust.wasm,python=$work/python/ward-python.wasm,javascript=$work/js/ward-js.wasm" \
    cargo bench -p sluice --bench languages
