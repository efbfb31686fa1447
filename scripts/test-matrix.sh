#!/usr/bin/env bash
# Run the fast tests (what `make unit` runs: unit, property and codegen
# tests, no broker, no wheel build) on every supported Python.
#
# Each version gets its own venv, .venv-<version>, with the package installed
# editable with the dev and codegen extras; it is rebuilt only when
# pyproject.toml, setup.py or amqp_client/_speedups.c (compiled by the
# install) is newer than the venv's stamp. Interpreters come from pyenv
# ($(pyenv root)/versions/<version>.*, the newest patch release), else
# python<version> on PATH. A missing interpreter is a failure, not a skip.
#
# The venvs are built one after the other (concurrent editable installs of
# one tree would race on its egg-info); the test runs then go side by side,
# MATRIX_JOBS at a time (default: all at once; mostly single-threaded, three
# runs on two CPUs take about 1.5 times one run instead of 2 or 3), each into
# its own log, printed whole only when it fails.
#
# Environment: FAST_TESTS (the pytest -m expression, set by the Makefile),
# MATRIX_PYTHONS (default "3.11 3.12 3.13"), MATRIX_JOBS,
# PYTEST_ARGS (extra pytest arguments, e.g. "-x" or a test path).
set -uo pipefail
cd "$(dirname "$0")/.."

read -r -a versions <<<"${MATRIX_PYTHONS:-3.11 3.12 3.13}"
jobs="${MATRIX_JOBS:-${#versions[@]}}"
marker="${FAST_TESTS:?run through make test-matrix, which sets FAST_TESTS}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

interpreter() {
    local version="$1" root candidate
    if root="$(pyenv root 2>/dev/null)"; then
        # Newest patch release first (3.12.10 before 3.12.9).
        for candidate in $(ls -d "$root/versions/$version".* 2>/dev/null | sort -V -r); do
            if [ -x "$candidate/bin/python" ]; then
                echo "$candidate/bin/python"
                return 0
            fi
        done
    fi
    command -v "python$version" 2>/dev/null
}

prepare() {
    local version="$1" python="$2" venv=".venv-$1"
    local stamp="$venv/.installed-stamp" log="$logs/install-$1"
    if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt setup.py ] \
        && [ "$stamp" -nt amqp_client/_speedups.c ] && [ -x "$venv/bin/python" ]; then
        return 0
    fi
    echo "matrix: $version: creating $venv with $python"
    rm -rf "$venv"
    # Quiet on success (pip and setuptools warn a lot); all of it on failure.
    if "$python" -m venv "$venv" >"$log" 2>&1 &&
        "$venv/bin/python" -m pip install --quiet --upgrade pip >>"$log" 2>&1 &&
        "$venv/bin/python" -m pip install --quiet -e '.[dev,codegen]' >>"$log" 2>&1; then
        touch "$stamp"
        return 0
    fi
    cat "$log" >&2
    return 1
}

run_tests() {
    local version="$1" start=$SECONDS status=0
    # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
    ".venv-$version/bin/python" -m pytest -q -m "$marker" ${PYTEST_ARGS:-} \
        >"$logs/test-$version" 2>&1 || status=$?
    echo "$status $((SECONDS - start))" >"$logs/status-$version"
}

start_all=$SECONDS
declare -A result=()
ready=()
for version in "${versions[@]}"; do
    if ! python="$(interpreter "$version")"; then
        echo "matrix: $version: no interpreter (pyenv install $version, or put python$version on PATH)" >&2
        result[$version]="no interpreter"
    elif ! prepare "$version" "$python"; then
        echo "matrix: $version: installing into .venv-$version failed" >&2
        result[$version]="install failed"
    else
        ready+=("$version")
    fi
done

echo "matrix: testing on ${ready[*]:-nothing}, $jobs at a time"
running=0
for version in "${ready[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    echo "matrix: $version: $(".venv-$version/bin/python" -VV | head -n 1)"
    run_tests "$version" &
    running=$((running + 1))
done
wait

failed=()
for version in "${ready[@]}"; do
    read -r status seconds <"$logs/status-$version"
    # pytest's last line, e.g. "3 passed in 2.01s" (warnings can follow it).
    summary="$(grep -E '(passed|failed|error|errors|deselected|no tests ran)\b.* in [0-9.]+s' \
        "$logs/test-$version" | tail -n 1)"
    if [ "$status" -eq 0 ]; then
        result[$version]="passed in $seconds s: $summary"
    else
        echo "matrix: ======== $version: pytest output ========"
        cat "$logs/test-$version"
        result[$version]="FAILED in $seconds s: $summary"
    fi
done

echo "matrix: ======== $((SECONDS - start_all)) s in all"
for version in "${versions[@]}"; do
    echo "matrix: $version: ${result[$version]}"
    case "${result[$version]}" in passed*) ;; *) failed+=("$version") ;; esac
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "matrix: failed on ${failed[*]}" >&2
    exit 1
fi
