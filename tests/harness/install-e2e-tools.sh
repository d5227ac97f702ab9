#!/usr/bin/env bash
# Installs what `make test-kafka` and `make test-e2e` need beyond Python (make test needs none
# of it): Apache Kafka's jars from Maven Central, goflow2 built from the Go module proxy, and
# Debian's softflowd (exporter) and pmacct (nfacctd collector).
#
# Everything but the Debian packages goes under .cache/ in the repo (git-ignored):
#   .cache/apache-kafka/<version>/lib/*.jar   (resolved by Maven; ~45 MB)
#   .cache/tools/bin/goflow2                  (go install, pinned version)
# Re-running is cheap: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

GOFLOW2_VERSION="${GOFLOW2_VERSION:-v2.2.6}"
PYTHON="${PYTHON:-python3}"

# Go from its tarball lives in /usr/local/go/bin, not always on PATH.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"

need() { command -v "$1" >/dev/null 2>&1 || { echo "install-e2e-tools: $1 not found ($2)" >&2; exit 1; }; }

# 1. Debian packages: softflowd reads the pcap and exports NetFlow v9/IPFIX; nfacctd collects.
if ! command -v softflowd >/dev/null 2>&1 || ! command -v nfacctd >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    # The packages' services must not start (and cannot, in a container): only the binaries.
    $sudo_cmd apt-get install -y -qq --no-install-recommends softflowd pmacct >/dev/null
fi

# 2. goflow2, pinned, built from the Go module proxy into .cache/tools/bin.
if [ ! -x .cache/tools/bin/goflow2 ]; then
    need go "Go >= 1.22 is needed to build goflow2"
    mkdir -p .cache/tools/bin .cache/tools/gopath
    GOPATH="$PWD/.cache/tools/gopath" GOBIN="$PWD/.cache/tools/bin" GOFLAGS=-modcacherw \
        go install "github.com/netsampler/goflow2/v2/cmd/goflow2@${GOFLOW2_VERSION}"
fi

# 3. Apache Kafka's jars (Maven resolves them into .cache/apache-kafka/<version>/lib).
need java "a JDK >= 17 runs Apache Kafka 4"
need mvn "Maven resolves Apache Kafka from Maven Central"
"$PYTHON" tests/harness/apache_kafka.py resolve

# 4. OpenSearch and the modules of an ingest pipeline (tests/e2e/test_opensearch_alerts.py).
"$PYTHON" tests/harness/opensearch.py resolve

echo "install-e2e-tools: softflowd, nfacctd, goflow2 ${GOFLOW2_VERSION}, Apache Kafka and OpenSearch are ready"
