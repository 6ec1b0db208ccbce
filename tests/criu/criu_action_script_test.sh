#!/usr/bin/env bash
# The shipped CRIU action script (tools/hooks/criu-action-script) without CRIU: which stages
# bump the counter file, where the path and the tool come from, and that a failed bump
# exits non-zero (CRIU then aborts the restore). tests/criu/run covers it under real CRIU.
set -uo pipefail
hook="$1"
tool="$2"
case "$tool" in /*) ;; *) tool="$PWD/$tool" ;; esac
dir="${TEST_TMPDIR:-$(mktemp -d)}"
file="$dir/generation"
fail() { echo "FAIL: $*" >&2; exit 1; }
gen() { "$tool" read "$file"; }
# Each bump stores a fresh random generation drawn here (not +1): check that
# it changed, and remember it.
last=0
changed() { local now; now=$(gen); [ "$now" != "$last" ] || fail "$1 (still $now)"; last=$now; }
run() { env -i PATH=/usr/bin:/bin SNAPSAFE_COUNTER_TOOL="$tool" "$@" "$hook"; }

# A counter file at generation 0, written by hand (`create` starts at 64 random bits).
printf 'SSGENv1\n\0\0\0\0\0\0\0\0' >"$file" && chmod 0644 "$file" || fail "write $file"
[ "$(gen)" = 0 ] || fail "the hand-made file reads $(gen)"

for stage in "" pre-dump post-dump pre-restore setup-namespaces post-setup-namespaces \
  pre-resume post-resume network-lock network-unlock orphan-pts-master status-ready; do
  run CRTOOLS_SCRIPT_ACTION="$stage" SNAPSAFE_COUNTER_FILE="$file" || fail "stage '$stage' exits 0"
done
[ "$(gen)" = 0 ] || fail "only post-restore bumps (generation $(gen))"

run CRTOOLS_SCRIPT_ACTION=post-restore SNAPSAFE_COUNTER_FILE="$file" 2>/dev/null || fail "post-restore exits 0"
changed "post-restore bumps"

# A first argument names the file (a wrapper calling the hook).
env -i PATH=/usr/bin:/bin SNAPSAFE_COUNTER_TOOL="$tool" CRTOOLS_SCRIPT_ACTION=post-restore \
  SNAPSAFE_COUNTER_FILE="$dir/elsewhere" "$hook" "$file" 2>/dev/null || fail "argument path"
changed "the argument overrides SNAPSAFE_COUNTER_FILE"

# The path inside the restored task's root, walked beneath /proc/PID/root (here our own
# root; tests/criu:task_root_test uses a second mount namespace).
run CRTOOLS_SCRIPT_ACTION=post-restore SNAPSAFE_COUNTER_FILE="$file" SNAPSAFE_COUNTER_IN_TASK_ROOT=1 \
  CRTOOLS_INIT_PID=$$ 2>/dev/null || fail "in-task-root bump"
changed "in-task-root bumps through /proc/PID/root"
run CRTOOLS_SCRIPT_ACTION=post-restore SNAPSAFE_COUNTER_FILE="$file" SNAPSAFE_COUNTER_IN_TASK_ROOT=1 \
  2>"$dir/err"
[ $? -eq 1 ] || fail "in-task-root without CRTOOLS_INIT_PID exits 1"
grep -q CRTOOLS_INIT_PID "$dir/err" || fail "it says why"

# Failures exit 1 (CRIU aborts the restore), never 0.
run CRTOOLS_SCRIPT_ACTION=post-restore SNAPSAFE_COUNTER_FILE="$dir/missing" 2>"$dir/err"
[ $? -eq 1 ] || fail "a missing counter file exits 1"
grep -q "must not resume" "$dir/err" || fail "a failed bump says so"
env -i PATH=/usr/bin:/bin SNAPSAFE_COUNTER_TOOL="$dir/no-such-tool" CRTOOLS_SCRIPT_ACTION=post-restore \
  SNAPSAFE_COUNTER_FILE="$file" "$hook" 2>/dev/null
[ $? -eq 1 ] || fail "a missing tool exits 1"
# Two clones of one checkpoint (copies of one file at one generation), each restored with
# the hook: different generations (with +1 both would read the same number).
cp "$file" "$dir/clone-a" && cp "$file" "$dir/clone-b" || fail "copy"
run CRTOOLS_SCRIPT_ACTION=post-restore SNAPSAFE_COUNTER_FILE="$dir/clone-a" 2>/dev/null || fail "clone a"
run CRTOOLS_SCRIPT_ACTION=post-restore SNAPSAFE_COUNTER_FILE="$dir/clone-b" 2>/dev/null || fail "clone b"
a=$("$tool" read "$dir/clone-a"); b=$("$tool" read "$dir/clone-b")
[ "$a" != "$b" ] && [ "$a" != "$last" ] && [ "$b" != "$last" ] || fail "two clones' hooks gave $a and $b (from $last)"
[ "$(gen)" = "$last" ] || fail "failures leave the file alone"
echo "PASS"
