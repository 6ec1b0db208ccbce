#!/usr/bin/env bash
# The soak's checks can fail (tests/soak/soak_main.cc): a short clean run passes, and each
# negative control fails on exactly the field it breaks. Usage: $0 SOAK_MAIN
set -uo pipefail
soak=$1
failures=0
run() {  # run NAME EXPECTED_EXIT SECONDS [ARGS...]: prints the soak line
  local name=$1 expected=$2 seconds=$3
  shift 3
  out=$(SNAPSAFE_SOAK_SECONDS=$seconds "$soak" "$@" 2>&1)
  local rc=$?
  line=$(printf '%s\n' "$out" | grep '^soak: seconds=')
  echo "$name (exit $rc): $line"
  if [ "$rc" -ne "$expected" ] || [ -z "$line" ]; then
    printf '%s\n' "$out"
    echo "FAIL: $name exited $rc, expected $expected"
    failures=$((failures + 1))
  fi
}
field() { printf '%s\n' "$line" | sed -n "s/.* $1=\([-0-9]*\).*/\1/p"; }
expect() {  # expect NAME FIELD OP VALUE
  local value
  value=$(field "$2")
  if ! [ "${value:-x}" -"$3" "$4" ] 2>/dev/null; then
    echo "FAIL: $1: $2=$value, expected $3 $4"
    failures=$((failures + 1))
  fi
}

unset SNAPSAFE_SOURCE SNAPSAFE_COUNTER_FILE  # the soak makes its own counter file
run clean 0 3
expect clean duplicates eq 0
expect clean fds_leaked eq 0
expect clean states_leaked eq 0
for f in threads forks bumps values; do expect clean "$f" gt 0; done

run fd 1 2 --negative-control=fd
expect fd fds_leaked gt 0
run duplicate 1 2 --negative-control=duplicate
expect duplicate duplicates gt 0
run states 1 2 --negative-control=states
expect states states_leaked gt 0
run rss 1 2 --negative-control=rss
expect rss rss_growth_kib gt 16384

if [ "$failures" -ne 0 ]; then
  echo "soak negative controls: $failures failure(s)"
  exit 1
fi
echo "soak negative controls: all detected"
