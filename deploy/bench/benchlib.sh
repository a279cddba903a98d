# shellcheck shell=bash
# Shell pieces the deploy/bench commands share (sourced, never run): logging, tools, the release
# build, a dedicated stack torn down on exit, pgbench and wrk runs whose every answer is checked,
# and the CPU each process used per phase.
#
# The command sets HERE (deploy/bench) and REPO before sourcing this, then, before calling
# anything here: STACK_DIR, PORT_OFFSET, RESULTS (raw outputs; results in $OUT, KEY=value lines),
# KEEP (1: keep the database), TOKEN_TTL (the stack's ACCESS_TOKEN_TTL_SECONDS), WRK_THREADS, and
# as needed STACK_ENV (more VAR=value for deploy/local/stack), MEASURED (the stack services whose
# CPU each phase records) and SECRET_FILES (deleted on exit).

PG="$REPO/deploy/local/pg"
STACK="$REPO/deploy/local/stack"
# Resolved: a worktree may symlink another checkout's scratch directory, and clang must reach its
# module cache by one path only (it refuses a module it finds under two).
SCRATCH=$(realpath -m "$REPO/.build-release")
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
STACK_ENV=()
MEASURED=()
SECRET_FILES=()
declare -A PIDS=()

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The command's header comment, as its --help.
print_help() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# require_whole NAME...: each $NAME (set from BENCH_NAME) must be a positive whole number.
require_whole() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[1-9][0-9]{0,8}$ ]] || die "BENCH_$v must be a positive whole number, got '${!v}'"
    done
}

# --- tools ----------------------------------------------------------------------------------

# apt_install PACKAGE...: as root, or through sudo.
apt_install() {
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || die "missing $*; install them as root"
        sudo=(sudo)
    fi
    log "installing $*"
    timeout 600 "${sudo[@]}" apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 900 "${sudo[@]}" apt-get install -y -q --no-install-recommends \
        "$@" >/dev/null || die "apt-get install $* failed"
}

# ensure_tools COMMAND...: swift, and each COMMAND (wrk, curl, python3, go), installing what is
# missing, and PostgreSQL as the stack needs it; sets PGBIN (with pgbench and psql).
ensure_tools() {
    local missing=() cmd
    command -v swift >/dev/null || die "swift not found (a Swift 6.2+ toolchain is needed)"
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null || missing+=("$([[ $cmd == go ]] && echo golang-go || echo "$cmd")")
    done
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
    "$REPO/deploy/local/install-deps" --runtime   # PostgreSQL (with pgbench), as the stack needs
    PGBIN=$("$PG" bindir) || die "PostgreSQL server binaries not found"
    [[ -x $PGBIN/pgbench && -x $PGBIN/psql ]] || die "pgbench or psql not found in $PGBIN"
}

# build PRODUCT...: release binaries in $SCRATCH, shared by every benchmark (apart from the debug
# build); sets BIN. The stack starts every service it finds built there. With BENCH_BIN set, the
# binaries already built there are used instead (e.g. another checkout's; nothing is built).
build() {
    local product start=$SECONDS
    if [[ -n ${BENCH_BIN:-} ]]; then
        BIN=$(realpath "$BENCH_BIN") || die "BENCH_BIN=$BENCH_BIN does not exist"
        for product in "$@"; do
            [[ -x $BIN/$product ]] || die "BENCH_BIN: $product missing in $BIN"
        done
        log "using the binaries in $BIN (BENCH_BIN; not building)"
        return 0
    fi
    log "building release binaries in $SCRATCH (the first release build takes a long time)"
    for product in "$@"; do
        (cd "$REPO" && swift build -c release --scratch-path "$SCRATCH" --product "$product") ||
            die "swift build -c release --product $product failed"
    done
    BIN=$(cd "$REPO" && swift build -c release --scratch-path "$SCRATCH" --show-bin-path) ||
        die "swift build --show-bin-path failed"
    for product in "$@"; do
        [[ -x $BIN/$product ]] || die "release binary $product missing in $BIN"
    done
    log "release build done in $((SECONDS - start)) s ($BIN)"
}

# build_go SOURCE OUTPUT: a Go program of deploy/bench (standard library only, GOPATH mode).
build_go() {
    (cd "$HERE" && env -u GOFLAGS -u GOROOT GO111MODULE=off GOCACHE="${GOCACHE:-$REPO/.local/go-cache}" \
        go build -o "$2" "$1") || die "building deploy/bench/$1 failed"
}

# --- stack ----------------------------------------------------------------------------------

# Access tokens live TOKEN_TTL (an hour, identity's maximum): every phase fetches its own, so none
# outlives its token.
stack() {
    env "${STACK_ENV[@]}" STACK_DIR="$STACK_DIR" PORT_OFFSET="$PORT_OFFSET" MEDLEDGER_BIN="${BIN:-}" \
        ACCESS_TOKEN_TTL_SECONDS="$TOKEN_TTL" "$STACK" "$@"
}

STACK_UP=false
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    ((${#SECRET_FILES[@]} == 0)) || rm -f "${SECRET_FILES[@]}"   # e.g. live access tokens
    if $STACK_UP || [[ -f $STACK_DIR/pg/cluster.env ]]; then
        log "tearing the bench stack down"
        stack down >>"$RESULTS/stack.log" 2>&1 || log "warning: stack down failed (see $RESULTS/stack.log)"
        if [[ $KEEP == 1 ]]; then
            log "BENCH_KEEP=1: keeping the database in $STACK_DIR/pg"
        else
            "$PG" destroy "$STACK_DIR/pg" >>"$RESULTS/stack.log" 2>&1 || log "warning: could not delete $STACK_DIR/pg"
        fi
    fi
    exit "$rc"
}

# The stack goes down however the command ends.
trap_cleanup() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# start_stack SERVICE...: a fresh stack (any old database of STACK_DIR deleted, so every run starts
# from zero), its stack.env exported; each SERVICE must run, on 127.0.0.1 (${SERVICE^^}_URL). Sets
# PIDS[name] for each of MEASURED, PG_PID, and the libpq environment of the cluster's superuser.
start_stack() {
    local name key pid missing=()
    mkdir -p "$RESULTS"
    if [[ -e $STACK_DIR/pg ]]; then
        stack down >>"$RESULTS/stack.log" 2>&1 || true
        "$PG" destroy "$STACK_DIR/pg" >>"$RESULTS/stack.log" 2>&1 || die "could not delete the old $STACK_DIR/pg"
    fi
    log "starting the bench stack ($STACK_DIR, PORT_OFFSET=$PORT_OFFSET${STACK_NOTE:+, $STACK_NOTE})"
    STACK_UP=true
    stack up --no-build >>"$RESULTS/stack.log" 2>&1 || {
        tail -n 30 "$RESULTS/stack.log" >&2
        die "stack up failed (log: $RESULTS/stack.log)"
    }
    unset STACK_SERVICES ADMIN_USER ADMIN_PASSWORD SERVICE_CLIENT_ID SERVICE_CLIENT_SECRET
    for name in "$@"; do unset "${name^^}_URL"; done
    set -a
    # shellcheck disable=SC1091  # written by deploy/local/stack
    . "$STACK_DIR/stack.env"
    set +a
    for key in ADMIN_USER ADMIN_PASSWORD SERVICE_CLIENT_ID SERVICE_CLIENT_SECRET; do
        [[ -n ${!key:-} ]] || missing+=("$key")
    done
    for name in "$@"; do
        key=${name^^}_URL
        [[ -n ${!key:-} ]] || { missing+=("$key"); continue; }
        [[ ${!key} == http://127.0.0.1:* ]] || die "unexpected $key ${!key}"
        [[ ,${STACK_SERVICES:-}, == *,$name,* ]] || die "the bench stack runs '${STACK_SERVICES:-}', not $*"
    done
    ((${#missing[@]} == 0)) || die "$STACK_DIR/stack.env lacks ${missing[*]}"
    for name in "${MEASURED[@]}"; do
        pid=$(cat "$STACK_DIR/pids/$name.pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || die "cannot find the $name process"
        PIDS[$name]=$pid
    done
    # shellcheck disable=SC1091  # written by deploy/local/pg (printf %q values)
    PG_DATA=$(. "$STACK_DIR/pg/cluster.env" && echo "$PG_DATA")
    PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
    [[ $PG_PID =~ ^[0-9]+$ ]] || die "cannot find the PostgreSQL process"

    # libpq settings for pgbench and psql (env, not argv: keeps the password out of `ps`).
    local url re='^postgres://([^:]+):([^@]+)@([^:/]+):([0-9]+)/'
    url=$("$PG" url "$STACK_DIR/pg" postgres)
    [[ $url =~ $re ]] || die "unexpected database URL from deploy/local/pg"
    export PGUSER=${BASH_REMATCH[1]} PGPASSWORD=${BASH_REMATCH[2]} PGHOST=${BASH_REMATCH[3]} PGPORT=${BASH_REMATCH[4]}
    export PGDATABASE=postgres PGCONNECT_TIMEOUT=10 PGAPPNAME=medledger-bench
}

# An access token of the stack's script client (client_credentials); the secret reaches curl on
# stdin, not argv (`ps`). Prints the token.
service_token() {
    local out code
    out=$(printf 'user = "%s:%s"\n' "$SERVICE_CLIENT_ID" "$SERVICE_CLIENT_SECRET" |
        curl -sS --max-time 10 -K - -w '\n%{http_code}' -d grant_type=client_credentials \
            "$IDENTITY_URL/auth/token" 2>&1) || die "POST $IDENTITY_URL/auth/token failed: ${out%$'\n'*}"
    code=${out##*$'\n'}
    [[ $code == 200 ]] || die "POST $IDENTITY_URL/auth/token (client $SERVICE_CLIENT_ID) answered $code: ${out%$'\n'*}"
    python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["access_token"])' <<<"${out%$'\n'*}" ||
        die "no access_token from $IDENTITY_URL/auth/token"
}

# log_errors NAME: how many lines of the stack's NAME log mention error/critical.
log_errors() {
    local n
    n=$(grep -ciE '(error|critical)' "$STACK_DIR/logs/$1.log" 2>/dev/null || true)
    echo "${n:-0}"
}

psql_bench() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# Flushes dirty buffers between phases, so no phase pays for the previous one's writes.
pg_checkpoint() { psql_bench -d postgres -c CHECKPOINT >/dev/null || log "warning: CHECKPOINT failed"; }

# --- results --------------------------------------------------------------------------------

put() { printf '%s=%s\n' "$1" "$2" >>"$OUT"; }

# json_field JSON KEY: one member of a JSON object ("" when absent).
json_field() {
    python3 -c 'import json, sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}

# What every table's header names: when, on what, from which revision.
put_run_info() {
    put date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    put machine "$NPROC cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(free -g | awk '/^Mem:/ {print $2}') GB RAM"
    put nproc "$NPROC"
    put postgres "$("$PGBIN/postgres" --version | sed 's/^postgres (PostgreSQL) //')"
    put build "$([[ -n ${BENCH_BIN:-} ]] && echo "binaries of $BIN" || echo "release build")"
    put revision "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo none)$(cd "$REPO" && [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]] && echo ' (uncommitted changes)')"
}

# --- memory ---------------------------------------------------------------------------------

# put_memory: each stack service's resident memory now and its peak over the run (VmRSS, VmHWM,
# KiB) as mem_NAME=rss,peak. Called after the last phase, so the peak is the size under load.
put_memory() {
    local file name status
    for file in "$STACK_DIR"/pids/*.pid; do
        name=$(basename "$file" .pid)
        status=$(cat "/proc/$(cat "$file")/status" 2>/dev/null) || { log "warning: the $name process is gone"; continue; }
        put "mem_$name" "$(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r "," h }' <<<"$status")"
    done
}

# --- measuring CPU per phase ----------------------------------------------------------------

# Fields of /proc/PID/stat after "pid (comm) ": [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
# Sets the array STAT; no forks, so sampling every process stays cheap.
read_stat() {
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    read -ra STAT <<<"${line##*) }"
}

proc_ticks() {
    read_stat "$1" || { echo 0; return; }
    echo $((STAT[11] + STAT[12]))
}

# The postmaster, its exited children (cutime/cstime) and its live backends. A backend reaped
# while the children are being read would be missed or counted twice, so retry until the
# postmaster's own counters did not change meanwhile.
pg_ticks() {
    local before after live p
    for _ in 1 2 3 4 5; do
        read_stat "$PG_PID" || { echo 0; return; }
        before=$((STAT[11] + STAT[12] + STAT[13] + STAT[14]))
        live=0
        for p in /proc/[0-9]*; do
            read_stat "${p#/proc/}" || continue
            ((STAT[1] == PG_PID)) && live=$((live + STAT[11] + STAT[12]))
        done
        read_stat "$PG_PID" || { echo 0; return; }
        after=$((STAT[11] + STAT[12] + STAT[13] + STAT[14]))
        ((before == after)) && break
    done
    echo $((after + live))
}

machine_ticks() {
    local user nice system idle iowait irq softirq steal rest
    read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

phase_begin() {
    local name
    PHASE_S0=()
    for name in "${MEASURED[@]}"; do PHASE_S0+=("$(proc_ticks "${PIDS[$name]}")"); done
    PHASE_P0=$(pg_ticks)
    read -r PHASE_MB0 PHASE_MT0 < <(machine_ticks)
    PHASE_T0=$EPOCHREALTIME
}

# phase_end NAME CLIENT_CPU_SECONDS: records wall time and the cores each part used, as
# cpu_NAME=wall:…,<each of MEASURED>:…,postgres:…,client:…,machine:… (benchlib.py reads it).
phase_end() {
    local name=$1 client=$2 t1 p1 mb1 mt1 i services=()
    t1=$EPOCHREALTIME
    for i in "${!MEASURED[@]}"; do
        services+=("${MEASURED[i]}=$(($(proc_ticks "${PIDS[${MEASURED[i]}]}") - PHASE_S0[i]))")
    done
    p1=$(pg_ticks)
    read -r mb1 mt1 < <(machine_ticks)
    python3 - "$name" "$PHASE_T0" "$t1" "$((p1 - PHASE_P0))" "$client" "$((mb1 - PHASE_MB0))" "$((mt1 - PHASE_MT0))" \
        "$CLK_TCK" "$NPROC" "${services[@]}" >>"$OUT" <<'EOF'
import sys
name, t0, t1, pg, client, mb, mt, hz, ncpu, *services = sys.argv[1:]
wall = float(t1) - float(t0)
cores = lambda seconds: seconds / wall if wall > 0 else 0
machine = int(mb) / int(mt) * int(ncpu) if int(mt) > 0 else 0
parts = [f"wall:{wall:.2f}"] + [f"{s}:{cores(int(t) / float(hz)):.3f}" for s, t in (x.split("=", 1) for x in services)]
parts += [f"postgres:{cores(int(pg) / float(hz)):.3f}", f"client:{cores(float(client)):.3f}", f"machine:{machine:.3f}"]
print(f"cpu_{name}=" + ",".join(parts))
EOF
}

# Other work on the machine skews every number; measure how busy it is before starting.
idle_check() {
    local b0 t0 b1 t1 busy
    read -r b0 t0 < <(machine_ticks)
    sleep 3
    read -r b1 t1 < <(machine_ticks)
    busy=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v n="$NPROC" 'BEGIN { printf "%.2f", (t > 0 ? b / t * n : 0) }')
    put busy_before "$busy"
    put load_before "$(cut -d ' ' -f 1-3 /proc/loadavg)"
    if awk -v b="$busy" 'BEGIN { exit !(b > 0.25) }'; then
        log "warning: the machine is busy before the benchmark starts ($busy cores in use); results will be skewed"
    fi
}

# run_client NAME CMD...: runs a load client as phase NAME, output in $RESULTS/NAME.out/.err;
# records the CPU of each part (the client's own from `times` in a subshell); sets CLIENT_RC.
run_client() {
    local name=$1 line cpu
    shift
    CLIENT_RC=0
    phase_begin
    (
        rc=0
        "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" || rc=$?
        times >"$RESULTS/$name.times"
        exit "$rc"
    ) || CLIENT_RC=$?
    line=$(sed -n 2p "$RESULTS/$name.times")
    cpu=$(awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); n += a[1] * 60 + a[2] } print n }' <<<"$line")
    phase_end "$name" "$cpu"
}

# --- load clients ---------------------------------------------------------------------------

# The failed requests in the JSON line of a wrk script's done(): socket errors, timeouts and
# answers with an unexpected status or body.
wrk_errors() {
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(sum(v for k, v in d.items() if k == "unexpected" or k.startswith("errors_")))' "$1"
}

# wrk_run NAME ARGS...: the BENCH line of the Lua done() hook into NAME_json; NAME_ok is 1 only
# when every answer was the expected one.
wrk_run() {
    local name=$1 json
    shift
    run_client "$name" wrk "$@"
    json=$(sed -n 's/^BENCH //p' "$RESULTS/$name.out")
    if ((CLIENT_RC != 0)) || [[ -z $json ]]; then
        log "warning: wrk $name failed (see $RESULTS/$name.out, $RESULTS/$name.err)"
        head -n 5 "$RESULTS/$name.err" >&2
        put "${name}_ok" 0
        return 0
    fi
    put "${name}_json" "$json"
    if (($(wrk_errors "$json") > 0)) || [[ $(json_field "$json" ok) == 0 ]]; then
        log "warning: wrk $name saw failed requests or unexpected answers: $json"
        put "${name}_ok" 0
    else
        put "${name}_ok" 1
    fi
}

# request_load NAME URL CONNECTIONS SECONDS TIMEOUT: one wrk run of request.lua (the request comes
# from the BENCH_* variables the caller sets); NAME=warmup-* runs are unmeasured.
request_load() {
    local name=$1 url=$2 conns=$3 seconds=$4 timeout=$5 threads=$WRK_THREADS
    ((conns < threads)) && threads=$conns
    if [[ $name == warmup-* ]]; then
        BENCH_THREADS=$threads wrk -t "$threads" -c "$conns" -d "${seconds}s" --timeout "${timeout}s" -s "$HERE/request.lua" \
            "$url" >"$RESULTS/$name.out" 2>&1 || log "warning: $name failed (see $RESULTS/$name.out)"
        return 0
    fi
    BENCH_THREADS=$threads wrk_run "$name" -t "$threads" -c "$conns" -d "${seconds}s" --timeout "${timeout}s" \
        -s "$HERE/request.lua" "$url"
    put "${name}_connections" "$conns"
}

# json_run NAME CMD...: a client printing one JSON line (loadgen, the prep helpers), exiting
# non-zero on any failed request; the line into NAME_json.
json_run() {
    local name=$1
    shift
    run_client "$name" "$@"
    if ((CLIENT_RC != 0)); then
        log "warning: $name reported errors (see $RESULTS/$name.err):"
        head -n 3 "$RESULTS/$name.err" >&2
    fi
    put "${name}_json" "$(tail -n 1 "$RESULTS/$name.out")"
    put "${name}_ok" "$((CLIENT_RC == 0))"
}

# pgbench_run NAME SCRIPT CLIENTS SECONDS [ARGS...]: tps and average latency into results (in
# $PGDATABASE). pgbench's per-transaction log is not used for percentiles: it logs most
# sub-millisecond transactions as 0 µs, so only its average is trustworthy.
pgbench_run() {
    local name=$1 script=$2 clients=$3 seconds=$4 tps lat failed threads=$WRK_THREADS
    shift 4
    ((clients < threads)) && threads=$clients
    pg_checkpoint
    run_client "$name" "$PGBIN/pgbench" -n -c "$clients" -j "$threads" -T "$seconds" -f "$HERE/$script" "$@"
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$RESULTS/$name.out")
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$RESULTS/$name.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$RESULTS/$name.out")
    if ((CLIENT_RC != 0)) || [[ -z $tps || -z $lat || ${failed:-0} != 0 ]]; then
        log "warning: pgbench $name failed (see $RESULTS/$name.out, $RESULTS/$name.err)"
        cat "$RESULTS/$name.err" >&2
        return 0
    fi
    put "${name}_tps" "$tps"
    put "${name}_latency_ms" "$lat"
    put "${name}_clients" "$clients"
    put "${name}_seconds" "$seconds"
}
