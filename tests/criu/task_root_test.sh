#!/usr/bin/env bash
# The counter file inside a restored task's root (SNAPSAFE_COUNTER_IN_TASK_ROOT=1): the hook
# and `snapsafe_counter --root` must bump the file the container maps, never the host's file
# at the same path.
#
# Part 1, any user: a plain directory as the root. Absolute symlinks and ".." stay beneath
# it; the same file outside it (a decoy) is never touched.
# Part 2, root only (else SKIP, exit 0): a real "container", a process in its own mount
# namespace (unshare -m) with a tmpfs over DIR/run, holding its own counter file, while the
# host holds a decoy at the same path. The hook must bump the container's file. Negative
# control: the old hook's text path /proc/PID/root/PATH (what it ran before the fix) bumps
# the host's decoy; shown here.
set -uo pipefail
hook="$1"
tool="$2"
case "$hook" in /*) ;; *) hook="$PWD/$hook" ;; esac
case "$tool" in /*) ;; *) tool="$PWD/$tool" ;; esac
top=$(mktemp -d "${TEST_TMPDIR:-/tmp}/task-root.XXXXXX") || exit 1
chmod 755 "$top"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$top"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
zero_file() { printf 'SSGENv1\n\0\0\0\0\0\0\0\0' >"$1" && chmod 0644 "$1"; }
gen() { "$tool" read "$1" 2>/dev/null || echo "unreadable"; }

# ---- Part 1: a directory as the root.
root="$top/rootfs"
mkdir -p "$root/c" "$top/c" && chmod 755 "$root" "$root/c" "$top/c"
zero_file "$root/c/generation" && zero_file "$top/c/generation" || fail "setup"
mkdir -m 755 "$root/run" && ln -s /c "$root/run/abs" && ln -s ../../../../c "$root/run/up"

# A bump stores a fresh random generation (not +1): bumped_to checks that the
# file beneath the root now holds what the tool printed, and that it changed.
last=0
bumped_to() {
  local printed="$1" now; now=$(gen "$root/c/generation")
  [ -n "$printed" ] && [ "$printed" = "$now" ] && [ "$now" != "$last" ] || return 1
  last=$now
}
bumped_to "$("$tool" bump --root "$root" /c/generation)" || fail "--root bumps DIR/c/generation"
bumped_to "$("$tool" bump --root "$root" /../../c/generation)" || fail "'..' above the root stays at the root"
bumped_to "$("$tool" bump --root "$root" /run/abs/generation)" ||
  fail "an absolute symlink resolves beneath the root"
bumped_to "$("$tool" bump --root "$root" /run/up/generation)" ||
  fail "a relative symlink climbing above the root stays beneath it"
bumped_to "$("$tool" bump --root "$root" --set 77 /run/abs/generation)" || fail "--set beneath the root"
[ "$(gen "$top/c/generation")" = 0 ] || fail "the file outside the root was bumped"
# Every trust rule still applies beneath the root.
chmod 777 "$root/c"
"$tool" bump --root "$root" /c/generation 2>"$top/err"; [ $? -eq 1 ] || fail "a 0777 dir beneath the root exits 1"
grep -q "directory /c is writable by group or others" "$top/err" || fail "it says which directory ($(cat "$top/err"))"
chmod 755 "$root/c"
ln -s generation "$root/c/last-link"
"$tool" bump --root "$root" /c/last-link 2>"$top/err"; [ $? -eq 1 ] || fail "a symlink at the last component exits 1"
grep -q "symbolic link" "$top/err" || fail "it says why"
mkfifo "$root/c/fifo"
timeout 10 "$tool" bump --root "$root" /c/fifo 2>"$top/err"; [ $? -eq 1 ] || fail "a FIFO exits 1 at once"
# --missing-ok: exit 3 only for ENOENT, and only with the flag.
"$tool" bump --root "$root" --missing-ok /c/none >"$top/out" 2>&1; [ $? -eq 3 ] || fail "--missing-ok: missing exits 3"
[ ! -s "$top/out" ] || fail "--missing-ok prints nothing ($(cat "$top/out"))"
"$tool" bump --root "$root" --missing-ok /none/generation >/dev/null 2>&1; [ $? -eq 3 ] ||
  fail "--missing-ok: a missing directory exits 3"
"$tool" bump --root "$root" /c/none 2>/dev/null; [ $? -eq 1 ] || fail "missing without --missing-ok exits 1"
"$tool" bump --root "$root" --missing-ok /c/fifo 2>/dev/null; [ $? -eq 1 ] || fail "--missing-ok: a FIFO still exits 1"
# Usage errors exit 2.
for bad in "bump --root" "bump --root relative /c/generation" "bump --root $root c/generation" \
  "bump --root $root --root $root /c/generation" "create --missing-ok $root/x" "bump --frob /x" \
  "bump --root $root --missing-ok"; do
  # shellcheck disable=SC2086
  "$tool" $bad >/dev/null 2>&1; [ $? -eq 2 ] || fail "usage error exits 2: $bad"
done
"$tool" bump --root "$top/no-such-dir" /c/generation 2>/dev/null; [ $? -eq 1 ] || fail "a missing root exits 1"
"$tool" bump --root "$root/c/generation" /x 2>/dev/null; [ $? -eq 1 ] || fail "a root that is a file exits 1"
[ "$(gen "$root/c/generation")" = 77 ] && [ "$(gen "$top/c/generation")" = 0 ] || fail "errors changed nothing"

# ---- Part 2: a container in its own mount namespace.
if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
  echo "SKIP part 2: needs root and mount namespaces (part 1 passed)"
  echo "PASS"
  exit 0
fi
dir="$top/ns"
mkdir -p "$dir/run" && chmod 755 "$dir" "$dir/run"
file="$dir/run/generation"
zero_file "$file" || fail "decoy"

# container NAME SETUP: a process in a new mount namespace with a tmpfs over $dir/run, after
# SETUP (shell, run inside it) ran. Sets $pid; waits until it is ready.
container() {
  local ready="$top/$1.ready"
  unshare -m --propagation private sh -c "
    mount -t tmpfs -o mode=0755 snapsafe-test '$dir/run' || exit 1
    $2
    : > '$ready'
    exec sleep 300" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do [ -e "$ready" ] && return 0; sleep 0.05; done
  fail "container $1 did not start"
}
inside() { nsenter -t "$pid" -m "$tool" read "$1" 2>/dev/null || echo unreadable; }
inside_bytes() { nsenter -t "$pid" -m od -An -tx1 -v "$1" | tr -d ' \n'; }
zero_bytes=535347454e76310a0000000000000000
hook_in() {  # hook_in PID [PATH]: the hook at post-restore, in-task-root mode
  env -i PATH=/usr/bin:/bin SNAPSAFE_COUNTER_TOOL="$tool" CRTOOLS_SCRIPT_ACTION=post-restore \
    SNAPSAFE_COUNTER_IN_TASK_ROOT=1 CRTOOLS_INIT_PID="$1" SNAPSAFE_COUNTER_FILE="${2:-$file}" "$hook"
}

container good "printf 'SSGENv1\n\0\0\0\0\0\0\0\0' > '$file' && chmod 644 '$file' &&
  mkdir -m 755 '$dir/run/links' && ln -s '$dir/run' '$dir/run/links/abs'"
good=$pid
[ "$(inside "$file")" = 0 ] && [ "$(gen "$file")" = 0 ] || fail "setup: two files at generation 0"

# The fix: the container's file moves, the host's decoy does not.
hook_in "$good" 2>"$top/err" || fail "hook in task root exits 0 ($(cat "$top/err"))"
# Each bump stores a fresh random generation (not +1): check it changed.
g1=$(inside "$file")
[ "$g1" != 0 ] && [ "$g1" != unreadable ] || fail "the container's file was not bumped ($g1)"
[ "$(gen "$file")" = 0 ] || fail "the host's decoy was bumped ($(gen "$file"))"
grep -q "beneath /proc/$good/root is at generation $g1" "$top/err" || fail "it says so ($(cat "$top/err"))"
# CRIU may run the script twice per stage: it just bumps twice.
hook_in "$good" 2>/dev/null && g2=$(inside "$file") && [ "$g2" != "$g1" ] || fail "a second run bumps again"
# An absolute symlink inside the container resolves inside it.
hook_in "$good" "$dir/run/links/abs/generation" 2>/dev/null || fail "through an absolute symlink exits 0"
g3=$(inside "$file")
[ "$g3" != "$g2" ] && [ "$(gen "$file")" = 0 ] ||
  fail "an absolute symlink resolved outside the container (container $g3, host $(gen "$file"))"
# ".." cannot escape the task's root.
hook_in "$good" "/../../..$file" 2>/dev/null && g4=$(inside "$file") && [ "$g4" != "$g3" ] &&
  [ "$(gen "$file")" = 0 ] || fail "'..' at the task's root"

# Negative control: the old hook's text path, /proc/PID/root/PATH, bumps the host's decoy.
env -i PATH=/usr/bin:/bin SNAPSAFE_COUNTER_TOOL="$tool" CRTOOLS_SCRIPT_ACTION=post-restore \
  SNAPSAFE_COUNTER_FILE="/proc/$good/root$file" "$hook" 2>/dev/null || fail "old form exits 0"
[ "$(gen "$file")" != 0 ] && [ "$(inside "$file")" = "$g4" ] ||
  fail "negative control: the text path was expected to bump the host's decoy (host $(gen "$file"), container $(inside "$file"))"
echo "negative control: /proc/$good/root$file bumped the host's decoy, not the container's file"
zero_file "$file"

# A container without a counter file: exit 0 with a note; nothing else touched.
container empty ":"
hook_in "$pid" 2>"$top/err"; rc=$?
[ $rc -eq 0 ] || fail "no counter file in the container exits 0 (got $rc: $(cat "$top/err"))"
[ "$(wc -l <"$top/err")" = 1 ] && grep -q "no counter file at $file beneath /proc/$pid/root" "$top/err" ||
  fail "one note says so ($(cat "$top/err"))"
[ "$(gen "$file")" = 0 ] || fail "the host's decoy was bumped for an empty container"

# Everything else fails closed: exit 1, nothing bumped.
container loose "printf 'SSGENv1\n\0\0\0\0\0\0\0\0' > '$file' && chmod 666 '$file'"
hook_in "$pid" 2>"$top/err"; [ $? -eq 1 ] || fail "an untrusted file in the container exits 1"
grep -q "writable by group or others" "$top/err" && grep -q "must not resume" "$top/err" || fail "it says why"
[ "$(inside_bytes "$file")" = $zero_bytes ] && [ "$(gen "$file")" = 0 ] || fail "nothing bumped for an untrusted file"
container corrupt "printf 'garbage-garbage!' > '$file' && chmod 644 '$file'"
hook_in "$pid" 2>"$top/err"; [ $? -eq 1 ] || fail "a corrupt file in the container exits 1"
grep -q "corrupt counter file" "$top/err" || fail "it says why"
container fifo "mkfifo -m 644 '$file'"
timeout 10 env -i PATH=/usr/bin:/bin SNAPSAFE_COUNTER_TOOL="$tool" CRTOOLS_SCRIPT_ACTION=post-restore \
  SNAPSAFE_COUNTER_IN_TASK_ROOT=1 CRTOOLS_INIT_PID="$pid" SNAPSAFE_COUNTER_FILE="$file" "$hook" 2>/dev/null
[ $? -eq 1 ] || fail "a FIFO in the container exits 1 (124: it hung)"
for bad in "" 0 abc 12x -1 " $good"; do
  hook_in "$bad" 2>/dev/null; [ $? -eq 1 ] || fail "CRTOOLS_INIT_PID='$bad' exits 1"
done
hook_in "$good" "run/generation" 2>/dev/null; [ $? -eq 1 ] || fail "a relative path exits 1"
hook_in 999999999 2>/dev/null; [ $? -eq 1 ] || fail "a task that is gone exits 1"
[ "$(gen "$file")" = 0 ] || fail "the host's decoy was bumped by a failure"
echo "PASS"
