#!/usr/bin/env bash
# The snapsafe command line: every command's output and format, help, and every error
# with its exit status (0 ok, 1 runtime error, 2 usage error) and its message on stderr.
# Arguments: the snapsafe tool, the snapsafe_counter tool (to create counter files).
set -uo pipefail
tool="$1"
counter_tool="$2"
dir="${TEST_TMPDIR:-$(mktemp -d)}"
out="$dir/out"
err="$dir/err"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# run WANT_STATUS ARGS...: runs the tool, stdout to $out, stderr to $err.
run() {
  local want="$1"; shift
  "$tool" "$@" >"$out" 2>"$err"
  local got=$?
  [ "$got" -eq "$want" ] || fail "snapsafe $* exited $got, expected $want (stderr: $(head -c 300 "$err"))"
}
stdout_has() { grep -qE -- "$1" "$out" || fail "stdout lacks /$1/: $(head -c 300 "$out")"; }
stderr_has() { grep -qE -- "$1" "$err" || fail "stderr lacks /$1/: $(head -c 300 "$err")"; }
stdout_empty() { [ ! -s "$out" ] || fail "stdout not empty: $(head -c 100 "$out")"; }
lines() { wc -l <"$out" | tr -d ' '; }

# Everything below must not touch a real device or the default counter file.
export SNAPSAFE_SYSGENID_PATH="$dir/no-such-device"
unset SNAPSAFE_COUNTER_FILE

v4='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
v7='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# ---- help ----
run 0 --help; stdout_has '^usage: snapsafe COMMAND'; stdout_has 'genid bump'
run 0 -h; stdout_has '^usage: snapsafe COMMAND'
run 0 help; stdout_has '^Exit status: 0 success, 1 runtime error, 2 usage error'
for c in status uuid bytes reqid genid help; do
  run 0 help "$c"; stdout_has "^usage: snapsafe $c"
done
run 0 uuid --help; stdout_has '^usage: snapsafe uuid'
run 0 bytes -h; stdout_has '^usage: snapsafe bytes'
run 0 genid --help; stdout_has '^usage: snapsafe genid read'
run 0 genid bump --help; stdout_has 'SYSGENID_TRIGGER_GEN_UPDATE'; stdout_has 'fresh random generation'
stdout_has '--set VALUE'; stdout_has '--reseed-kernel'; stdout_has 'is refused there \(exit 2\)'
run 2 help nope; stderr_has "no such command 'nope'"
run 2 help uuid extra; stderr_has "unexpected argument 'extra'"
run 2; stderr_has '^usage: snapsafe COMMAND'; stdout_empty
run 2 frobnicate; stderr_has "^snapsafe: unknown command 'frobnicate'"; stderr_has "Try 'snapsafe help'"

# ---- status ----
run 0 status; stdout_has '^source: '; stdout_has '^covers fork: '; stdout_has '^snapshot safe: '
run 2 status extra; stderr_has "status: unexpected argument 'extra'"
run 2 status --json; stderr_has "unknown option '--json'"

# ---- uuid ----
run 0 uuid; [ "$(lines)" = 1 ] || fail "uuid prints one line"; stdout_has "$v4"
run 0 uuid -n 1000
[ "$(grep -cE "$v4" "$out")" = 1000 ] || fail "uuid -n 1000: 1000 version 4 lines"
[ "$(sort -u "$out" | wc -l)" = 1000 ] || fail "uuid -n 1000: all distinct"
run 0 uuid --v4 -n 3; [ "$(grep -cE "$v4" "$out")" = 3 ] || fail "--v4"
run 0 uuid -n 1000 --v7
[ "$(grep -cE "$v7" "$out")" = 1000 ] || fail "uuid --v7: 1000 version 7 lines"
LC_ALL=C sort -c -u "$out" 2>/dev/null || fail "uuid --v7: strictly increasing"
run 2 uuid -n=5; stderr_has "unknown option '-n=5'"
run 0 uuid -n 0; stdout_empty
"$tool" uuid -n 1000000 | tail -n 1 | grep -qE "$v4" || fail "uuid -n 1000000 (the bound) works"
run 2 uuid -n 1000001; stderr_has 'too large: 1000001 \(at most 1000000\)'; stdout_empty
run 2 uuid -n 18446744073709551616; stderr_has 'too large'
run 2 uuid -n 99999999999999999999999999; stderr_has 'too large'
run 2 uuid -n -1; stderr_has 'must not be negative: -1'
for bad in abc 1e3 0x10 ' 5' '5 ' +5 1.0; do
  run 2 uuid -n "$bad"; stderr_has "is not a decimal number"
done
run 2 uuid -n ''; stderr_has 'empty number'
# An echoed argument never splits the one-line message (found by tests/fuzz/cli_args_fuzz.cc).
run 2 uuid -n "$(printf '1\n2')"; stderr_has "not a decimal number: '1\\\\x0a2'"
[ "$(wc -l <"$err")" = 2 ] || fail "a newline in an argument: still one message line and the Try line"
run 2 uuid -n; stderr_has '-n needs a value'
run 2 uuid -n 5 -n 6; stderr_has 'given twice'
run 2 uuid --v4 --v7; stderr_has 'choose one of --v4 and --v7'
run 2 uuid --v8; stderr_has "unknown option '--v8'"
run 2 uuid --v7=1; stderr_has 'takes no value'
run 2 uuid 5; stderr_has "unexpected argument '5'"

# ---- reqid ----
run 0 reqid; stdout_has '^[0-9a-f]{32}$'
run 0 reqid -n 50
[ "$(grep -cE '^[0-9a-f]{32}$' "$out")" = 50 ] || fail "reqid -n 50: 50 IDs"
[ "$(sort -u "$out" | wc -l)" = 50 ] || fail "reqid: distinct"
run 2 reqid -n 1000001; stderr_has 'too large'
run 2 reqid --v7; stderr_has "unknown option '--v7'"

# ---- bytes ----
run 0 bytes 1000; [ "$(wc -c <"$out")" = 1000 ] || fail "bytes 1000: 1000 raw bytes"
run 0 bytes 100000; [ "$(wc -c <"$out")" = 100000 ] || fail "bytes 100000 (several chunks)"
[ "$(od -An -v -tx1 "$out" | tr -s ' \n' '\n\n' | grep -c .)" = 100000 ] || fail "bytes: od sees them"
run 0 bytes 0; stdout_empty
run 0 bytes 16 --hex; stdout_has '^[0-9a-f]{32}$'
run 0 bytes 0 --hex; [ "$(cat "$out")" = "" ] && [ "$(wc -c <"$out")" = 1 ] || fail "bytes 0 --hex: an empty line"
for n in 0 1 2 3 4 5 100 49152 49153 100000; do
  run 0 bytes "$n" --base64
  want=$(( (n + 2) / 3 * 4 + 1 ))
  [ "$(wc -c <"$out")" = "$want" ] || fail "bytes $n --base64: $want characters with the newline"
  [ "$(base64 -d <"$out" | wc -c)" = "$n" ] || fail "bytes $n --base64 decodes to $n bytes"
done
run 0 bytes 2 --base64; stdout_has '^[A-Za-z0-9+/]{3}=$'
run 0 bytes 1 --base64; stdout_has '^[A-Za-z0-9+/]{2}==$'
# The upper bound is accepted (only the first bytes are read; the tool dies of SIGPIPE).
[ "$("$tool" bytes 1073741824 | head -c 16 | wc -c)" = 16 ] || fail "bytes 1073741824 (1 GiB, the bound) starts"
run 2 bytes 1073741825; stderr_has 'too large: 1073741825 \(at most 1073741824\)'
run 2 bytes; stderr_has 'how many bytes'
run 2 bytes 5 6; stderr_has "unexpected argument '6'"
run 2 bytes -5; stderr_has 'must not be negative'
run 2 bytes five; stderr_has 'not a decimal number'
run 2 bytes 5 --hex --base64; stderr_has 'choose one of --hex and --base64'
run 2 bytes 5 --raw; stderr_has "unknown option '--raw'"
# Raw bytes to a terminal are refused (when a pseudo-terminal can be had here).
if script -qec true /dev/null >/dev/null 2>&1; then
  script -qec "\"$tool\" bytes 4; echo \"status=\$?\"" /dev/null >"$out" 2>&1
  grep -q 'refusing to write raw bytes to a terminal' "$out" || fail "raw bytes to a terminal are refused"
  grep -q 'status=2' "$out" || fail "raw bytes to a terminal exit 2"
  script -qec "\"$tool\" bytes 4 --hex" /dev/null >"$out" 2>&1
  grep -qE '^[0-9a-f]{8}' "$out" || fail "hex to a terminal is fine"
else
  echo "SKIP: no pseudo-terminal for the raw-bytes-to-a-terminal check"
fi

# ---- write errors ----
if [ -w /dev/full ]; then
  "$tool" uuid -n 10 >/dev/full 2>"$err"; [ $? -eq 1 ] || fail "a write error exits 1"
  stderr_has 'write error: No space left on device'
  "$tool" status >/dev/full 2>"$err"; [ $? -eq 1 ] || fail "status: a write error exits 1"
fi

# ---- genid: the counter file ----
# A counter file at generation 0, written directly (snapsafe_counter create may start at a
# random generation), mode 0644 as the tool makes it.
file="$dir/generation"
printf 'SSGENv1\n\000\000\000\000\000\000\000\000' >"$file"
chmod 0644 "$file"
[ "$("$counter_tool" read "$file")" = 0 ] || fail "the hand-made counter file reads 0"
run 0 genid read --file "$file"; [ "$(cat "$out")" = 0 ] || fail "genid read: 0"
# bump: a fresh random generation (not +1), never the one it replaces.
gen_of() { "$counter_tool" read "$file"; }
run 0 genid bump --file "$file"; g1=$(cat "$out")
[[ "$g1" =~ ^[0-9]+$ ]] && [ "$g1" != 0 ] && [ "$g1" != 1 ] || fail "genid bump: a random generation, not 0 + 1 ($g1)"
[ "$(gen_of)" = "$g1" ] || fail "genid bump stored what it printed"
run 0 genid bump --file="$file"; g2=$(cat "$out")
[ "$g2" != "$g1" ] && [ "$(gen_of)" = "$g2" ] || fail "genid bump --file=PATH changes it again ($g1 -> $g2)"
run 0 genid read --file "$file"; [ "$(cat "$out")" = "$g2" ] || fail "genid read: $g2"
SNAPSAFE_COUNTER_FILE="$file" run 0 genid bump; g3=$(cat "$out")
[ "$g3" != "$g2" ] || fail "SNAPSAFE_COUNTER_FILE: bumped"
SNAPSAFE_COUNTER_FILE="$file" run 0 genid read; [ "$(cat "$out")" = "$g3" ] || fail "read via env"
[ "$(gen_of)" = "$g3" ] || fail "the library's reader agrees"
# Two copies of one file (two clones), each bumped: different generations.
cp "$file" "$dir/clone-a"; cp "$file" "$dir/clone-b"
run 0 genid bump --file "$dir/clone-a"; ga=$(cat "$out")
run 0 genid bump --file "$dir/clone-b"; gb=$(cat "$out")
[ "$ga" != "$gb" ] || fail "two clones' bumps gave the same generation $ga"
# --min means nothing for a counter file now (random values): refused, nothing written.
run 2 genid bump --min 4 --file "$file"; stderr_has '--min applies to the SysGenID device only'; stdout_empty
run 2 genid bump --min 18446744073709551616 --file "$file"; stderr_has '--min applies to the SysGenID device only'
[ "$(gen_of)" = "$g3" ] || fail "a refused --min changed the file"
# --set VALUE: stored as given; the same value again: exit 0, "unchanged" on stderr.
run 0 genid bump --set 5 --file "$file"; [ "$(cat "$out")" = 5 ] || fail "--set 5 prints 5"
[ ! -s "$err" ] || fail "--set of a new value says nothing"
run 0 genid bump --set=5 --file "$file"; [ "$(cat "$out")" = 5 ] || fail "--set 5 again prints 5"
stderr_has 'already at generation 5: unchanged'
run 0 genid bump --set 18446744073709551614 --file "$file"; [ "$(cat "$out")" = 18446744073709551614 ] || fail "--set 2^64-2"
run 2 genid bump --set 18446744073709551615 --file "$file"; stderr_has 'too large: 18446744073709551615 \(at most 18446744073709551614\)'
run 2 genid bump --set 18446744073709551616 --file "$file"; stderr_has 'too large'
run 2 genid bump --set -1 --file "$file"; stderr_has 'must not be negative'
run 2 genid bump --set x --file "$file"; stderr_has 'not a decimal number'
run 2 genid bump --set '' --file "$file"; stderr_has 'empty number'
run 2 genid bump --set 1 --min 1 --file "$file"; stderr_has '--min applies to the SysGenID device only'
run 0 genid bump --set 6 --file "$file"; [ "$(gen_of)" = 6 ] || fail "--set 6"
run 2 genid read --set 1 --file "$file"; stderr_has "unknown option '--set'"
run 2 genid bump --reseed-kernel=1 --file "$file"; stderr_has '--reseed-kernel takes no value'
# --reseed-kernel: the kernel part, then the bump. As root both ioctls succeed (exit 0);
# without CAP_SYS_ADMIN the bump is done, the refusal said, exit 1. Real root: uid 0
# outside any user namespace (this target runs unsandboxed).
if [ "$(id -u)" = 0 ] && [ "$(tr -s ' ' <"/proc/self/uid_map" | sed 's/^ //')" = "0 0 4294967295" ]; then
  run 0 genid bump --reseed-kernel --file "$dir/clone-a"
  stderr_has 'mixed into the pool: yes .*; CRNG reseeded: yes'
else
  run 1 genid bump --reseed-kernel --file "$dir/clone-a"
  stderr_has 'mixed into the pool: no \(EPERM: needs CAP_SYS_ADMIN\); CRNG reseeded: no'
fi
[ "$(cat "$out")" != "$ga" ] && [ "$("$counter_tool" read "$dir/clone-a")" = "$(cat "$out")" ] ||
  fail "--reseed-kernel bumped all the same"
run 2 genid bump --file ''; stderr_has '--file needs a path'
run 2 genid bump --file; stderr_has '--file needs a value'
run 1 genid read --file "$dir/missing"; stderr_has 'No such file'
run 1 genid bump --file "$dir/missing"; stderr_has 'No such file'
SNAPSAFE_COUNTER_FILE="$dir/missing" run 1 genid bump; stderr_has "$dir/missing: open: No such file"
printf 'garbage-garbage!' >"$dir/corrupt"
run 1 genid bump --file "$dir/corrupt"; stderr_has 'corrupt counter file'
[ "$(cat "$dir/corrupt")" = "garbage-garbage!" ] || fail "a corrupt file is left alone"
run 2 genid; stderr_has 'which one: read, bump, wait or follow'
run 2 genid frob; stderr_has "unknown genid command 'frob'"
run 2 genid read extra; stderr_has "unexpected argument 'extra'"
run 2 genid read --min 1; stderr_has "unknown option '--min'"
run 2 genid wait --file "$file"; stderr_has "unknown option '--file'"

# ---- genid: the SysGenID device ----
# No real device here. /dev/zero is a character device whose page maps (generation 0) and
# which answers every SysGenID ioctl with ENOTTY: enough for everything the tool checks
# before and around the ioctls. tests/cli_device_test.cc runs the ioctls against a fake.
if [ -c /dev/zero ]; then
  export SNAPSAFE_SYSGENID_PATH=/dev/zero
  run 0 genid read; [ "$(cat "$out")" = 0 ] || fail "genid read from a device page: 0"
  run 0 genid read --file "$file"; [ "$(cat "$out")" = 6 ] || fail "--file wins over the device"
  run 1 genid bump; stderr_has "/dev/zero: not a SysGenID device \(SYSGENID_TRIGGER_GEN_UPDATE"
  run 1 genid bump --min 65536; stderr_has 'not a SysGenID device'
  run 2 genid bump --set 5; stderr_has '--set applies to a counter file only'; stdout_empty
  # --min never more than 65536 ahead, never to 4294967295: checked before
  # the ioctl, exit 2.
  run 2 genid bump --min 65537; stderr_has '--min 65537 is more than 65536 above the current generation 0 \(at most 65536\)'; stdout_empty
  run 2 genid bump --min 4294967295; stderr_has 'more than 65536 above'
  run 2 genid bump --min 4294967296; stderr_has 'too large: 4294967296 \(at most 4294967295\)'
  run 1 genid wait; stderr_has "/dev/zero: not a SysGenID device \(SYSGENID_WAIT_WATCHERS"
  run 1 genid wait --timeout-ms 10; stderr_has 'not a SysGenID device'
  run 2 genid wait --timeout-ms 86400001; stderr_has 'too large'
  run 2 genid wait --timeout-ms soon; stderr_has 'not a decimal number'
else
  echo "SKIP: no /dev/zero for the device checks"
fi

# A FIFO at the device path: every genid command used to block in open()
# forever. Now refused, without opening it, at once (`timeout` bounds a regression; 124
# would be a hang).
mkfifo "$dir/fifo"
export SNAPSAFE_SYSGENID_PATH="$dir/fifo"
for args in "genid read" "genid bump" "genid wait" "genid wait --timeout-ms 10"; do
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  timeout 10 "$tool" $args >"$out" 2>"$err"; got=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$got" -eq 1 ] || fail "snapsafe $args on a FIFO exited $got, expected 1 (124: it hung)"
  stderr_has "$dir/fifo: not a character device or regular file"
  [ "$ms" -lt 5000 ] || fail "snapsafe $args on a FIFO took $ms ms"
done
# The negative control: what a plain open() of that FIFO does (the old tool's open).
timeout 1 cat "$dir/fifo" >/dev/null 2>&1; got=$?
[ "$got" -eq 124 ] || fail "negative control: a plain open of the FIFO returned ($got) instead of blocking"

# Not a device: a regular file (the old tool read it as the device's page), a directory,
# a world-writable file, and a path whose directory others may write.
device="$dir/sysgenid"
printf '\007\000\000\000' >"$device"
truncate -s 4096 "$device"
chmod 0644 "$device"
export SNAPSAFE_SYSGENID_PATH="$device"
run 1 genid read; stderr_has "$device: not a character device \(a regular file is no SysGenID device\)"; stdout_empty
run 1 genid bump; stderr_has "not a character device"
run 1 genid wait; stderr_has "not a character device"
chmod 0666 "$device"
run 1 genid read; stderr_has "$device: refused: the file is writable by group or others"
SNAPSAFE_SYSGENID_PATH="$dir" run 1 genid read; stderr_has 'not a character device or regular file'
mkdir -m 0777 "$dir/open-dir"; chmod 0777 "$dir/open-dir"
ln -s /dev/zero "$dir/open-dir/link"
SNAPSAFE_SYSGENID_PATH="$dir/open-dir/link" run 1 genid read; stderr_has 'refused: directory .*open-dir is writable by group or others'
export SNAPSAFE_SYSGENID_PATH="$dir/no-such-device"
run 1 genid wait; stderr_has "genid wait needs the SysGenID device, and $dir/no-such-device does not exist"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "PASS"
