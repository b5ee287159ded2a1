#!/usr/bin/env bash
# A throwaway three-node OpenSearch cluster on this machine, for the replica and node-loss tests.
#
#   scripts/opensearch-cluster.sh start     start three nodes (download once), wait for green, print their URLs
#   scripts/opensearch-cluster.sh stop      stop every node of this cluster directory, drop its data
#   scripts/opensearch-cluster.sh kill N    SIGKILL node N (1-3): a data node lost mid-write, no goodbye
#   scripts/opensearch-cluster.sh pid N     the pid of node N (exit 3 when it is not running)
#
# The same cached distribution as scripts/opensearch.sh (sourced for its download, Java and user
# helpers). Every node is cluster-manager-eligible and a data node, so losing any one keeps a
# quorum of two. Each node has its own directory under the cluster directory (config, logs, run, tmp,
# data on tmpfs when there is room), binds 127.0.0.1 only (so no production bootstrap checks) and, as
# root, runs as $SOCLITE_OPENSEARCH_USER (nobody) like the single node.
#
# Environment: SOCLITE_OPENSEARCH_CLUSTER_DIR (default ${TMPDIR:-/tmp}/soclite-opensearch-cluster-<uid>),
# OPENSEARCH_CLUSTER_HTTP_PORT (first http port, 19201: nodes use it and the next two),
# OPENSEARCH_CLUSTER_TRANSPORT_PORT (first transport port, 19301), OPENSEARCH_CLUSTER_HEAP (320m),
# OPENSEARCH_START_TIMEOUT (seconds, 180), OPENSEARCH_VERSION as for the single node.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=opensearch.sh
source "$here/opensearch.sh"

CLUSTER_DIR="${SOCLITE_OPENSEARCH_CLUSTER_DIR:-${TMPDIR:-/tmp}/soclite-opensearch-cluster-$(id -u)}"
HTTP_BASE="${OPENSEARCH_CLUSTER_HTTP_PORT:-19201}"
TRANSPORT_BASE="${OPENSEARCH_CLUSTER_TRANSPORT_PORT:-19301}"
CLUSTER_HEAP="${OPENSEARCH_CLUSTER_HEAP:-320m}"
NODES=(1 2 3)

node_dir() { echo "$CLUSTER_DIR/node-$1"; }
node_url() { echo "http://127.0.0.1:$((HTTP_BASE + $1 - 1))"; }

node_pid() { alive_pid "$(node_dir "$1")/run/opensearch.pid" "$(node_dir "$1")/run/launcher.pid"; }  # if alive

cluster_green() {  # every node joined and every shard (primaries and replicas) assigned
    curl -sf --max-time 5 "$1/_cluster/health?wait_for_status=green&wait_for_nodes=3&timeout=4s" >/dev/null 2>&1
}

write_node_config() {  # N cluster-name
    local n="$1" dir seeds="" managers="" i
    dir="$(node_dir "$n")"
    for i in "${NODES[@]}"; do
        seeds+="${seeds:+, }\"127.0.0.1:$((TRANSPORT_BASE + i - 1))\""
        managers+="${managers:+, }\"node-$i\""
    done
    cp "$HOME_DIR/config/log4j2.properties" "$dir/config/"
    write_jvm_options "$dir" "$CLUSTER_HEAP"
    cat >"$dir/config/opensearch.yml" <<EOF
cluster.name: $2
node.name: node-$n
node.roles: [cluster_manager, data, ingest]
network.host: 127.0.0.1
http.port: $((HTTP_BASE + n - 1))
transport.port: $((TRANSPORT_BASE + n - 1))
discovery.seed_hosts: [$seeds]
cluster.initial_cluster_manager_nodes: [$managers]
EOF
    test_node_settings "$dir" >>"$dir/config/opensearch.yml"
}

launch_node() { launch_node_of "$(node_dir "$1")" "$JAVA_DIR" "$HOME_DIR"; }  # N

cluster_start() {
    local n
    for n in "${NODES[@]}"; do
        if node_pid "$n" >/dev/null; then
            die "node $n of $CLUSTER_DIR is already running (scripts/opensearch-cluster.sh stop first)"
        fi
        port_taken "$((HTTP_BASE + n - 1))" && die "http port $((HTTP_BASE + n - 1)) is in use (OPENSEARCH_CLUSTER_HTTP_PORT)"
        port_taken "$((TRANSPORT_BASE + n - 1))" && die "transport port $((TRANSPORT_BASE + n - 1)) is in use (OPENSEARCH_CLUSTER_TRANSPORT_PORT)"
    done
    ensure_tools
    JAVA_DIR="$(find_java)"
    export OPENSEARCH_JAVA_HOME="$JAVA_DIR"
    HOME_DIR="$(install_distribution)"
    mkdir -p "$CLUSTER_DIR"
    if [[ "$(id -u)" == 0 ]]; then
        id "$RUN_USER" >/dev/null 2>&1 || die "OpenSearch cannot run as root and user $RUN_USER does not exist"
        readable_home HOME_DIR "$HOME_DIR" "$CLUSTER_DIR/home"
        chmod a+rx "$CLUSTER_DIR"
    fi
    # a fresh cluster every start: the name differs too, so a stale node can never join it
    local name="soclite-cluster-$$-$RANDOM" dir
    for n in "${NODES[@]}"; do
        dir="$(node_dir "$n")"
        drop_node_data "$n"
        rm -rf "$dir" && mkdir -p "$dir/config" "$dir/logs" "$dir/tmp" "$dir/run"
        make_data_dir "$dir" 2097152 soclite-opensearch-cluster
        write_node_config "$n" "$name"
        if [[ "$(id -u)" == 0 ]]; then
            chown -R "$RUN_USER:$(id -gn "$RUN_USER")" "$dir" "$(readlink -f "$dir/data")"
        fi
    done
    local started=$SECONDS
    say "starting a three-node cluster $name (http $HTTP_BASE-$((HTTP_BASE + 2)), directory $CLUSTER_DIR)"
    for n in "${NODES[@]}"; do launch_node "$n"; done
    until cluster_green "$(node_url 1)"; do
        for n in "${NODES[@]}"; do
            if ! node_pid "$n" >/dev/null; then
                tail -n 40 "$(node_dir "$n")/logs/stdout.log" >&2 2>/dev/null || true
                cluster_stop >/dev/null 2>&1 || true
                die "node $n exited during startup (logs: $(node_dir "$n")/logs)"
            fi
        done
        if ((SECONDS - started > TIMEOUT)); then
            cluster_stop >/dev/null 2>&1 || true
            die "the cluster was not green with three nodes within ${TIMEOUT}s (logs: $CLUSTER_DIR/node-*/logs)"
        fi
        sleep 1
    done
    say "green with three nodes after $((SECONDS - started))s"
    local urls=""
    for n in "${NODES[@]}"; do urls+="${urls:+,}$(node_url "$n")"; done
    echo "$urls"
}

drop_node_data() { drop_data_dir "$(node_dir "$1")"; }

cluster_stop() {
    local n pid pids=()
    for n in "${NODES[@]}"; do
        if pid="$(node_pid "$n")"; then
            kill "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for _ in $(seq 60); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ "$alive" == 0 ]] && break
        sleep 0.5
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for n in "${NODES[@]}"; do
        drop_node_data "$n"
        rm -f "$(node_dir "$n")/run/opensearch.pid" "$(node_dir "$n")/run/launcher.pid"
    done
    say "cluster of $CLUSTER_DIR stopped (${#pids[@]} nodes were running)"
}

node_arg() {
    [[ "${1:-}" =~ ^[123]$ ]] || { echo "usage: $0 kill|pid 1|2|3" >&2; exit 2; }
}

case "${1:-}" in
    start) cluster_start ;;
    stop) cluster_stop ;;
    kill)
        node_arg "${2:-}"
        pid="$(node_pid "$2")" || die "node $2 is not running"
        kill -9 "$pid"
        say "node $2 (pid $pid) killed with SIGKILL"
        ;;
    pid)
        node_arg "${2:-}"
        node_pid "$2" || exit 3
        ;;
    *) echo "usage: $0 start|stop|kill N|pid N" >&2; exit 2 ;;
esac
