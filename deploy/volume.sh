# shellcheck shell=bash
# Sourced by the run scripts of deploy/: a marker in each service's state directory names the
# version that wrote it, so that a volume left by another version fails the start with one line
# saying what to do instead of being read (or formatted over) by a version that cannot.

# check_volume LABEL DIR EXPECTED: exits 1 when DIR was written by another version than EXPECTED
# (its marker says so), or holds files but no marker (written by something else).
# SLUICE_ADOPT_UNMARKED=1 marks such a directory instead (tests/services: state made before markers).
check_volume() {
    local label="$1" dir="$2" expected="$3" marker="$2/.sluice-volume" found datafile
    if [ -f "$marker" ]; then
        found="$(cat "$marker")"
        if [ "$found" != "$expected" ]; then
            echo "$label: $dir was written by $found and this image runs $expected, which does not upgrade it: run the image of $found, or remove the volume (docker compose down --volumes; its data is lost)" >&2
            exit 1
        fi
    else
        datafile="$(find "$dir" -type f -print -quit)"
        [ -n "$datafile" ] || return 0
        if [ "${SLUICE_ADOPT_UNMARKED:-0}" = 1 ]; then
            mark_volume "$dir" "$expected"
        else
            echo "$label: $dir holds data that no version of this stack marked ($datafile); it is not opened: remove the volume (docker compose down --volumes; its data is lost) or mount an empty one" >&2
            exit 1
        fi
    fi
}

# mark_volume DIR VERSION
mark_volume() {
    echo "$2" >"$1/.sluice-volume"
}
