#!/usr/bin/env bash
# Speed benchmark: refdoctor's export, import and fleet discovery against
# the reference clients of tools/go.mod (regctl, oras), in one run on this
# machine, on the same registry content:
#   - bench/big:v1, an OCI index whose linux/amd64 image holds SIZE_MIB MiB
#     of incompressible layers, with 4 referrers (3 on the index, 1 on the
#     image), in olareg with a filesystem store;
#   - bench/many, IMAGES small images with 3 referrers each.
# bench/benchreg serves both (and the fresh import targets); large data
# stays in BENCH_DIR, never in the repository.
#
# Every task runs RUNS times; in each run refdoctor and its peers run back
# to back (alternating who goes first), and the ratio is the median of the
# per-run ratios. Peak RSS comes from /usr/bin/time -v (for a loop of
# processes: the largest one).
#
#   export    refdoctor bundle export (.tgz)     vs regctl image copy --referrers -> OCI layout
#                                                   (oras copy -r --to-oci-layout: information)
#   import    refdoctor bundle import (.tgz,     vs regctl image copy --referrers registry -> registry
#             validation included)                  into a fresh olareg, and into a fresh
#                                                   docker-registry when it is installed
#   discover  IMAGES images in one refdoctor     vs a regctl artifact list loop
#             discover process                      (oras discover loop: information)
#   validate  bench/validate.sh: refdoctor bundle validate vs one SHA-256
#             pass over the uncompressed tar (openssl), its best runs, on a
#             bundle of one gzip member and on the same layers stored as
#             export writes them
#
# Targets: export <= 1.0 with peak RSS < 64 MiB plus the export buffers
# (mirror.ExportReadAheadBytes); import <= 1.1; discover <= 0.33;
# validate <= 1.2 with peak RSS < 64 MiB.
#
# Usage: bench/run.sh
# Env:   BENCH_DIR (default /tmp/refdoctor-bench), RUNS (default 5),
#        SIZE_MIB (default 600), IMAGES (default 200), ONLY (comma list of
#        export,import,discover,validate; default all), VALIDATE_MIB
#        (default 1024, passed to bench/validate.sh), RD_FLAGS (extra global
#        flags for every refdoctor command, e.g. "--concurrency 2").
set -euo pipefail

dir=${BENCH_DIR:-/tmp/refdoctor-bench}
runs=${RUNS:-5}
size_mib=${SIZE_MIB:-600}
images=${IMAGES:-200}
only=${ONLY:-export,import,discover,validate}
root=$(cd "$(dirname "$0")/.." && pwd)
want() { [[ ,$only, == *,$1,* ]]; }

# What refdoctor's export may hold in buffers for blob and output bytes
# (mirror.ExportReadAheadBytes), on top of the 64 MiB target.
readahead_mib=${READAHEAD_MIB:-64}

mkdir -p "$dir"
work="$dir/run.$$"
mkdir -p "$work"
pids=()
jq_host() { sed -n 's/.*"host":"\([^"]*\)".*/\1/p' "$1"; }
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "building refdoctor and bench/benchreg into $dir" >&2
(cd "$root" && go build -o "$dir/" ./bench/benchreg && go build -o "$dir/refdoctor" .)
regctl=$(cd "$root" && go tool -modfile=tools/go.mod -n regctl)
oras=$(cd "$root" && go tool -modfile=tools/go.mod -n oras)
# refdoctor's capability cache stays inside the run.
mkdir -p "$work/cache"
rd="env XDG_CACHE_HOME=$work/cache $dir/refdoctor ${RD_FLAGS:-}"

# start_reg MODE DIR [FLAGS...]: starts bench/benchreg in the background and
# sets reg_host once the registry serves (DIR/info.json has the details).
start_reg() {
	local mode=$1 d=$2; shift 2
	mkdir -p "$d"
	"$dir/benchreg" "$mode" -dir "$d" -info "$d/info.json" "$@" >"$d/log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	echo "$pid" >"$d/pid"
	for ((t = 0; t < 1200; t++)); do
		[[ -s $d/info.json ]] && { reg_host=$(jq_host "$d/info.json"); return 0; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$d/log" >&2
	echo "benchreg $mode did not start" >&2
	return 1
}
stop_reg() { # stop_reg DIR: stops the registry started in DIR and removes DIR
	local pid
	pid=$(cat "$1/pid")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$1"
}

# timed CMD...: runs CMD under /usr/bin/time -v, prints "wall_seconds rss_kib".
timed() {
	local log
	log=$(mktemp)
	/usr/bin/time -v "$@" >"$log.out" 2>"$log" || { cat "$log.out" "$log" >&2; rm -f "$log" "$log.out"; return 1; }
	awk -F': ' '
		/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
		/Maximum resident set size/ { rss = $2 }
		END { printf "%.3f %d\n", s, rss }' "$log"
	rm -f "$log" "$log.out"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# Results: one line per measured command, "task|tool|wall|rss".
results="$work/results"
: >"$results"
record() { echo "$1|$2|$3|$4" >>"$results"; printf '  %-10s %-34s %7.3f s %8.1f MiB\n' "$1" "$2" "$3" "$(mib "$4")" >&2; }

# run_set TASK RUN: runs the commands of the array cmds ("label|command")
# in an order rotated by RUN, recording each.
run_set() {
	local task=$1 i=$2 n=${#cmds[@]} k j label cmd w r
	for ((k = 0; k < n; k++)); do
		j=$(((k + i) % n))
		label=${cmds[j]%%|*}
		cmd=${cmds[j]#*|}
		read -r w r < <(timed sh -c "$cmd")
		record "$task" "$label" "$w" "$r"
	done
}

if want export || want import || want discover; then
	echo "seeding the source registry ($size_mib MiB image, $images small images)" >&2
	start_reg source "$work/source" -size "$size_mib" -images "$images"
	src=$reg_host
	image="$src/bench/big:v1"
	echo "source: $src" >&2
fi

summary=()
status=0
check() { # check NAME VALUE TARGET
	if le "$2" "$3"; then summary+=("$(printf '%-26s %6s  target <= %-5s ok' "$1" "$2" "$3")")
	else summary+=("$(printf '%-26s %6s  target <= %-5s MISSED' "$1" "$2" "$3")"); status=1; fi
}
rows=() # table rows
row() { rows+=("$(printf '%-22s %8s %9s   %-36s %8s %9s %7s' "$@")"); }

task_stats() { # task_stats TASK TOOL: "median_wall max_rss"
	local ws rs
	ws=$(awk -F'|' -v t="$1" -v l="$2" '$1 == t && $2 == l { print $3 }' "$results")
	rs=$(awk -F'|' -v t="$1" -v l="$2" '$1 == t && $2 == l { if ($4 > m) m = $4 } END { print m + 0 }' "$results")
	# shellcheck disable=SC2086
	echo "$(median $ws) $rs"
}
pair_ratio() { # pair_ratio TASK A B: median over runs of wall(A)/wall(B)
	local a b rs=()
	mapfile -t a < <(awk -F'|' -v t="$1" -v l="$2" '$1 == t && $2 == l { print $3 }' "$results")
	mapfile -t b < <(awk -F'|' -v t="$1" -v l="$3" '$1 == t && $2 == l { print $3 }' "$results")
	for ((k = 0; k < ${#a[@]}; k++)); do rs+=("$(ratio "${a[k]}" "${b[k]}")"); done
	median "${rs[@]}"
}
report() { # report TASK MINE PEER: adds a table row, sets last_ratio
	local label=$1
	[[ $1 == discover ]] && label="discover $n, ${2##*(}" && label=${label%)}
	local mw mr pw pr
	read -r mw mr < <(task_stats "$1" "$2")
	read -r pw pr < <(task_stats "$1" "$3")
	last_ratio=$(pair_ratio "$1" "$2" "$3")
	row "$label" "$mw s" "$(mib "$mr")M" "$3" "$pw s" "$(mib "$pr")M" "$last_ratio"
}

if want export; then
	echo "export: $runs runs" >&2
	out="$work/export"
	cmds=(
		"refdoctor bundle export|$rd --plain-http $src bundle export --created 2026-01-01T00:00:00Z --file $out/rd.tgz $image"
		"regctl image copy --referrers|$regctl --host reg=$src,tls=disabled image copy --referrers $image ocidir://$out/regctl:v1"
		"oras copy -r --to-oci-layout|$oras copy -r --from-plain-http --to-oci-layout $image $out/oras:v1"
	)
	for ((i = 1; i <= runs; i++)); do
		rm -rf "$out" && mkdir -p "$out"
		run_set export "$i"
	done
	ls -l "$out/rd.tgz" >&2
	report export "refdoctor bundle export" "regctl image copy --referrers"
	check "export / regctl" "$last_ratio" 1.0
	report export "refdoctor bundle export" "oras copy -r --to-oci-layout"
	read -r _ rss < <(task_stats export "refdoctor bundle export")
	budget=$(((64 + readahead_mib) * 1024))
	if ((rss < budget)); then summary+=("$(printf '%-26s %6s  target < %-6s ok' "export peak RSS (MiB)" "$(mib "$rss")" "$((64 + readahead_mib))")")
	else summary+=("$(printf '%-26s %6s  target < %-6s MISSED' "export peak RSS (MiB)" "$(mib "$rss")" "$((64 + readahead_mib))")"); status=1; fi
fi

if want import; then
	bundle="$work/import.tgz"
	$rd --plain-http "$src" bundle export --created 2026-01-01T00:00:00Z --file "$bundle" "$image" >/dev/null
	cat "$bundle" >/dev/null
	targets=(olareg)
	if [[ -x /usr/bin/docker-registry ]] || command -v docker-registry >/dev/null; then targets+=(distribution); fi
	for kind in "${targets[@]}"; do
		echo "import into $kind: $runs runs" >&2
		for ((i = 1; i <= runs; i++)); do
			start_reg "$kind" "$work/t-rd" && t1=$reg_host
			start_reg "$kind" "$work/t-regctl" && t2=$reg_host
			start_reg "$kind" "$work/t-oras" && t3=$reg_host
			cmds=(
				"refdoctor bundle import|$rd --plain-http $t1 bundle import --file $bundle --to $t1"
				"regctl image copy --referrers|$regctl --host reg=$src,tls=disabled --host reg=$t2,tls=disabled image copy --referrers $image $t2/bench/big:v1"
				"oras copy -r|$oras copy -r --from-plain-http --to-plain-http $image $t3/bench/big:v1"
			)
			run_set "import-$kind" "$i"
			stop_reg "$work/t-rd"; stop_reg "$work/t-regctl"; stop_reg "$work/t-oras"
		done
		report "import-$kind" "refdoctor bundle import" "regctl image copy --referrers"
		check "import ($kind) / regctl" "$last_ratio" 1.1
		report "import-$kind" "refdoctor bundle import" "oras copy -r"
	done
fi

if want discover; then
	refs="$work/source/refs.txt"
	n=$(wc -l <"$refs")
	echo "discover: $n images, $runs runs" >&2
	# One refdoctor process for every reference when discover takes many
	# (REF... and - for stdin); one process per image otherwise.
	first2=$(head -2 "$refs" | tr '\n' ' ')
	if $rd --plain-http "$src" discover $first2 >/dev/null 2>&1; then
		mine="refdoctor discover (one process)"
		rdcmd="$rd --plain-http $src discover - <$refs"
	else
		mine="refdoctor discover (a loop)"
		rdcmd="while read -r r; do $rd --plain-http $src discover \$r; done <$refs"
	fi
	# Warm the capability cache, as any second run would find it.
	$rd --plain-http "$src" discover "$(head -1 "$refs")" >/dev/null
	cmds=(
		"$mine|$rdcmd"
		"regctl artifact list (a loop)|while read -r r; do $regctl --host reg=$src,tls=disabled artifact list \$r; done <$refs"
		"oras discover (a loop)|while read -r r; do $oras discover --plain-http \$r; done <$refs"
	)
	for ((i = 1; i <= runs; i++)); do run_set discover "$i"; done
	report discover "$mine" "regctl artifact list (a loop)"
	check "discover $n / regctl" "$last_ratio" 0.33
	report discover "$mine" "oras discover (a loop)"
fi

if want validate; then
	# bench/validate.sh measures validation against its floor, one SHA-256
	# pass over the uncompressed tar (best of RUNS runs of each).
	echo "validate: bench/validate.sh" >&2
	vlog="$work/validate.log"
	RUNS=$runs BENCH_DIR=$dir "$root/bench/validate.sh" "${VALIDATE_MIB:-1024}" >"$vlog" 2>&1 || true
	sed 's/^/  /' "$vlog" >&2
	vratio=$(sed -n 's/^ratio validate\/floor: *\([0-9.]*\).*/\1/p' "$vlog")
	vline=$(sed -n 's/^validate: *//p' "$vlog")
	if [[ -z $vratio ]]; then
		summary+=("validate: bench/validate.sh printed no ratio (see above)"); status=1
	else
		rows+=("$(printf '%-22s %-55s %7s' "validate ${VALIDATE_MIB:-1024} MiB" "$vline; floor: openssl dgst -sha256 of the tar" "$vratio")")
		check "validate / one SHA-256 pass" "$vratio" 1.2
		grep -q "FAIL: validate peak RSS" "$vlog" && { summary+=("validate peak RSS >= 64 MiB (see bench/validate.sh)"); status=1; }
	fi
	sratio=$(sed -n 's/^ratio validate (stored layers)\/floor: *\([0-9.]*\).*/\1/p' "$vlog")
	sline=$(sed -n 's/^stored layers, as export writes them: validate *//p' "$vlog")
	if [[ -n $sratio ]]; then
		rows+=("$(printf '%-22s %-55s %7s' "validate, stored" "$sline; same floor" "$sratio")")
		check "validate (stored layers) / one SHA-256 pass" "$sratio" 1.2
	fi
fi

echo
printf '%-22s %8s %9s   %-36s %8s %9s %7s\n' "task (refdoctor)" "median" "peak RSS" "peer" "median" "peak RSS" "ratio"
printf '%s\n' "${rows[@]}"
echo
echo "targets ($runs runs, $size_mib MiB image, ratio = median of per-run ratios; validate: best runs):"
printf '%s\n' "${summary[@]}"
exit $status
