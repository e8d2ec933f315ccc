#!/usr/bin/env bash
# Compares the resize stage with libvips's vipsthumbnail (shrink-on-load
# thumbnailer) on the same inputs as conveyor-image-bench: 800 px wide.
#
#   tools/bench/vips_compare.sh <build-dir> [runs]
#
# Needs Debian's libvips-tools (optional; not installed by tools/setup.sh).
# vipsthumbnail is a separate process, so its wall time includes start-up:
# the script also times it on a 64x64 JPEG and reports the difference, an
# estimate of the in-process time. Medians of `runs` (default 11) runs.
set -euo pipefail

build="${1:?usage: $0 <build-dir> [runs]}"
runs="${2:-11}"
bench="$build/bin/conveyor-image-bench"
command -v vipsthumbnail >/dev/null || { echo "vipsthumbnail missing: apt-get install libvips-tools" >&2; exit 2; }

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$bench" --write-inputs "$dir"
# A 64x64 JPEG for the start-up baseline: the smallest input, reduced.
vipsthumbnail "$dir/2mp.jpg" --size 64x64 -o "$dir/tiny.jpg[Q=85]"

# "<wall> <cpu>": medians in ms over $runs runs of "$@" (cpu = user + sys of
# the child, all its threads).
measure() {
  python3 - "$runs" "$@" <<'PY'
import resource, statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
walls, cpus = [], []
for _ in range(runs):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    walls.append((time.perf_counter() - start) * 1000)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpus.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
print(f"{statistics.median(walls):.1f} {statistics.median(cpus):.1f}")
PY
}

read -r base_wall base_cpu < <(measure vipsthumbnail "$dir/tiny.jpg" --size 32x -o "$dir/tiny_out.jpg[Q=85]")
echo "vipsthumbnail start-up baseline (64x64 -> 32 wide): wall ${base_wall} ms, cpu ${base_cpu} ms"
for name in 2mp 12mp 24mp storm; do
  read -r wall cpu < <(measure vipsthumbnail "$dir/$name.jpg" --size 800x -o "$dir/$name.vips.jpg[Q=85]")
  awk -v n="$name" -v w="$wall" -v c="$cpu" -v bw="$base_wall" -v bc="$base_cpu" 'BEGIN{
    printf "vipsthumbnail %s -> 800 wide q85: wall %.1f ms, cpu %.1f ms; minus start-up: wall %.1f ms, cpu %.1f ms\n", n, w, c, w-bw, c-bc}'

  # Lossless output for the PSNR comparison.
  vipsthumbnail "$dir/$name.jpg" --size 800x -o "$dir/$name.vips.png"
done
"$bench" --vips-dir "$dir" --benchmark_filter='^$' 2>/dev/null | grep '^vipsthumbnail'
