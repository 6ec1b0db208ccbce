#!/usr/bin/env bash
# bazel run //:install -- PREFIX
# Lays out an installed snapsafe under PREFIX (a relative PREFIX is taken from the
# directory bazel was run in):
#   include/snapsafe/{rng,ids,capi,genid}/... headers (compile with -I PREFIX/include/snapsafe);
#                                           of rng/internal/, only what they include
#                                           (//rng/internal:installed_headers; not API)
#   lib/libsnapsafe.a, lib/libsnapsafe.so   static and shared library (link -lcrypto too
#                                           for the static one)
#   lib/pkgconfig/snapsafe.pc               pkg-config --cflags --libs snapsafe
#   lib/cmake/snapsafe/snapsafeConfig.cmake find_package(snapsafe) -> snapsafe::snapsafe
#   lib/ossl-modules/snapsafe.so            the OpenSSL provider; share/snapsafe/openssl-snapsafe.cnf
#                                           (OpenSSL 3.0+) and openssl-snapsafe-3.5.cnf (3.5+)
#   include/snapsafe/snapsafe.h             the C API (C and any FFI)
#   bin/snapsafe, bin/snapsafe_counter      the command-line tool, the counter tool
#   lib/systemd/system/snapsafe-genid-follow.service
#                                           `snapsafe genid follow` as a service (PREFIX
#                                           filled in); lib/udev/rules.d/70-snapsafe-vmclock.rules,
#                                           the alternative: /dev/vmclock0 readable by all
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bazel run //:install -- PREFIX" >&2
  exit 2
fi
prefix=$1
case "$prefix" in
  /*) ;;
  *) prefix="${BUILD_WORKSPACE_DIRECTORY:-$PWD}/$prefix" ;;
esac
runfiles="${RUNFILES_DIR:-$0.runfiles}/snapsafe"
[ -d "$runfiles" ] || runfiles="$PWD"  # bazel run's working directory is the runfiles tree

install -d "$prefix/include/snapsafe" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/snapsafe" \
  "$prefix/lib/ossl-modules" "$prefix/share/snapsafe" "$prefix/bin" \
  "$prefix/lib/systemd/system" "$prefix/lib/udev/rules.d"
# rng/internal/ holds only //rng/internal:installed_headers here (the runfiles have no
# other internal header): those the public headers include, each marked "Not API".
for dir in rng rng/internal ids capi genid; do
  install -d "$prefix/include/snapsafe/$dir"
  for header in "$runfiles/$dir"/*.h; do
    [ -e "$header" ] && install -m 0644 "$header" "$prefix/include/snapsafe/$dir/"
  done
done

# One static archive from the Bazel archives (rng, its internals and their in-page AES
# keystream, ids and its internals, capi, genid; alwayslink archives are named .lo).
archive() { if [ -e "$1.lo" ]; then echo "$1.lo"; else echo "$1.a"; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "create $tmp/libsnapsafe.a"
  echo "addlib $(archive "$runfiles/rng/librng")"
  echo "addlib $(archive "$runfiles/rng/internal/libinternal")"
  echo "addlib $(archive "$runfiles/rng/internal/libaes_ctr_in_page")"
  echo "addlib $(archive "$runfiles/ids/libids")"
  echo "addlib $(archive "$runfiles/ids/internal/libinternal")"
  echo "addlib $(archive "$runfiles/capi/libcapi")"
  echo "addlib $(archive "$runfiles/genid/libgenid")"
  echo "save"
  echo "end"
} | ar -M
install -m 0644 "$tmp/libsnapsafe.a" "$prefix/lib/libsnapsafe.a"
install -m 0755 "$runfiles/libsnapsafe.so" "$prefix/lib/libsnapsafe.so.1"
ln -sf libsnapsafe.so.1 "$prefix/lib/libsnapsafe.so"
install -m 0755 "$runfiles/provider/snapsafe.so" "$prefix/lib/ossl-modules/snapsafe.so"
for conf in openssl-snapsafe.cnf openssl-snapsafe-3.5.cnf; do
  sed "s|SNAPSAFE_MODULE|$prefix/lib/ossl-modules/snapsafe.so|" \
    "$runfiles/provider/$conf" >"$prefix/share/snapsafe/$conf"
done
install -m 0755 "$runfiles/tools/snapsafe_counter" "$prefix/bin/snapsafe_counter"
install -m 0755 "$runfiles/tools/snapsafe" "$prefix/bin/snapsafe"
install -m 0644 "$runfiles/snapsafe.h" "$prefix/include/snapsafe/snapsafe.h"
sed "s|@PREFIX@|$prefix|g" "$runfiles/packaging/snapsafe.pc.in" >"$prefix/lib/pkgconfig/snapsafe.pc"
install -m 0644 "$runfiles/packaging/snapsafeConfig.cmake.in" \
  "$prefix/lib/cmake/snapsafe/snapsafeConfig.cmake"
sed "s|@PREFIX@|$prefix|g" "$runfiles/packaging/snapsafe-genid-follow.service" \
  >"$prefix/lib/systemd/system/snapsafe-genid-follow.service"
chmod 0644 "$prefix/lib/systemd/system/snapsafe-genid-follow.service"
install -m 0644 "$runfiles/packaging/70-snapsafe-vmclock.rules" \
  "$prefix/lib/udev/rules.d/70-snapsafe-vmclock.rules"
echo "snapsafe installed under $prefix"
