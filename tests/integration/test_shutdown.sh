#!/bin/bash
# The server stopped in the middle of a FedAvg round: it exits 0 and frees the run, also when
# the run was aborted and one site, stopped (SIGSTOP), still owes it a reply. In the ASan build
# LeakSanitizer is the judge: before the run was freed at shutdown it reported ~42 KB (the run,
# its parts, bundle and aggregator) in the abort case.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=6 CFL_LOGIN_TIMEOUT_S=5
export CFL_DATA_DIR="$CFL_SRC/data"
case "${CFL_BUILD:-}" in
*asan*) EPOCHS=5 ;;
*) EPOCHS=60 ;;
esac

project_yml sd.yml sd mtls "site-1 site-2 site-3" "$PROJECT_ADMIN"
provision_or_exit sd.yml localhost
mkdir -p job && cp "$CFL_SRC/examples/jobs/fedavg-digits/meta.json" job/
cat >job/config.json <<JSON
{"workflow": {"name": "fedavg", "num_rounds": 50, "min_clients": 2, "round_timeout_s": 300},
 "executor": {"type": "builtin", "dataset": "digits", "arch": "mlp", "hidden": 128,
              "lr": 0.05, "epochs": $EPOCHS, "batch": 16, "seed": 1, "alpha": 0},
 "sites": ["@ALL"]}
JSON

# One scenario: a server and three sites, a job in round 2, then $1: "stop" (SIGTERM only) or
# "abort-stuck" (site-3 stopped, abort_job, SIGTERM). Not `log`: start_bg sets that name.
scenario() {
	local mode=$1 slog="$T/server-$1.log" id s
	declare -A site
	start_server "$slog" "$P/localhost" || return
	local spid=$LAST_PID port=$FED_PORT
	for s in site-1 site-2 site-3; do
		start_bg "$T/$mode-$s.log" "$CFL_BIN" client "$P/$s" --server ":$port"
		site[$s]=$LAST_PID
	done
	for s in site-1 site-2 site-3; do
		check "$mode: $s logs in" wait_log "$T/$mode-$s.log" "logged in" 20
	done
	id=$(timeout 60 "$CFL_BIN" admin "$P/admin@test.org" --server ":$port" \
		--cmd "submit_job $T/job" --json | sed -n 's/.*"job_id":"\([^"]*\)".*/\1/p')
	check "$mode: the job is accepted ($id)" test -n "$id"
	check "$mode: the job reaches round 2" wait_log "$slog" "job $id round 2/50" 120
	if [ "$mode" = abort-stuck ]; then
		kill -STOP "${site[site-3]}"
		out=$(timeout 30 "$CFL_BIN" admin "$P/admin@test.org" --server ":$port" \
			--cmd "abort_job $id" --json)
		check "$mode: abort_job while site-3 still owes a reply: $out" \
			test "$out" = "{\"aborted\":\"$id\"}"
	fi
	stop_check "$mode: the server" "$spid"
	[ "$mode" = abort-stuck ] && kill -CONT "${site[site-3]}"
	for s in site-1 site-2 site-3; do
		stop_check "$mode: $s" "${site[$s]}"
		# A site that did not stop cleanly: show why (a sanitizer report ends its log).
		[ "$STOP_RC" -eq 0 ] || tail -n 40 "$T/$mode-$s.log" | sed "s/^/  $s | /"
	done
	bad=$(grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$slog" "$T/$mode"-site-*.log |
		head -n 1)
	check "$mode: no sanitizer report from the server or a site (${bad:-none})" test -z "$bad"
}

scenario stop
scenario abort-stuck
finish
