#!/bin/bash
# The tree is clang-format clean (.clang-format at the top; `make format` applies it).
. "$(dirname "$0")/lib.sh"
cd "$CFL_SRC" || exit 1
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
# A worktree's .git is a file, not a folder: ask git whether this is the top of a checkout.
[ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ] || { echo "SKIP: not a git checkout"; exit 77; }
files=$(git ls-files '*.c' '*.h')
out=$(clang-format --dry-run --Werror $files 2>&1 | grep -o '^[^:]*\.[ch]' | sort -u)
check "every C file is clang-format clean${out:+ (not: $(echo $out))}" test -z "$out"
finish
