#!/usr/bin/env bash
# The README's test command (and CI's, via .ci/run): installs what is missing,
# then
#   1. builds with Ninja (and ccache) and runs every test with ctest;
#   2. builds the same tests with clang-14 + ASan/UBSan into a build directory
#      of their own and runs them again: any sanitizer report, in a test or in
#      a process it started, fails;
#   3. runs every fuzz target for a short, bounded time (tools/fuzz.sh --ci).
# Stops at the first stage that fails; exit code non-zero then.
# docs/testing.md has the details and the time budget.
#
# Environment: CONVEYOR_BUILD_DIR (build/), CONVEYOR_ASAN_BUILD_DIR
# (build-asan/), CONVEYOR_FUZZ_BUILD_DIR (build-fuzz/), CONVEYOR_JOBS;
# CONVEYOR_TEST_STAGES (default "tests asan fuzz") picks stages for a local
# run, e.g. CONVEYOR_TEST_STAGES=tests; CI runs all three.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${CONVEYOR_BUILD_DIR:-$root/build}"
asan_build="${CONVEYOR_ASAN_BUILD_DIR:-$root/build-asan}"
jobs="${CONVEYOR_JOBS:-$(nproc)}"

"$root/tools/setup.sh"

# setup.sh has installed Chromium and puppeteer-core: the browser test fails
# instead of skipping if they are missing (tests/dashboard/browser_test.js).
export CONVEYOR_REQUIRE_BROWSER=1

# ccache hits across checkouts in different folders (CI clones afresh).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

stage() { echo "=== test.sh: $* ($(date -u +%H:%M:%S))"; }
stages=" ${CONVEYOR_TEST_STAGES:-tests asan fuzz} "
wanted() { [[ "$stages" == *" $1 "* ]]; }

if wanted tests; then
  stage "1/3 build and ctest ($build)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVEYOR_BUILD_TESTS=ON
  cmake --build "$build" -j "$jobs"
  (cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 300)
fi

if wanted asan; then
  stage "2/3 ASan+UBSan build and ctest ($asan_build)"
  # Only what the tests need (no benchmarks). -O1 with line tables: readable
  # stacks, and cheaper to compile than -O2 -g.
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$asan_build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DCONVEYOR_BUILD_TESTS=ON -DCONVEYOR_BUILD_BENCHMARKS=OFF -DCONVEYOR_SANITIZE=address,undefined
  cmake --build "$asan_build" -j "$jobs"
  # Every report goes to a file of its own (log_path; <name>.<pid>), from the
  # tests and from every worker, orchestrator or CLI they start: the process
  # fixture fails the test whose child wrote one, and any report left at the
  # end fails this stage, whichever process it came from.
  reports="$asan_build/sanitizer-reports"
  rm -rf "$reports" && mkdir -p "$reports"
  export CONVEYOR_SANITIZER_REPORTS="$reports"
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$reports/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
  export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
  status=0
  (cd "$asan_build" && ctest --output-on-failure -j "$jobs" --timeout 600) || status=$?
  unset CONVEYOR_SANITIZER_REPORTS ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  if compgen -G "$reports/*" >/dev/null; then
    for report in "$reports"/*; do
      echo "--- sanitizer report $report"
      cat "$report"
    done
    echo "test.sh: sanitizer reports above (in $reports)" >&2
    ((status != 0)) || status=1
  fi
  ((status == 0)) || exit "$status"
fi

if wanted fuzz; then
  stage "3/3 fuzz targets, bounded runs"
  "$root/tools/fuzz.sh" --ci
fi
stage "passed:$stages"
