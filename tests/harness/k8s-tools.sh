#!/usr/bin/env bash
# Kubernetes manifest tools for `make test-deploy`:
#   tests/harness/k8s-tools.sh install          build and generate what validate needs
#   tests/harness/k8s-tools.sh validate [DIR]   kubeconform, strict, then psa-check, on DIR's
#                                               manifests and on `kustomize build DIR`
#                                               (default deploy/kubernetes)
#
# install: kubeconform and kustomize built from the Go module proxy, and JSON schemas
# generated from what the Go module proxy serves: the Kubernetes OpenAPI spec of the
# k8s.io/kubernetes module (api/openapi-spec/swagger.json) and the Prometheus Operator's CRDs
# (for monitoring/podmonitor.yaml). kubeconform's default schema location is GitHub, which CI
# cannot reach: it only ever reads the schemas made here. And psa-check (tests/harness/
# psa-check, pinned by its go.sum): the pod templates against the Pod Security Standards level
# their Namespace enforces, with the API server's own PodSecurity code. Everything goes under
# .cache/ (git-ignored), and each step is skipped when its result is already there:
#   .cache/tools/bin/{kubeconform,kustomize}   (go install, pinned versions)
#   .cache/tools/bin/psa-check                 (go build)
#   .cache/k8s-schemas/<k8s version>/*.json    (tests/harness/k8s_schemas.py; ~300 files, 3 MB)
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/../.."
repo="$PWD"

KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"  # v5.8.3 needs Go 1.27
K8S_SCHEMA_VERSION="${K8S_SCHEMA_VERSION:-v1.33.13}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
PYTHON="${PYTHON:-.venv/bin/python}"  # needs PyYAML (the dev extras)

tools="$repo/.cache/tools"
schemas="$repo/.cache/k8s-schemas/${K8S_SCHEMA_VERSION}"
stamp="$schemas/.complete-${PROMETHEUS_OPERATOR_VERSION}"
go_env=(env GOPATH="$tools/gopath" GOBIN="$tools/bin" GOFLAGS=-modcacherw)

# A binary counts as installed only if it was built from the pinned module version.
installed() { [ -x "$tools/bin/$1" ] && go version -m "$tools/bin/$1" | grep -Eq "^\s+mod\s+$2\s+$3\s"; }
module_dir() {
    "${go_env[@]}" go mod download -json "$1" \
        | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

install() {
    # Go from its tarball lives in /usr/local/go/bin, not always on PATH.
    command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null 2>&1 \
        || { echo "k8s-tools: go not found (Go >= 1.26 builds kubeconform and kustomize)" >&2; exit 1; }
    mkdir -p "$tools/bin" "$tools/gopath"
    installed kubeconform github.com/yannh/kubeconform "$KUBECONFORM_VERSION" \
        || "${go_env[@]}" go install "github.com/yannh/kubeconform/cmd/kubeconform@${KUBECONFORM_VERSION}"
    installed kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" \
        || "${go_env[@]}" go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"
    # go build is a no-op when nothing changed; GOTOOLCHAIN=local: never fetch another Go.
    (cd tests/harness/psa-check && "${go_env[@]}" GOTOOLCHAIN=local go build -o "$tools/bin/psa-check" .)
    if [ ! -f "$stamp" ]; then
        # Module zips (k8s.io/kubernetes ~18 MB) are checked against sum.golang.org as usual.
        local kubernetes operator crds
        kubernetes="$(module_dir "k8s.io/kubernetes@${K8S_SCHEMA_VERSION}")"
        operator="$(module_dir "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}")"
        crds="$operator/example/prometheus-operator-crd"
        rm -rf "$schemas"
        "$PYTHON" tests/harness/k8s_schemas.py openapi "$kubernetes/api/openapi-spec/swagger.json" "$schemas"
        "$PYTHON" tests/harness/k8s_schemas.py crd "$schemas" \
            "$crds/monitoring.coreos.com_podmonitors.yaml" "$crds/monitoring.coreos.com_servicemonitors.yaml"
        touch "$stamp"
    fi
    echo "k8s-tools: kubeconform ${KUBECONFORM_VERSION}, kustomize ${KUSTOMIZE_VERSION}, psa-check," \
        "schemas of Kubernetes ${K8S_SCHEMA_VERSION} and Prometheus Operator ${PROMETHEUS_OPERATOR_VERSION}"
}

# Every kind must have a schema (no -ignore-missing-schemas): an unknown kind or apiVersion
# fails. Kustomization is kustomize's own file, not a resource; `kustomize build` checks it.
validate() {
    local dir="$1"
    [ -f "$stamp" ] || { echo "k8s-tools: run 'tests/harness/k8s-tools.sh install' first" >&2; exit 1; }
    local kubeconform=("$tools/bin/kubeconform" -strict -summary
        -kubernetes-version "${K8S_SCHEMA_VERSION#v}"
        -schema-location "$repo/.cache/k8s-schemas/{{ .NormalizedKubernetesVersion }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
        -skip Kustomization)
    echo "kubeconform: the manifests in $dir"
    "${kubeconform[@]}" "$dir"
    echo "kubeconform: kustomize build $dir"
    "$tools/bin/kustomize" build "$dir" | "${kubeconform[@]}" -
    echo "psa-check: the manifests in $dir"
    "$tools/bin/psa-check" "$dir"/*.yaml
    echo "psa-check: kustomize build $dir"
    "$tools/bin/kustomize" build "$dir" | "$tools/bin/psa-check" -
}

case "${1:-}" in
    install) install ;;
    validate)
        dir="${2:-deploy/kubernetes}"
        [ -n "${2:-}" ] && [[ "$dir" != /* ]] && dir="$caller/$dir"
        validate "$dir"
        ;;
    *) echo "usage: $0 install | validate [DIR]" >&2; exit 2 ;;
esac
