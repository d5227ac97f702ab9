#!/usr/bin/env bash
# Install beaconwatch's ingest pipeline, component templates and index template into
# Elasticsearch (8.x). ES_URL defaults to http://localhost:9200; ES_AUTH is passed to curl's
# --user (user:password), ES_API_KEY as an ApiKey header. Order matters: the index template
# names the component templates and its settings the pipeline.
set -euo pipefail
cd "$(dirname "$0")"
url=${ES_URL:-http://localhost:9200}
args=(--silent --show-error --fail-with-body -H 'Content-Type: application/json')
if [[ -n ${ES_AUTH:-} ]]; then args+=(--user "$ES_AUTH"); fi
if [[ -n ${ES_API_KEY:-} ]]; then args+=(-H "Authorization: ApiKey $ES_API_KEY"); fi
put() {
  curl "${args[@]}" -X PUT "$url/$1" --data-binary "@$2"
  echo " <- $1"
}
put _ingest/pipeline/beaconwatch-alert ingest-pipeline.json
put _component_template/beaconwatch-alerts@ecs component-template-ecs.json
put _component_template/beaconwatch-alerts@beacon component-template-beacon.json
put _index_template/beaconwatch-alerts index-template.json
