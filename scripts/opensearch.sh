#!/usr/bin/env bash
# A throwaway single-node OpenSearch for the test suite, from Maven Central.
#
#   scripts/opensearch.sh start    download (once), start a node, wait for it, print its URL
#   scripts/opensearch.sh stop     stop the node started from this run directory
#   scripts/opensearch.sh status   print the URL of the running node (exit 3 when none)
#   scripts/opensearch.sh env      print OPENSEARCH_URL (and credentials, CA when secured) as exports
#
# The distribution is org.opensearch.distribution.integ-test-zip:opensearch (plain http, no security
# plugin, and no modules but transport-netty4), fetched with `mvn dependency:copy` into the cache
# ${XDG_CACHE_HOME:-$HOME/.cache}/soclite/opensearch/<version>, never into the repository. The
# `reindex` module (_delete_by_query, which the store's retention uses) is rebuilt there from its
# Maven Central jar, org.opensearch.plugin:reindex-client, and its dependencies.
#
# The node is disposable: data and logs live in the run directory (a fresh data directory on every
# start), single-node discovery (no bootstrap checks that need root, such as vm.max_map_count), no
# mmap, heap 512m. OpenSearch refuses to run as root: as root the node runs as
# $SOCLITE_OPENSEARCH_USER (default nobody).
#
# Environment: OPENSEARCH_VERSION (2.19.6), OPENSEARCH_PORT (9200; the next free port up to 9299 when
# 9200 is taken and no port was asked for), OPENSEARCH_HEAP (512m), OPENSEARCH_START_TIMEOUT (seconds,
# 180), SOCLITE_OPENSEARCH_KEEP_DATA (1: stop and start keep the data directory, for outage tests),
# SOCLITE_OPENSEARCH_CACHE, SOCLITE_OPENSEARCH_RUN_DIR (default
# ${TMPDIR:-/tmp}/soclite-opensearch-<uid>: one node per user unless a run directory is given).
set -euo pipefail

VERSION="${OPENSEARCH_VERSION:-2.19.6}"
HEAP="${OPENSEARCH_HEAP:-512m}"
TIMEOUT="${OPENSEARCH_START_TIMEOUT:-180}"
CACHE="${SOCLITE_OPENSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/soclite/opensearch/$VERSION}"
RUN_DIR="${SOCLITE_OPENSEARCH_RUN_DIR:-${TMPDIR:-/tmp}/soclite-opensearch-$(id -u)}"
RUN_USER="${SOCLITE_OPENSEARCH_USER:-nobody}"
# OPENSEARCH_SECURITY=1: the Security plugin with its demo certificates (https, basic auth as admin).
# Its zip must exist on Maven Central for the version: 2.19.4.0 does, 2.19.6.0 does not
# (OPENSEARCH_SECURITY=1 OPENSEARCH_VERSION=2.19.4).
SECURITY="${OPENSEARCH_SECURITY:-0}"
ADMIN_PASSWORD="Soclite-Test-9z!Q"  # a throwaway test node's; hashed into the cached demo config
PID_FILE="$RUN_DIR/run/opensearch.pid"  # written by the node (-p), in a directory its user owns
LAUNCH_FILE="$RUN_DIR/run/launcher.pid"  # $! of the launch, until the node has written its own
URL_FILE="$RUN_DIR/url"

say() { echo "opensearch: $*" >&2; }
die() { echo "opensearch: error: $*" >&2; exit 1; }

alive_pid() {  # FILE...: the first pid written in these files that is alive
    local file pid
    for file in "$@"; do
        [[ -s "$file" ]] || continue
        pid="$(cat "$file")"
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

running_pid() { alive_pid "$PID_FILE" "$LAUNCH_FILE"; }  # the pid of our node, if it is alive

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

healthy() {
    local auth=()
    if [[ -f "$RUN_DIR/secured" ]]; then
        auth=(--cacert "$RUN_DIR/config/root-ca.pem" -u "admin:$ADMIN_PASSWORD")
    fi
    curl -sf --max-time 5 "${auth[@]}" "$1/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1
}

# A fresh Debian CI machine may lack the tools: install them through the repository's apt-ensure.sh.
ensure_tools() {
    local need=()
    command -v mvn >/dev/null || need+=(maven)
    command -v unzip >/dev/null || need+=(unzip)
    command -v curl >/dev/null || need+=(curl)
    if [[ -z "${OPENSEARCH_JAVA_HOME:-${JAVA_HOME:-}}" ]] && ! command -v java >/dev/null; then
        need+=(openjdk-17-jre-headless)
    fi
    [[ ${#need[@]} -eq 0 ]] && return
    command -v dpkg-query >/dev/null || die "missing tools (Debian packages: ${need[*]}): install mvn, unzip, curl and a JDK 11-23"
    bash "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh" "${need[@]}" || die "could not install ${need[*]}"
}

find_java() {
    local java_home="${OPENSEARCH_JAVA_HOME:-${JAVA_HOME:-}}"
    if [[ -z "$java_home" ]]; then
        command -v java >/dev/null || die "java not found: install a JDK 11-21 (OpenSearch $VERSION) or set JAVA_HOME"
        java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
    fi
    [[ -x "$java_home/bin/java" ]] || die "no java at $java_home/bin/java (JAVA_HOME?)"
    local major
    major="$("$java_home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    # 2.x needs the Java security manager, which Java 24 removed.
    if [[ -z "$major" || "$major" -lt 11 || "$major" -gt 23 ]]; then
        die "OpenSearch $VERSION needs Java 11-23; $java_home is Java ${major:-unknown} (set JAVA_HOME)"
    fi
    echo "$java_home"
}

mvn_copy() {  # artifact outdir
    command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to download OpenSearch"
    mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="$1" -DoutputDirectory="$2" >&2 \
        || die "Maven could not fetch $1 (network? version?)"
}

# The reindex module, as the full distribution ships it: the client jar and its runtime dependencies,
# minus what the core lib/ already has (OpenSearch refuses duplicate classes: "jar hell").
build_reindex() {
    local home="$1" work="$CACHE/reindex-build"
    rm -rf "$work" && mkdir -p "$work/jars"
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>soclite.local</groupId><artifactId>reindex-module</artifactId><version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.opensearch.plugin</groupId><artifactId>reindex-client</artifactId><version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$work/jars" >&2 || die "Maven could not fetch org.opensearch.plugin:reindex-client:$VERSION"
    local dest="$home/modules/reindex" jar base
    mkdir -p "$dest"
    for jar in "$work/jars"/*.jar; do
        base="$(basename "$jar" | sed 's/-[0-9][0-9.]*[^/]*\.jar$//')"
        compgen -G "$home/lib/$base-[0-9]*.jar" >/dev/null || cp "$jar" "$dest/"
    done
    cat >"$dest/plugin-descriptor.properties" <<EOF
description=The Reindex module adds APIs to reindex from one index to another or update documents matched by a query.
version=$VERSION
name=reindex
classname=org.opensearch.index.reindex.ReindexPlugin
java.version=11
opensearch.version=$VERSION
extended.plugins=
has.native.controller=false
EOF
    printf 'grant {\n  permission java.net.SocketPermission "*", "connect";\n};\n' >"$dest/plugin-security.policy"
    rm -rf "$work"
}

install_distribution() {  # -> prints the OpenSearch home in the cache
    local home="$CACHE/opensearch-$VERSION" zip="$CACHE/opensearch-$VERSION.zip"
    [[ "$SECURITY" == 1 ]] && home="$home-security"
    if [[ -f "$home/.soclite-ready" ]]; then echo "$home"; return; fi
    mkdir -p "$CACHE"
    if [[ ! -s "$zip" ]]; then
        say "downloading OpenSearch $VERSION from Maven Central into $CACHE"
        mvn_copy "org.opensearch.distribution.integ-test-zip:opensearch:$VERSION:zip" "$CACHE"
    fi
    command -v unzip >/dev/null || die "unzip not found (apt-get install unzip)"
    rm -rf "$home" "$CACHE/unpack" && mkdir -p "$CACHE/unpack"
    unzip -q "$zip" -d "$CACHE/unpack"
    mv "$CACHE/unpack/opensearch-$VERSION" "$home" && rmdir "$CACHE/unpack"
    build_reindex "$home"
    [[ "$SECURITY" == 1 ]] && install_security "$home"
    touch "$home/.soclite-ready"
    echo "$home"
}

install_security() {
    local home="$1" plugin="org.opensearch.plugin:opensearch-security:$VERSION.0:zip"
    local zip="$CACHE/opensearch-security-$VERSION.0.zip"
    if [[ ! -s "$zip" ]]; then
        command -v mvn >/dev/null || die "mvn not found"
        mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="$plugin" -DoutputDirectory="$CACHE" >&2 \
            || die "$plugin is not on Maven Central (2.19.4.0 is: OPENSEARCH_VERSION=2.19.4)"
    fi
    "$home/bin/opensearch-plugin" install --batch "file://$zip" >&2 || die "installing $zip failed"
    # Demo certificates (SAN 127.0.0.1) and configuration, written into the cached home's config/.
    OPENSEARCH_INITIAL_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        bash "$home/plugins/opensearch-security/tools/install_demo_configuration.sh" -y -i -s >&2 \
        || die "the Security plugin's demo configuration failed"
}

# As root the node runs as $RUN_USER, who may not be able to read a cache under /root: then it runs
# from a copy in the run directory.
as_user() {
    if [[ "$(id -u)" == 0 ]]; then
        setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --clear-groups -- "$@"
    else
        "$@"
    fi
}

# --- what this node and each node of scripts/opensearch-cluster.sh (which sources this file) share ----
# A node's directory DIR holds config/, logs/, tmp/, run/ (its pid files) and data/.

readable_home() {  # VAR HOME COPY: VAR=HOME, or a copy of it in COPY when the run user cannot read HOME (root)
    # no local variable here: printf -v would set it instead of the caller's (start() passes "home")
    if as_user test -r "$2/lib/opensearch-$VERSION.jar"; then
        printf -v "$1" '%s' "$2"
        return
    fi
    if [[ "$(cat "$3/.soclite-source" 2>/dev/null)" != "$2" ]]; then
        rm -rf "$3" && cp -a "$2" "$3"
        echo "$2" >"$3/.soclite-source"
    fi
    printf -v "$1" '%s' "$3"
}

make_data_dir() {  # DIR MIN_KB NAME: DIR/data on tmpfs (a symbolic link) when /dev/shm has MIN_KB free
    if [[ "${SOCLITE_OPENSEARCH_TMPFS:-1}" == 1 && -d /dev/shm && -w /dev/shm ]] \
        && [[ "$(df -k --output=avail /dev/shm 2>/dev/null | tail -1)" -gt "$2" ]]; then
        ln -s "$(mktemp -d "/dev/shm/$3.XXXXXX")" "$1/data"
    else
        mkdir -p "$1/data"
    fi
}

drop_data_dir() {  # DIR: DIR/data, on tmpfs (behind a symbolic link) or not
    if [[ -L "$1/data" ]]; then
        rm -rf "$(readlink -f "$1/data")"
    fi
    rm -rf "$1/data"
}

write_jvm_options() {  # DIR HEAP
    cat >"$1/config/jvm.options" <<EOF
-Xms$2
-Xmx$2
-XX:+UseSerialGC
-XX:TieredStopAtLevel=1
-Djava.io.tmpdir=\${OPENSEARCH_TMPDIR}
-XX:ErrorFile=$1/logs/hs_err_pid%p.log
18-:-Djava.security.manager=allow
-Djava.util.concurrent.ForkJoinPool.common.threadFactory=org.opensearch.secure_sm.SecuredForkJoinWorkerThreadFactory
EOF
}

test_node_settings() {  # DIR: the opensearch.yml lines every test node takes (its paths in DIR)
    cat <<EOF
path.data: $1/data
path.logs: $1/logs
node.store.allow_mmap: false
# Tests write with refresh=wait_for: a short refresh interval keeps each such write short.
cluster.default.index.refresh_interval: 100ms
cluster.minimum.index.refresh_interval: 10ms
# A full disk on a CI machine should not turn indices read-only halfway through a run.
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
EOF
}

launch_node_of() {  # DIR JAVA_HOME OPENSEARCH_HOME: the node of DIR started in the background
    local cmd=(env OPENSEARCH_JAVA_HOME="$2" OPENSEARCH_PATH_CONF="$1/config"
        OPENSEARCH_TMPDIR="$1/tmp" OPENSEARCH_JAVA_OPTS="" "$3/bin/opensearch" -p "$1/run/opensearch.pid")
    if [[ "$(id -u)" == 0 ]]; then
        cmd=(setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --clear-groups -- "${cmd[@]}")
    fi
    # In its own session (bin/opensearch execs java, so $! is the JVM): it outlives this script and
    # `make`, and a Ctrl-C in the terminal does not reach it. The node also writes its own pid (-p) into
    # run/opensearch.pid, which stays right should setsid ever have to fork.
    (cd "$1" && exec nohup setsid "${cmd[@]}" </dev/null >"$1/logs/stdout.log" 2>&1) &
    echo "$!" >"$1/run/launcher.pid"
}

start() {
    if pid="$(running_pid)"; then
        url="$(cat "$URL_FILE")"
        healthy "$url" || die "node $pid of $RUN_DIR is running but $url does not answer"
        say "already running (pid $pid)"
        echo "$url"
        return
    fi
    ensure_tools
    local java_home home port
    java_home="$(find_java)"
    export OPENSEARCH_JAVA_HOME="$java_home"
    home="$(install_distribution)"
    if [[ -n "${OPENSEARCH_PORT:-}" ]]; then
        port="$OPENSEARCH_PORT"
        port_taken "$port" && die "port $port is in use (OPENSEARCH_PORT)"
    else
        port=9200
        while port_taken "$port"; do
            port=$((port + 1))
            [[ "$port" -le 9299 ]] || die "ports 9200-9299 are all in use"
        done
    fi
    local keep=0  # SOCLITE_OPENSEARCH_KEEP_DATA=1: a restart of the same node with its data (outage tests)
    [[ "${SOCLITE_OPENSEARCH_KEEP_DATA:-0}" == 1 && -d "$RUN_DIR/data/" ]] && keep=1
    [[ "$keep" == 1 ]] || drop_data
    local dirs=("$RUN_DIR/logs" "$RUN_DIR/tmp" "$RUN_DIR/config" "$RUN_DIR/run")
    rm -rf "${dirs[@]}" && mkdir -p "${dirs[@]}"
    # The data path on tmpfs when there is one: each index a test creates or deletes is a cluster-state
    # write with fsync, which on a disk costs more than the test's own work. Nothing here must survive.
    [[ "$keep" == 1 ]] || make_data_dir "$RUN_DIR" 1048576 soclite-opensearch-data
    dirs+=("$(readlink -f "$RUN_DIR/data")")
    if [[ "$(id -u)" == 0 ]]; then
        id "$RUN_USER" >/dev/null 2>&1 || die "OpenSearch cannot run as root and user $RUN_USER does not exist (SOCLITE_OPENSEARCH_USER)"
        command -v setpriv >/dev/null || die "setpriv not found (util-linux): needed to run OpenSearch as $RUN_USER"
        readable_home home "$home" "$RUN_DIR/home"
        as_user test -x "$java_home/bin/java" || die "$RUN_USER cannot run $java_home/bin/java"
    fi
    cp "$home/config/log4j2.properties" "$RUN_DIR/config/"
    write_jvm_options "$RUN_DIR" "$HEAP"
    cat >"$RUN_DIR/config/opensearch.yml" <<EOF
cluster.name: soclite-test
node.name: soclite-test
network.host: 127.0.0.1
http.port: $port
transport.port: 9300-9399
discovery.type: single-node
EOF
    test_node_settings "$RUN_DIR" >>"$RUN_DIR/config/opensearch.yml"
    if [[ "$(id -u)" == 0 ]]; then
        chown -R "$RUN_USER:$(id -gn "$RUN_USER")" "${dirs[@]}"
        chmod a+rx "$RUN_DIR"
    fi
    rm -f "$URL_FILE" "$RUN_DIR/secured"
    local scheme=http
    if [[ "$SECURITY" == 1 ]]; then
        scheme=https
        cp -r "$home/config/"*.pem "$home/config/opensearch-security" "$RUN_DIR/config/"
        sed -n '/Start OpenSearch Security Demo Configuration/,/End OpenSearch Security Demo Configuration/p' \
            "$home/config/opensearch.yml" | sed 's/^plugins.security.audit.type:.*/plugins.security.audit.type: noop/' \
            >>"$RUN_DIR/config/opensearch.yml"
        [[ "$(id -u)" == 0 ]] && chown -R "$RUN_USER:$(id -gn "$RUN_USER")" "$RUN_DIR/config"
        touch "$RUN_DIR/secured"
    fi
    local url="$scheme://127.0.0.1:$port" started=$SECONDS
    say "starting OpenSearch $VERSION on $url (run directory $RUN_DIR)"
    launch_node_of "$RUN_DIR" "$java_home" "$home"
    echo "$url" >"$URL_FILE"
    until healthy "$url"; do
        if ! running_pid >/dev/null; then
            tail -n 40 "$RUN_DIR/logs/soclite-test.log" "$RUN_DIR/logs/stdout.log" >&2 2>/dev/null || true
            die "OpenSearch exited during startup (logs: $RUN_DIR/logs)"
        fi
        if ((SECONDS - started > TIMEOUT)); then
            stop >/dev/null 2>&1 || true
            die "OpenSearch did not answer $url/_cluster/health within ${TIMEOUT}s (logs: $RUN_DIR/logs)"
        fi
        sleep 1
    done
    say "up after $((SECONDS - started))s (pid $(running_pid))"
    echo "$url"
}

drop_data() { drop_data_dir "$RUN_DIR"; }

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        say "no node running from $RUN_DIR"
        rm -f "$PID_FILE" "$LAUNCH_FILE" "$URL_FILE"
        [[ "${SOCLITE_OPENSEARCH_KEEP_DATA:-0}" == 1 ]] || drop_data
        return 0
    fi
    kill "$pid"
    for _ in $(seq 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "node $pid did not stop within 30s: killing it"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$LAUNCH_FILE" "$URL_FILE"
    [[ "${SOCLITE_OPENSEARCH_KEEP_DATA:-0}" == 1 ]] || drop_data
    rm -rf "$RUN_DIR/tmp"
    say "stopped (pid $pid)"
}

env_lines() {  # what a test run needs to reach the running node, as shell assignments
    status >/dev/null || return 3
    printf 'export OPENSEARCH_URL=%q\n' "$(cat "$URL_FILE")"
    if [[ -f "$RUN_DIR/secured" ]]; then
        printf 'export OPENSEARCH_USERNAME=admin OPENSEARCH_PASSWORD=%q OPENSEARCH_CA_CERTS=%q\n' \
            "$ADMIN_PASSWORD" "$RUN_DIR/config/root-ca.pem"
    fi
}

status() {
    local pid
    if pid="$(running_pid)" && healthy "$(cat "$URL_FILE")"; then
        cat "$URL_FILE"
        return 0
    fi
    say "not running (run directory $RUN_DIR)"
    return 3
}

# Sourced (scripts/opensearch-cluster.sh reuses the download, Java and user helpers): define only.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) env_lines ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
