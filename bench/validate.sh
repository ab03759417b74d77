#!/usr/bin/env bash
# Validation benchmark: refdoctor's streaming validate against the real
# floor, one SHA-256 pass over the uncompressed tar (openssl dgst -sha256,
# which uses the CPU's SHA extensions, on the tar already decompressed and
# in the page cache), in the same run on the same machine, on a ~1 GiB
# bundle of incompressible layers. Validation must also inflate the
# stream; it does so on a second goroutine, so the target is a wall time
# at most 1.2x the floor, and a peak RSS under 64 MiB. The runbook's
# by-hand check, `tar -xzOf bundle.tgz | sha256sum`, is timed too, for
# reference (coreutils' sha256sum does not use the SHA extensions). The
# same layers stored, each in a gzip member of its own as export writes
# them, are validated against the same floor (same tar stream): there a
# second reader hashes every other large layer on another core.
#
# Usage: bench/validate.sh [SIZE_MIB]   (default 1024)
# Env:   BENCH_DIR (default /tmp/refdoctor-bench), RUNS (default 3; the
#        best run of each command counts), ZSTD=1 to also time a .tar.zst.
# Large files stay in BENCH_DIR, never in the repository.
set -euo pipefail

size_mib=${1:-1024}
dir=${BENCH_DIR:-/tmp/refdoctor-bench}
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"

echo "building tools into $dir"
(cd "$root" && go build -o "$dir/" ./bench/mkbundle && go build -o "$dir/refdoctor" .)

bundle="$dir/bundle-${size_mib}m.tgz"
if [[ ! -s $bundle ]]; then
	"$dir/mkbundle" -out "$bundle.tmp" -size "$size_mib" && mv "$bundle.tmp" "$bundle"
fi
ls -l "$bundle"
# Warm the page cache so both commands read from memory, not disk.
cat "$bundle" >/dev/null

# timed CMD...: runs CMD under /usr/bin/time -v, prints "wall_seconds rss_kib".
timed() {
	local log
	log=$(mktemp)
	/usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; rm -f "$log"; return 1; }
	awk -F': ' '
		/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
		/Maximum resident set size/ { rss = $2 }
		END { printf "%.3f %d\n", s, rss }' "$log"
	rm -f "$log"
}

best() { # best LABEL CMD...: best wall time and its RSS over $runs runs
	local label=$1; shift
	local bw="" br=""
	for ((i = 1; i <= runs; i++)); do
		read -r w r < <(timed "$@")
		printf '  %-28s run %d: %6.3f s  %7d KiB\n' "$label" "$i" "$w" "$r" >&2
		if [[ -z $bw ]] || awk -v a="$w" -v b="$bw" 'BEGIN { exit !(a < b) }'; then bw=$w br=$r; fi
	done
	echo "$bw $br"
}

# The floor's input: the same tar, uncompressed, in the page cache.
raw="$dir/bundle-${size_mib}m.tar"
[[ -s $raw && $raw -nt $bundle ]] || gzip -dc "$bundle" >"$raw"
cat "$raw" >/dev/null

read -r v_wall v_rss < <(best "refdoctor bundle validate" "$dir/refdoctor" bundle validate --check-referrers --file "$bundle")
read -r f_wall f_rss < <(best "openssl dgst -sha256 (tar)" openssl dgst -sha256 "$raw")
read -r t_wall t_rss < <(best "tar -xzOf | sha256sum" sh -c "tar -xzOf '$bundle' | sha256sum")

ratio=$(awk -v a="$v_wall" -v b="$f_wall" 'BEGIN { printf "%.3f", a / b }')
tratio=$(awk -v a="$v_wall" -v b="$t_wall" 'BEGIN { printf "%.3f", a / b }')
echo
printf 'bundle:                     %s (%s MiB of layers, %s MiB as tar)\n' "$bundle" "$size_mib" "$(( $(stat -c %s "$raw") >> 20 ))"
printf 'validate:                   %6.3f s, peak RSS %6.1f MiB\n' "$v_wall" "$(awk -v k="$v_rss" 'BEGIN { print k / 1024 }')"
printf 'floor, openssl dgst -sha256 %6.3f s over the uncompressed tar\n' "$f_wall"
printf 'tar -xzOf | sha256sum:      %6.3f s\n' "$t_wall"
printf 'ratio validate/floor:       %s (target <= 1.2)\n' "$ratio"
printf 'ratio validate/tar|sha256sum: %s\n' "$tratio"

status=0
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.2) }' || { echo "FAIL: ratio $ratio > 1.2"; status=1; }
(( v_rss < 64 * 1024 )) || { echo "FAIL: validate peak RSS ${v_rss} KiB >= 64 MiB"; status=1; }

# The same layers as export writes them (stored, each in a gzip member of
# its own): the tar stream, and so the floor, is the same; validate hashes
# every other large layer on a second core (docs/bundle-format.md, 5).
sbundle="$dir/bundle-${size_mib}m-stored.tgz"
[[ -s $sbundle ]] || { "$dir/mkbundle" -stored -out "$sbundle.tmp" -size "$size_mib" && mv "$sbundle.tmp" "$sbundle"; }
cat "$sbundle" >/dev/null
read -r s_wall s_rss < <(best "validate (stored layers)" "$dir/refdoctor" bundle validate --check-referrers --file "$sbundle")
sratio=$(awk -v a="$s_wall" -v b="$f_wall" 'BEGIN { printf "%.3f", a / b }')
printf 'stored layers, as export writes them: validate %6.3f s, peak RSS %6.1f MiB
' "$s_wall" "$(awk -v k="$s_rss" 'BEGIN { print k / 1024 }')"
printf 'ratio validate (stored layers)/floor: %s (target <= 1.2)\n' "$sratio"
awk -v r="$sratio" 'BEGIN { exit !(r <= 1.2) }' || { echo "FAIL: stored-layer ratio $sratio > 1.2"; status=1; }
(( s_rss < 64 * 1024 )) || { echo "FAIL: validate peak RSS ${s_rss} KiB >= 64 MiB (stored layers)"; status=1; }

if [[ ${ZSTD:-0} == 1 ]]; then
	zbundle="$dir/bundle-${size_mib}m.tar.zst"
	[[ -s $zbundle ]] || { "$dir/mkbundle" -zstd -out "$zbundle.tmp" -size "$size_mib" && mv "$zbundle.tmp" "$zbundle"; }
	cat "$zbundle" >/dev/null
	read -r z_wall z_rss < <(best "validate (zstd)" "$dir/refdoctor" bundle validate --check-referrers --file "$zbundle")
	read -r zt_wall zt_rss < <(best "tar --zstd -xOf | sha256sum" sh -c "tar --zstd -xOf '$zbundle' | sha256sum")
	printf 'zstd validate:          %6.3f s, peak RSS %6.1f MiB; tar --zstd | sha256sum %6.3f s (ratio %s)\n' \
		"$z_wall" "$(awk -v k="$z_rss" 'BEGIN { print k / 1024 }')" "$zt_wall" \
		"$(awk -v a="$z_wall" -v b="$zt_wall" 'BEGIN { printf "%.3f", a / b }')"
fi
exit $status
