#!/usr/bin/env bash
# The restore-hook tool's command line: create, bump, read, and its errors and exit codes.
set -uo pipefail
tool="$1"
dir="${TEST_TMPDIR:-$(mktemp -d)}"
file="$dir/generation"
fail() { echo "FAIL: $*" >&2; exit 1; }
# $1 + $2 for a u64 $1: bash arithmetic is signed 64-bit and wraps; printf %u undoes that.
plus() { printf '%u' $(( $1 + $2 )); }

start=$("$tool" create "$file") || fail "create"
[[ "$start" =~ ^[0-9]+$ ]] && [ "$start" != 0 ] || fail "create starts at a random generation, not 0 ($start)"
other=$("$tool" create "$dir/other") || fail "create another"
[ "$other" != "$start" ] || fail "two files start at different generations"
[ "$(stat -c %a "$file")" = 644 ] || fail "create makes mode 0644"
[ "$("$tool" bump "$file")" = "$(plus "$start" 1)" ] || fail "bump prints start + 1"
[ "$("$tool" bump "$file")" = "$(plus "$start" 2)" ] || fail "bump prints start + 2"
[ "$("$tool" create "$file")" = "$(plus "$start" 2)" ] || fail "create keeps a valid file"
[ "$("$tool" read "$file")" = "$(plus "$start" 2)" ] || fail "read prints start + 2"

"$tool" bump "$dir/missing" 2>"$dir/err"; [ $? -eq 1 ] || fail "missing file exits 1"
grep -q "No such file" "$dir/err" || fail "missing file says why"
printf 'garbage-garbage!' > "$dir/corrupt"
"$tool" bump "$dir/corrupt" 2>"$dir/err"; [ $? -eq 1 ] || fail "corrupt file exits 1"
grep -q "corrupt counter file" "$dir/err" || fail "corrupt file says why"
[ "$(cat "$dir/corrupt")" = "garbage-garbage!" ] || fail "a corrupt file is left alone"
"$tool" frobnicate "$file" 2>/dev/null; [ $? -eq 2 ] || fail "unknown command exits 2"
"$tool" 2>/dev/null; [ $? -eq 2 ] || fail "no arguments exits 2"
echo "PASS"
