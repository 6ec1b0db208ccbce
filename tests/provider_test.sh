#!/usr/bin/env bash
# The OpenSSL provider (provider/snapsafe_provider.cc), retrofitted by configuration only:
# a program that calls nothing but RAND_bytes, run with OPENSSL_CONF pointing at the
# shipped example config, uses the SNAPSAFE EVP_RAND (checked by name; negative control:
# without the config it is OpenSSL's CTR-DRBG), and its bytes come from snapsafe (the
# process maps the counter file snapsafe watches). `openssl rand` works through it too.
# Clones of such a process differ where plain OpenSSL repeats: tests/criu/run.
set -euo pipefail
module=$(realpath "$1")
program=$(realpath "$2")
example=$(realpath "$3")
counter_tool=$(realpath "$4")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

sed "s|SNAPSAFE_MODULE|$module|" "$example" >"$tmp/openssl.cnf"
grep -q "module = $module" "$tmp/openssl.cnf" || fail "the example config has no module line"

name=$(OPENSSL_CONF="$tmp/openssl.cnf" "$program" name)
[ "$name" = SNAPSAFE ] || fail "RAND_bytes served by '$name', not SNAPSAFE"
plain=$(OPENSSL_CONF=/dev/null "$program" name)
[ "$plain" != SNAPSAFE ] || fail "negative control: SNAPSAFE without the config"
echo "RAND_bytes: $name with the config, $plain without"

a=$(OPENSSL_CONF="$tmp/openssl.cnf" "$program" hex 32)
b=$(OPENSSL_CONF="$tmp/openssl.cnf" "$program" hex 32)
[[ "$a" =~ ^[0-9a-f]{64}$ ]] || fail "bad output '$a'"
[ "$a" != "$b" ] || fail "two processes returned the same bytes"
big=$(OPENSSL_CONF="$tmp/openssl.cnf" "$program" hex 200000)  # above max_request: chunked
[ "${#big}" -eq 400000 ] || fail "large request: ${#big} hex digits"
# Prediction resistance (served from the kernel path; tests/provider_generate_test.cc
# shows it is not the buffer's): the shipped module accepts such a request.
pr=$(OPENSSL_CONF="$tmp/openssl.cnf" "$program" pr-hex 32) || fail "a prediction-resistant request failed"
[[ "$pr" =~ ^[0-9a-f]{64}$ ]] && [ "$pr" != "$(printf '0%.0s' {1..64})" ] || fail "bad prediction-resistant output '$pr'"

"$counter_tool" create "$tmp/generation" >/dev/null
mapped=$(OPENSSL_CONF="$tmp/openssl.cnf" SNAPSAFE_COUNTER_FILE="$tmp/generation" "$program" maps)
[ "$mapped" = mapped ] || fail "snapsafe did not serve RAND_bytes (counter file $mapped)"
control=$(OPENSSL_CONF=/dev/null SNAPSAFE_COUNTER_FILE="$tmp/generation" "$program" maps)
[ "$control" = "not mapped" ] || fail "negative control: mapped without the provider"

if command -v openssl >/dev/null; then
  hex=$(OPENSSL_CONF="$tmp/openssl.cnf" openssl rand -hex 16)
  [[ "$hex" =~ ^[0-9a-f]{32}$ ]] || fail "openssl rand -hex 16 gave '$hex'"
  echo "openssl rand -hex 16 through the config: $hex"
fi
echo "provider: ok"
