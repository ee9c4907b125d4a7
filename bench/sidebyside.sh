#!/usr/bin/env bash
# Throughput of /openrtb2/enrich beside a fasthttp echo of the same body, measured with wrk
# in alternating pairs so that both see the same machine, and the median ratio printed.
# segd serves the demo data; the echo is `segd bench echo`, a process of its own. Both
# listen on loopback only, every run is bounded, and both servers are stopped at the end.
#
# Usage: bench/sidebyside.sh [path to segd]
#   PAIRS  alternating pairs of runs (default 5)
#   DUR    length of each run (default 5s)
#   CONNS  wrk connections (default 32)
#   BODY   the request (default testdata/requests/bench-2k.json)
set -euo pipefail

bin=${1:-bin/segd}
pairs=${PAIRS:-5}
dur=${DUR:-5s}
conns=${CONNS:-32}
export BODY=${BODY:-testdata/requests/bench-2k.json}
bid=127.0.0.1:18580
admin=127.0.0.1:18581
echo_addr=127.0.0.1:18590
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$bin" serve --demo --data-dir "$tmp/data" --bid-addr "$bid" --admin-addr "$admin" \
	--log-level warn >"$tmp/serve.log" 2>&1 &
pids+=($!)
"$bin" bench echo --addr "$echo_addr" >"$tmp/echo.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do # 60s at most
	curl -sf "http://$admin/readyz" >/dev/null && break
	sleep 0.2
done
curl -sf "http://$admin/readyz" >/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }

rate() { # rate URL DURATION: wrk's requests per second
	wrk -t1 -c"$conns" -d"$2" -s bench/wrk-post.lua "$1" | awk '/Requests\/sec/ {print $2}'
}
target="http://$bid/openrtb2/enrich"
baseline="http://$echo_addr/"
rate "$baseline" 2s >/dev/null # warm both up
rate "$target" 2s >/dev/null

ratios=()
for i in $(seq "$pairs"); do
	e=$(rate "$baseline" "$dur")
	s=$(rate "$target" "$dur")
	r=$(echo "scale=3; $s / $e" | bc)
	ratios+=("$r")
	printf 'pair %d: echo %.0f req/s, segd %.0f req/s, ratio %s\n' "$i" "$e" "$s" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median ratio segd/echo: $median over $pairs pairs"
enriched=$(curl -s "http://$admin/metrics" |
	awk '$1 == "segd_requests_total{endpoint=\"enrich\",outcome=\"enriched\"}" {print $2}')
echo "requests enriched: $enriched"
