#!/usr/bin/env bash
# Measures segd at scale on loopback: generates a population with `segd bench gen`, loads it
# through the admin API with `segd import` (durable, as a user would), restarts the server
# and reports the import rate, the time to rebuild the index from Badger, and the memory the
# index takes per profile and per membership. Bounded: every wait has a limit, and the
# server is stopped whatever happens.
#
# Usage: bench/scale.sh [path to segd]
#   PROFILES     profiles to generate (default 10000000)
#   MEMBERSHIPS  memberships in all (default 20 per profile)
#   SEGMENTS     segments (default 200)
#   WORK         folder for the population and the data (default a new one under /tmp);
#                10 million profiles with 20 memberships each take about 8 GB there
#   KEEP=1       keep WORK afterwards
set -euo pipefail

bin=${1:-bin/segd}
case $bin in */*) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;; esac
profiles=${PROFILES:-10000000}
memberships=${MEMBERSHIPS:-$((profiles * 20))}
segs=${SEGMENTS:-200}
work=${WORK:-$(mktemp -d /tmp/segd-scale.XXXXXX)}
bid=127.0.0.1:18480
admin=127.0.0.1:18481
pid=

stop() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 300); do # 60s for the graceful shutdown
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
cleanup() {
	stop
	[ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

# get prints the body of an admin GET over bash's /dev/tcp, so no curl is needed here.
get() {
	{ exec 3<>"/dev/tcp/${admin%:*}/${admin##*:}"; } 2>/dev/null || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$admin" >&3
	sed '1,/^\r$/d' <&3
	exec 3<&- 3>&-
}

# serve starts segd on the work folder and waits, up to 10 minutes, until it is ready.
serve() {
	SEGD_ID_SECRET=segd-scale-bench-secret-0123456789 "$bin" serve \
		--data-dir "$work/data" --bid-addr "$bid" --admin-addr "$admin" \
		--log-level info >>"$work/serve.log" 2>&1 &
	pid=$!
	for _ in $(seq 3000); do
		kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
		[ "$(get /readyz 2>/dev/null)" = ready ] && return 0
		sleep 0.2
	done
	echo "segd was not ready after 10 minutes" >&2
	exit 1
}

# metric prints the value of one /metrics sample.
metric() { get /metrics | awk -v m="$1" '$1 == m {print $2}'; }

now() { date +%s.%N; }

echo "generating $profiles profiles, $memberships memberships, $segs segments in $work"
t0=$(now)
"$bin" bench gen --profiles "$profiles" --memberships "$memberships" --segments "$segs" \
	--out "$work/pop" >/dev/null
echo "  generated in $(echo "$(now) - $t0" | bc) s"

serve
get '/debug/pprof/heap?gc=1' >/dev/null # a GC, so the live heap is measured now
base=$(metric segd_go_heap_live_bytes)
t0=$(now)
SEGD=$bin ADMIN="http://$admin" sh "$work/pop/load.sh" >"$work/load.log" 2>&1
took=$(echo "$(now) - $t0" | bc)
echo "import: $memberships memberships in $took s: $(echo "$memberships / $took" | bc) memberships/s (segd import over HTTP, durable)"
stop

t0=$(now)
serve
ready=$(echo "$(now) - $t0" | bc)
loaded=$(grep '"index loaded"' "$work/serve.log" | tail -1)
echo "rebuild: ready $ready s after start; $(echo "$loaded" | grep -o '"profiles":[0-9]*'), $(echo "$loaded" | grep -o '"took":[^,}]*')"

get '/debug/pprof/heap?gc=1' >/dev/null # a GC, so the live heap is measured now
heap=$(metric segd_go_heap_live_bytes)
mem=$(metric segd_go_memory_bytes)
n=$(metric segd_index_profiles)
rss=$(awk '/VmRSS/ {printf "%.0f", $2 * 1024}' "/proc/$pid/status")
index=$((heap - base))
budget=$((64 * n + 4 * memberships))
echo "memory: live heap $heap B, of which $base B before the import (Badger's caches, mostly); Go total $mem B; RSS $rss B"
echo "  the index: $index B, $(echo "$index / $n" | bc) B per profile with $((memberships / n)) memberships each"
echo "  budget 64 B per profile + 4 B per membership: $budget B; index / budget = $(echo "scale=2; $index / $budget" | bc)"
echo "  data folder: $(du -sh "$work/data" | cut -f1)"
