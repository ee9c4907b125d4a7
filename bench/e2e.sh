#!/usr/bin/env bash
# A short, bounded end-to-end benchmark for `make bench`: serve the demo data on loopback,
# wait until it is ready, send 5s of closed-loop load with the echo baseline beside it,
# and stop the server whatever happens. Usage: bench/e2e.sh [path to segd]
# BENCH_BID_ADDR and BENCH_ADMIN_ADDR move the listeners off 127.0.0.1:8080 and :8081.
set -euo pipefail

bin=${1:-bin/segd}
bid=${BENCH_BID_ADDR:-127.0.0.1:8080}
admin=${BENCH_ADMIN_ADDR:-127.0.0.1:8081}
tmp=$(mktemp -d)
pid=

# stop ends the server: SIGTERM, up to 15s for its graceful shutdown, then SIGKILL.
stop() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 75); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap stop EXIT INT TERM

# ready asks the admin listener for /readyz over bash's /dev/tcp, so no curl is needed.
ready() {
	# The braces keep 2>/dev/null to this line: on a bare exec it would silence the script.
	{ exec 3<>"/dev/tcp/${admin%:*}/${admin##*:}"; } 2>/dev/null || return 1
	printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$admin" >&3
	local proto status
	read -r proto status _ <&3 || status=
	exec 3<&- 3>&-
	[ "$status" = 200 ]
}

# in_use reports whether something accepts connections on the address $1.
in_use() {
	{ exec 4<>"/dev/tcp/${1%:*}/${1##*:}"; } 2>/dev/null || return 1
	exec 4<&- 4>&-
}

# Another server on these ports would answer /readyz and take the load in our place.
for addr in "$bid" "$admin"; do
	if in_use "$addr"; then
		echo "$addr is already in use: stop what listens there, or set" \
			"BENCH_BID_ADDR and BENCH_ADMIN_ADDR" >&2
		exit 1
	fi
done

"$bin" serve --demo --data-dir "$tmp/data" --bid-addr "$bid" --admin-addr "$admin" \
	>"$tmp/serve.log" 2>&1 &
pid=$!

alive() { kill -0 "$pid" 2>/dev/null; }

for _ in $(seq 300); do # 60s at most
	alive && ready && break
	if ! alive; then
		echo "segd serve exited before it was ready:" >&2
		cat "$tmp/serve.log" >&2
		exit 1
	fi
	sleep 0.2
done
if ! alive || ! ready; then
	echo "segd serve was not ready after 60s:" >&2
	cat "$tmp/serve.log" >&2
	exit 1
fi

"$bin" bench run --target "http://$bid/openrtb2/enrich" --connections 32 --duration 5s \
	--corpus testdata/requests/bench-2k.json --baseline echo
