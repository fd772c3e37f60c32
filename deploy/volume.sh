# shellcheck shell=bash
# Sourced by the run scripts of deploy/: a marker in each service's state directory names the
# version that wrote it, so that a volume left by another version fails the start with one line
# saying what to do instead of being read (or formatted over) by a version that cannot.

# claim_volume LABEL DIR VERSION: exits 1 when DIR was written by another version than VERSION
# (its marker says so), or holds files but no marker (written by something else); otherwise
# marks DIR as VERSION's. SLUICE_ADOPT_UNMARKED=1 claims an unmarked DIR with files too
# (tests/services: state made before markers).
claim_volume() {
    local label="$1" dir="$2" version="$3" marker="$2/.sluice-volume" found datafile
    if [ -f "$marker" ]; then
        found="$(cat "$marker")"
        if [ "$found" != "$version" ]; then
            echo "$label: $dir was written by $found and this image runs $version, which does not upgrade it: run the image of $found, or remove the volume (docker compose down --volumes; its data is lost)" >&2
            exit 1
        fi
        return 0
    fi
    datafile="$(find "$dir" -type f -print -quit)"
    if [ -n "$datafile" ] && [ "${SLUICE_ADOPT_UNMARKED:-0}" != 1 ]; then
        echo "$label: $dir holds data that no version of this stack marked ($datafile); it is not opened: remove the volume (docker compose down --volumes; its data is lost) or mount an empty one" >&2
        exit 1
    fi
    echo "$version" >"$marker"
}
