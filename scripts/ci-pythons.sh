#!/usr/bin/env bash
# Run the core suite on every other Python the machine has (3.12, 3.13), from
# the built wheel, so "works on 3.11-3.13" is tested, not claimed. An absent
# interpreter is a printed skip, not a failure. durable-rules (the [rete]
# extra) is not installed: its tests skip with their documented reason (it
# does not import on 3.13 at all).
#
#   scripts/ci-pythons.sh WHEEL        (CI_PYTHONS="3.13" to choose versions)
set -euo pipefail
wheel=$(readlink -f "${1:?wheel}")
root=$(cd "$(dirname "$0")/.." && pwd)
core_tests=(
    tests/test_engine_api.py tests/test_cli.py tests/test_policy_errors.py tests/test_yaml.py
    tests/test_expressions.py tests/test_properties.py tests/test_guard_properties.py tests/test_golden.py
    tests/test_rule_packs.py tests/test_architecture.py tests/test_exported_members.py tests/test_dry_run.py
)

find_python() {
    local version=$1 candidate
    for candidate in "python$version" "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".* 2>/dev/null | sort -V | tail -1)/bin/python$version"; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# One version's core suite, in its own throwaway venv (its output to $2).
run_suite() {
    local version=$1 log=$2 python venv
    if ! python=$(find_python "$version"); then
        echo "ci-pythons: skip: Python $version is not installed on this machine" >"$log"
        return 0
    fi
    venv=$(mktemp -d)/venv
    {
        "$python" -m venv "$venv"
        "$venv/bin/pip" install -q "${wheel}[portfolio]" "pytest>=8.0" "hypothesis>=6.100" "mypy>=1.10"
        echo "ci-pythons: $("$venv/bin/python" --version): core suite"
        (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "${core_tests[@]}")
    } >"$log" 2>&1
    local status=$?
    rm -rf "$(dirname "$venv")"
    return $status
}

# The versions run side by side (each suite is one process; the machine has
# two cores), and each one's output is printed whole when all are done.
logs=$(mktemp -d)
pids=()
versions=(${CI_PYTHONS:-3.12 3.13})
for version in "${versions[@]}"; do
    run_suite "$version" "$logs/$version.log" &
    pids+=($!)
done
failed=0
for i in "${!versions[@]}"; do
    if ! wait "${pids[$i]}"; then
        failed=1
        echo "ci-pythons: Python ${versions[$i]}: FAILED"
    fi
    cat "$logs/${versions[$i]}.log"
done
rm -rf "$logs"
exit $failed
