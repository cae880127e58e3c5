#!/bin/bash
# The tree is clang-format clean (.clang-format at the top; `make format` applies it).
. "$(dirname "$0")/lib.sh"
cd "$CFL_SRC" || exit 1
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
files=$(git ls-files '*.c' '*.h')
out=$(clang-format --dry-run --Werror $files 2>&1 | grep -o '^[^:]*\.[ch]' | sort -u)
check "every C file is clang-format clean${out:+ (not: $(echo $out))}" test -z "$out"
finish
