#!/usr/bin/env bash
# The restore-hook tool's command line: create, bump, read, their errors and exit codes,
# and what it does when the path holds a FIFO, a symlink, a corrupt, short or loose file.
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
# bump: a fresh random generation each time, never the one it replaces (not +1: clones
# bumped each on its own host side must differ, docs/DESIGN.md).
first=$("$tool" bump "$file") || fail "bump"
[[ "$first" =~ ^[0-9]+$ ]] && [ "$first" != "$start" ] && [ "$first" != 0 ] || fail "bump changes it ($start -> $first)"
[ "$first" != "$(plus "$start" 1)" ] || fail "bump is not +1 ($start -> $first)"
second=$("$tool" bump "$file") || fail "bump again"
[ "$second" != "$first" ] || fail "a second bump changes it again"
[ "$("$tool" create "$file")" = "$second" ] || fail "create keeps a valid file"
[ "$("$tool" read "$file")" = "$second" ] || fail "read prints the last bump's generation"
# Two copies of one file (two clones of one snapshot), each bumped: different generations.
cp "$file" "$dir/clone-a"; cp "$file" "$dir/clone-b"
[ "$("$tool" bump "$dir/clone-a")" != "$("$tool" bump "$dir/clone-b")" ] || fail "two clones' bumps differ"

# bump --set VALUE: a value handed in from outside; the same value again is no error.
[ "$("$tool" bump --set 42 "$file" 2>"$dir/err")" = 42 ] || fail "--set 42 prints 42"
[ ! -s "$dir/err" ] || fail "--set to a new value says nothing on stderr"
[ "$("$tool" read "$file")" = 42 ] || fail "--set stored 42"
[ "$("$tool" bump --set 42 "$file" 2>"$dir/err")" = 42 ] || fail "--set 42 again exits 0"
grep -q "already at generation 42: unchanged" "$dir/err" || fail "--set of the same value says so"
[ "$("$tool" bump --set 0 "$file")" = 0 ] || fail "--set 0"
[ "$("$tool" bump --set 18446744073709551614 "$file")" = 18446744073709551614 ] || fail "--set 2^64-2"
for bad in 18446744073709551615 18446744073709551616 -1 +1 0x10 "1 " "" x 1e3; do
  "$tool" bump --set "$bad" "$file" >/dev/null 2>"$dir/err"; rc=$?
  [ $rc -eq 2 ] || fail "--set '$bad' exits 2 (got $rc)"
  grep -q -- "--set" "$dir/err" || fail "--set '$bad' says what is wrong"
done
[ "$("$tool" read "$file")" = 18446744073709551614 ] || fail "bad --set values changed nothing"
"$tool" bump --set "$file" >/dev/null 2>&1; [ $? -eq 2 ] || fail "--set without a value exits 2"
"$tool" read --set 5 "$file" >/dev/null 2>&1; [ $? -eq 2 ] || fail "read --set exits 2"
"$tool" bump --set 5 --set 6 "$file" >/dev/null 2>&1; [ $? -eq 2 ] || fail "--set twice exits 2"
"$tool" bump --set 5 "$dir/missing" 2>/dev/null; [ $? -eq 1 ] || fail "--set on a missing file exits 1"

"$tool" bump "$dir/missing" 2>"$dir/err"; [ $? -eq 1 ] || fail "missing file exits 1"
grep -q "No such file" "$dir/err" || fail "missing file says why"
printf 'garbage-garbage!' > "$dir/corrupt"
"$tool" bump "$dir/corrupt" 2>"$dir/err"; [ $? -eq 1 ] || fail "corrupt file exits 1"
grep -q "corrupt counter file" "$dir/err" || fail "corrupt file says why"
[ "$(cat "$dir/corrupt")" = "garbage-garbage!" ] || fail "a corrupt file is left alone"
# --- Abuse. Each command runs under `timeout 10`: 124 would mean it hung.
run() { timeout 10 "$tool" "$@"; }

# A FIFO at the path: refused at once, never opened for reading or writing.
mkfifo "$dir/fifo"
for cmd in bump read; do
  run $cmd "$dir/fifo" 2>"$dir/err"; rc=$?
  [ $rc -eq 1 ] || fail "$cmd on a FIFO exits 1 (got $rc; 124: it hung)"
  grep -q "not a regular file" "$dir/err" || fail "$cmd on a FIFO says why"
done
run create "$dir/fifo" >/dev/null 2>"$dir/err" || fail "create replaces a FIFO"
[ -f "$dir/fifo" ] && [ ! -p "$dir/fifo" ] || fail "a FIFO is replaced by a regular file"

# A symlink at the path: never followed, so the file it names is never touched.
printf 'precious' > "$dir/victim"
ln -s "$dir/victim" "$dir/link"
for cmd in bump read; do
  run $cmd "$dir/link" 2>"$dir/err"; [ $? -eq 1 ] || fail "$cmd through a symlink exits 1"
  grep -q "symbolic link" "$dir/err" || fail "$cmd through a symlink says why"
done
run create "$dir/link" >/dev/null 2>&1 || fail "create replaces a symlink"
[ "$(cat "$dir/victim")" = precious ] || fail "the symlink's target is untouched"
[ -f "$dir/link" ] && [ ! -L "$dir/link" ] || fail "the symlink is replaced by a regular file"
ln -s "$file" "$dir/link-to-valid"
run bump "$dir/link-to-valid" 2>/dev/null; [ $? -eq 1 ] || fail "not even a link to a valid file"

# create over an invalid file: replaced by rename; the old inode, if it is a 16-byte file,
# is retired (magic 0, generation ~0) for processes still mapping it; never truncated.
exec 3<"$dir/corrupt"  # hold the old inode
run create "$dir/corrupt" >/dev/null 2>"$dir/err" || fail "create replaces a corrupt file"
grep -q "replaced $dir/corrupt (.*corrupt counter file" "$dir/err" || fail "create says what it replaced"
run read "$dir/corrupt" >/dev/null || fail "the replacement is valid"
[ "$(od -An -tx1 -v <&3 | tr -d ' \n')" = "0000000000000000ffffffffffffffff" ] ||
  fail "the old inode reads magic 0, generation unknown"
exec 3<&-
printf 'SSGENv1\n\x01' > "$dir/short"
exec 3<"$dir/short"
run create "$dir/short" >/dev/null 2>&1 || fail "create replaces a truncated file"
[ "$(od -An -tx1 -v <&3 | tr -d ' \n')" = "535347454e76310a01" ] ||
  fail "a short old file is left as it was (never truncated, never grown)"
exec 3<&-

# Who may write it: a file others can write is refused by bump and replaced by create.
run create "$dir/loose" >/dev/null || fail "create loose"
chmod 666 "$dir/loose"
run bump "$dir/loose" 2>"$dir/err"; [ $? -eq 1 ] || fail "bump refuses a 0666 file"
grep -q "writable by group or others" "$dir/err" || fail "bump says why"
run create "$dir/loose" >/dev/null 2>&1 || fail "create replaces a 0666 file"
[ "$(stat -c %a "$dir/loose")" = 644 ] || fail "the replacement is 0644"
mkdir -m 777 "$dir/open"
run create "$dir/open/generation" 2>"$dir/err"; [ $? -eq 1 ] || fail "create refuses a 0777 directory"
grep -q "writable by group or others and not sticky" "$dir/err" || fail "create says why"
[ ! -e "$dir/open/generation" ] || fail "nothing is created there"

# Mode 0644 whatever the umask, owned by the caller.
(umask 077; run create "$dir/umask" >/dev/null) || fail "create under umask 077"
[ "$(stat -c %a "$dir/umask")" = 644 ] || fail "create makes 0644 under umask 077"
[ "$(stat -c %u "$dir/umask")" = "$(id -u)" ] || fail "owned by the caller"
ls -a "$dir" | grep -q '\.new-' && fail "no temporary file is left behind"

"$tool" frobnicate "$file" 2>/dev/null; [ $? -eq 2 ] || fail "unknown command exits 2"
"$tool" 2>/dev/null; [ $? -eq 2 ] || fail "no arguments exits 2"
echo "PASS"
