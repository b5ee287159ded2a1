#!/usr/bin/env bash
# Run a command (the test suite) with OPENSEARCH_URL pointing at a real OpenSearch node.
#
#   scripts/with-opensearch.sh CMD...
#
# OPENSEARCH_URL already set: the command runs against that cluster, nothing is started.
# A node from `make opensearch` is running: the command uses it and it keeps running afterwards.
# Otherwise a private node is started in its own run directory (and port) and stopped when the
# command ends, whatever its outcome. When the node cannot be started, CI (CI=true) fails; a
# developer's machine runs the command without OPENSEARCH_URL (the in-memory osmem-server), warned.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -gt 0 ]] || { echo "usage: $0 CMD..." >&2; exit 2; }

if [[ -n "${OPENSEARCH_URL:-}" ]]; then
    exec "$@"
fi
if settings="$(bash "$here/opensearch.sh" env 2>/dev/null)"; then
    eval "$settings"
    echo "with-opensearch: using the running node $OPENSEARCH_URL (make opensearch-stop stops it)" >&2
    exec "$@"
fi

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/soclite-opensearch-run.XXXXXX")"
cleanup() {
    SOCLITE_OPENSEARCH_RUN_DIR="$run_dir" bash "$here/opensearch.sh" stop || true
    rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
if url="$(SOCLITE_OPENSEARCH_RUN_DIR="$run_dir" bash "$here/opensearch.sh" start)"; then
    echo "with-opensearch: OpenSearch at $url (started in $((SECONDS - started))s)" >&2
    eval "$(SOCLITE_OPENSEARCH_RUN_DIR="$run_dir" bash "$here/opensearch.sh" env)"
    status=0
    "$@" || status=$?
    exit "$status"
fi
if [[ "${CI:-}" == "true" ]]; then
    echo "with-opensearch: error: no OpenSearch node (CI=true: the OpenSearch tests must not be skipped)" >&2
    exit 1
fi
echo "with-opensearch: warning: no OpenSearch node; the OpenSearch tests run against osmem-server only" >&2
status=0
"$@" || status=$?
exit "$status"
