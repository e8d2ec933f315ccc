#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, clang-14 with ASan+UBSan, in a
# build directory of their own) and runs each over its seed corpus.
#
#   tools/fuzz.sh                  every target for 600 s (a run for humans)
#   tools/fuzz.sh --time 3600 url_ssrf_fuzz   one target, an hour
#   tools/fuzz.sh --ci             every target for 25 s (tools/test.sh)
#   tools/fuzz.sh -- -jobs=2       extra arguments go to every libFuzzer run
#
# A crash, a leak, an out-of-memory, a timeout or a differential disagreement
# makes the run fail: the script goes on with the other targets, prints each
# reproducer's path and exits 1. Reproduce one with
#   <build>/fuzz/<target> <reproducer>
# Inputs that found new coverage stay in <build>/fuzz/work/<target>, so the
# next run starts from there (--ci starts afresh). docs/testing.md has more.
#
# Environment: CONVEYOR_FUZZ_BUILD_DIR (default build-fuzz/), CONVEYOR_JOBS,
# CONVEYOR_FUZZ_SECONDS (per target; overrides the defaults above).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${CONVEYOR_FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${CONVEYOR_JOBS:-$(nproc)}"
all_targets=(image_header_fuzz image_decode_fuzz chain_spec_fuzz url_ssrf_fuzz chain_builder_fuzz)

ci=0
seconds=""
targets=()
extra=()
while (($# > 0)); do
  case "$1" in
    --ci) ci=1 ;;
    --time) seconds="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
((${#targets[@]} > 0)) || targets=("${all_targets[@]}")
if [[ -z "$seconds" ]]; then
  if ((ci)); then seconds="${CONVEYOR_FUZZ_SECONDS:-25}"; else seconds="${CONVEYOR_FUZZ_SECONDS:-600}"; fi
fi

"$root/tools/setup.sh" >/dev/null
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

# -O1 and line tables only: fast enough to fuzz, readable stacks, cheaper to
# compile than RelWithDebInfo's -O2 -g.
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCONVEYOR_FUZZ=ON -DCONVEYOR_BUILD_TESTS=ON -DCONVEYOR_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target conveyor_fuzz

# Sanitizer reports end the process (the build has -fno-sanitize-recover=all);
# libFuzzer turns that, a leak at the end of an input, or a limit into a
# non-zero exit and an artifact file.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# Per-target limits. image_decode_fuzz decodes at most 4 MP (its kMaxPixels):
# no single allocation needs more than 64 MB, and a decoder allocating for a
# bigger image than the header check allowed is an out-of-memory finding.
limits_for() {
  case "$1" in
    image_decode_fuzz) echo "-malloc_limit_mb=64 -rss_limit_mb=1536 -timeout=10" ;;
    *) echo "-rss_limit_mb=1536 -timeout=10" ;;
  esac
}

# CI: a fixed seed, so a red run replays the same mutations (more or fewer of
# them with the machine's speed). By hand: a new seed each run.
seed=()
((ci)) && seed=(-seed="${CONVEYOR_FUZZ_SEED:-1}")

failed=()
for target in "${targets[@]}"; do
  binary="$build/fuzz/$target"
  [[ -x "$binary" ]] || { echo "fuzz.sh: no target $target" >&2; exit 2; }
  work="$build/fuzz/work/$target"
  artifacts="$build/fuzz/artifacts/$target"
  ((ci)) && rm -rf "$work" "$artifacts"
  mkdir -p "$work" "$artifacts"
  corpora=("$work" "$root/tests/fuzz/corpus/$target")
  [[ "$target" == image_* ]] && corpora+=("$build/fuzz/seeds/images")
  # Dictionaries of markers, chunk and field names (tests/fuzz/*.dict).
  dict_file="$root/tests/fuzz/$target.dict"
  [[ "$target" == image_* ]] && dict_file="$root/tests/fuzz/image.dict"
  dict=()
  [[ -f "$dict_file" ]] && dict=(-dict="$dict_file")
  log="$build/fuzz/$target.log"
  echo "fuzz.sh: $target for ${seconds}s (log $log)"
  # shellcheck disable=SC2046  # limits_for's words are separate flags
  if "$binary" -max_total_time="$seconds" $(limits_for "$target") -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${seed[@]}" "${dict[@]}" "${extra[@]}" "${corpora[@]}" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|peak_rss_mb):' "$log" | tr '\n' ' ' || true
    echo
  else
    echo "fuzz.sh: $target FAILED; the end of its log:" >&2
    tail -n 40 "$log" >&2
    for reproducer in "$artifacts"/*; do
      [[ -e "$reproducer" ]] && echo "fuzz.sh: reproducer $reproducer (run: $binary $reproducer)" >&2
    done
    failed+=("$target")
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ok (${targets[*]})"
