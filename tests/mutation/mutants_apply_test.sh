#!/usr/bin/env bash
# Runs from the runfiles root, where the mutated sources sit at their repository paths.
exec python3 tests/mutation/run --check
