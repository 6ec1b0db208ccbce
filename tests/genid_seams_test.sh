#!/usr/bin/env bash
# genid's `*_for_testing` seams live only in its test-only twins (//genid:genid_testing,
# //genid:counter_file_writer_testing; SNAPSAFE_TESTING), and the counter file's writer
# only in the tools: the production shared library and genid's production archive define
# neither. Negative control: the testing twins do define every seam (so the grep below
# would see them if they leaked).
# Arguments: libsnapsafe.so, then the files of //genid, //genid:genid_testing,
# //genid:counter_file_writer_testing, each group after a "--".
set -euo pipefail
so=$1
shift
group=0 prod=() testing=() writer=()
for arg in "$@"; do
  if [ "$arg" = -- ]; then group=$((group + 1)); continue; fi
  case "$arg" in *.a|*.lo) ;; *) continue ;; esac  # the archives, not the .so's
  case $group in 1) prod+=("$arg") ;; 2) testing+=("$arg") ;; 3) writer+=("$arg") ;; esac
done
[ ${#prod[@]} -eq 1 ] && [ ${#testing[@]} -eq 1 ] && [ ${#writer[@]} -eq 1 ] || {
  echo "FAIL: expected one archive per group: ${prod[*]} / ${testing[*]} / ${writer[*]}"; exit 1; }

# Defined genid symbols, demangled.
defined() { nm -C --defined-only "$@" 2>/dev/null | grep -E ' [A-Za-z] ' | grep 'snapsafe::genid::' || true; }

fail=0
# Any snapsafe seam, genid's or rng's (rng/internal's are SNAPSAFE_TESTING-only too).
seams_so=$(nm -DC --defined-only "$so" | grep 'snapsafe::.*_for_testing' || true)
if [ -n "$seams_so" ]; then echo "FAIL: $so exports test seams:"; echo "$seams_so"; fail=1; fi
writer_so=$(nm -DC --defined-only "$so" | grep -E 'snapsafe::genid::counter_file_(create|bump|set|read)\(' || true)
if [ -n "$writer_so" ]; then echo "FAIL: $so holds the counter-file writer:"; echo "$writer_so"; fail=1; fi
seams_prod=$(defined "${prod[0]}" | grep '_for_testing' || true)
if [ -n "$seams_prod" ]; then echo "FAIL: ${prod[0]} defines test seams:"; echo "$seams_prod"; fail=1; fi

# Negative control: every seam is there in the testing twins.
testing_symbols=$(defined "${testing[0]}")
writer_symbols=$(defined "${writer[0]}")
so_symbols=$(nm -DC --defined-only "$so")
for seam in reinit_for_testing g_vmclock_between_loads_for_testing \
            sysgenid_descriptor_for_testing sysgenid_accept_regular_file_for_testing \
            sysgenid_trust_check_for_testing sysgenid_saturation_check_for_testing \
            counter_file_sigbus_guard_for_testing \
            counter_file_reinstall_sigbus_handler_for_testing \
            counter_file_check_interval_for_testing; do
  grep -q "genid::$seam" <<<"$testing_symbols" ||
    { echo "FAIL: negative control: ${testing[0]} lacks $seam"; fail=1; }
done
grep -q 'genid::counter_file_fresh_generation_for_testing' <<<"$writer_symbols" ||
  { echo "FAIL: negative control: ${writer[0]} lacks counter_file_fresh_generation_for_testing"; fail=1; }
grep -q 'snapsafe::genid::open_counter_file' <<<"$so_symbols" ||
  { echo "FAIL: control: $so does not export genid at all (nm cannot see it?)"; fail=1; }
[ $fail -eq 0 ] && echo "PASS: no genid test seam and no counter-file writer in $so or ${prod[0]}"
exit $fail
