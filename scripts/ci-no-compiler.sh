#!/usr/bin/env bash
# Install the wheel into fresh venvs where no C compiler is reachable, as a
# lender's slim service image would (python:3.x-slim has no gcc), and run the
# core commands; then add [portfolio] and run a small dry-run.
#
#   scripts/ci-no-compiler.sh PYTHON WHEEL
#
# The compiler is hidden by CC=false/CXX=false and a PATH that holds only the
# venv and a few shell tools (no gcc, cc, c++, clang). Prints the core's
# site-packages size and `import escalation` time.
set -euo pipefail
python=${1:?python}
wheel=$(readlink -f "${2:?wheel}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/core"
mkdir -p "$work/tools"
for tool in sh bash env cat rm mkdir dirname readlink du sort head tail grep; do
    ln -s "$(command -v "$tool")" "$work/tools/$tool"
done
nocc() { env CC=false CXX=false PATH="$work/core/bin:$work/tools" "$@"; }

for compiler in gcc cc c++ clang; do
    if nocc sh -c "command -v $compiler" >/dev/null 2>&1; then
        echo "no-compiler: $compiler is reachable; the check would prove nothing" >&2
        exit 1
    fi
done

cd "$work"
nocc pip install -q --no-cache-dir "$wheel"
site=$(nocc python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The venv's own pip and setuptools are not the project's: left out of the figure.
size=$(cd "$site" && du -sk --exclude='pip' --exclude='pip-*' --exclude='setuptools*' --exclude='pkg_resources' \
    --exclude='_distutils_hack' --exclude='distutils-precedence.pth' . | cut -f1)
echo "no-compiler: core installed: $((size / 1024)) MB of site-packages (without the venv's pip/setuptools)"
nocc python -X importtime -c 'import escalation' 2> importtime.txt
echo "no-compiler: import escalation: $(tail -1 importtime.txt | cut -d'|' -f2 | tr -d ' ') us cumulative"

at=2026-11-23T10:00:00+08:00
nocc escalation decide --at "$at" > decision.json
grep -q '"status": "act"' decision.json
nocc escalation explain --at "$at" | grep -q '^ACT '
nocc escalation check "$root"/policies/consumer-credit-cn.yaml "$root"/policies/us-card-collector.yaml \
    "$root"/policies/uk-consumer-loan.yaml "$root"/policies/ie-consumer-loan.yaml
nocc escalation test "$root"/policies/
# Without [portfolio], a dry-run is one line naming the extra, exit 1.
set +e
nocc escalation dry-run -p "$root/policies/consumer-credit-cn.yaml" --portfolio "$root/examples/portfolio-cn.jsonl" \
    > /dev/null 2> hint.txt
code=$?
set -e
[ "$code" -eq 1 ] && [ "$(grep -c "" hint.txt)" -eq 1 ] && grep -q "escalation\[portfolio\]" hint.txt
echo "no-compiler: dry-run without [portfolio]: $(cat hint.txt)"

nocc pip install -q --no-cache-dir "${wheel}[portfolio]"
nocc escalation portfolio generate -n 200 -o small.jsonl
nocc escalation dry-run -p "$root/policies/consumer-credit-cn.yaml" --portfolio small.jsonl -o out > dry-run.txt
grep -q "200 accounts" dry-run.txt
echo "no-compiler: core and [portfolio] install and run without a C compiler ($("$work/core/bin/python" --version))"
