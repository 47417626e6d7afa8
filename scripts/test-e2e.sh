#!/usr/bin/env bash
# End-to-end check of a deployed FaaS Billing (scripts/deploy-all.sh): creates a throwaway tenant
# through the API, sends usage CloudEvents to the Broker, asks save to flush, and waits until the
# API's bill preview of the month shows exactly that usage (invocations and MB-ms). Exits non-zero
# on a mismatch or when it does not arrive within E2E_TIMEOUT seconds.
#
# The Broker is reached through a port-forward to Knative's broker-ingress; the API through its
# Knative route (the ksvc URL), with the admin key from the Secret faas-billing-api-key (or API_KEY).
set -euo pipefail

NAMESPACE=faas-billing
EVENTS="${E2E_EVENTS:-20}"
DURATION_MS="${E2E_DURATION_MS:-1000}"
MEMORY_MB="${E2E_MEMORY_MB:-1024}"
TIMEOUT="${E2E_TIMEOUT:-300}"
BROKER_PORT="${E2E_BROKER_PORT:-18080}"

die() { echo "test-e2e: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed ($2)"; }

need kubectl "https://kubernetes.io/docs/tasks/tools/"
need curl "your package manager's curl"
need jq "your package manager's jq"
kubectl get ksvc api --namespace "${NAMESPACE}" >/dev/null 2>&1 || die "FaaS Billing is not deployed (run scripts/deploy-all.sh)"

API_URL="${API_URL:-$(kubectl get ksvc api --namespace "${NAMESPACE}" -o jsonpath='{.status.url}')}/api/v1"
if [ -z "${API_KEY:-}" ]; then
  API_KEY="$(kubectl get secret faas-billing-api-key --namespace "${NAMESPACE}" -o jsonpath='{.data.API_ADMIN_KEY}' 2>/dev/null | base64 -d || true)"
fi
[ -n "${API_KEY}" ] || die "no admin key: set API_KEY, or create the Secret faas-billing-api-key (scripts/deploy-all.sh does for the local overlay)"

api() { # method path [json body]
  curl --silent --show-error --fail-with-body -X "$1" "${API_URL}$2" \
    -H "Authorization: Bearer ${API_KEY}" -H 'Content-Type: application/json' ${3:+--data "$3"}
}

kubectl port-forward --namespace knative-eventing svc/broker-ingress "${BROKER_PORT}:80" >/dev/null 2>&1 &
forward=$!
trap 'kill "${forward}" 2>/dev/null || true' EXIT
BROKER_URL="http://127.0.0.1:${BROKER_PORT}/${NAMESPACE}/default"
for _ in $(seq 1 30); do
  curl --silent --output /dev/null "http://127.0.0.1:${BROKER_PORT}/" && break
  sleep 1
done

slug="e2e-$(date -u +%Y%m%d%H%M%S)-$$"
echo "== tenant ${slug}"
api POST /tenants "{\"slug\":\"${slug}\",\"name\":\"end-to-end check\",\"currency\":\"USD\",\"timezone\":\"UTC\"}" >/dev/null

echo "== sending ${EVENTS} usage events (${DURATION_MS} ms, ${MEMORY_MB} MB) to the Broker"
for i in $(seq 1 "${EVENTS}"); do
  status="$(curl --silent --output /dev/null --write-out '%{http_code}' -X POST "${BROKER_URL}" \
    -H 'ce-specversion: 1.0' -H 'ce-type: faasbilling.usage.v1' -H "ce-source: /e2e/${slug}" \
    -H "ce-id: ${slug}-${i}" -H "ce-time: $(date -u +%Y-%m-%dT%H:%M:%SZ)" -H 'content-type: application/json' \
    --data "{\"tenant_id\":\"${slug}\",\"service\":\"e2e\",\"revision\":\"e2e-00001\",\"duration_ms\":${DURATION_MS},\"memory_mb\":${MEMORY_MB},\"cold_start\":false}")"
  [ "${status}" = 202 ] || die "the Broker answered ${status} to event ${i}"
done
curl --silent --fail --output /dev/null -X POST "${BROKER_URL}" \
  -H 'ce-specversion: 1.0' -H 'ce-type: faasbilling.buffer.flush.v1' -H "ce-source: /e2e/${slug}" \
  -H "ce-id: ${slug}-flush" -H 'content-type: application/json' --data '{}'

expected_invocations="${EVENTS}"
expected_mb_ms=$((EVENTS * DURATION_MS * MEMORY_MB))
month="$(date -u +%Y-%m)"
echo "== waiting up to ${TIMEOUT}s for ${expected_invocations} invocations and ${expected_mb_ms} MB-ms on the ${month} bill"
deadline=$((SECONDS + TIMEOUT))
while :; do
  bill="$(api POST /billing/calculate "{\"tenant_id\":\"${slug}\",\"month\":\"${month}\"}")"
  invocations="$(jq -r '[.line_items[] | select(.meter == "invocations") | .quantity | tonumber] | add // 0' <<<"${bill}")"
  mb_ms="$(jq -r '[.line_items[] | select(.meter == "compute") | .quantity | tonumber] | add // 0' <<<"${bill}")"
  if [ "${invocations}" = "${expected_invocations}" ] && [ "${mb_ms}" = "${expected_mb_ms}" ]; then
    echo "ok: ${invocations} invocations, ${mb_ms} MB-ms, total $(jq -r '.total + " " + .currency' <<<"${bill}")"
    exit 0
  fi
  if [ "${SECONDS}" -ge "${deadline}" ]; then
    echo "${bill}" >&2
    die "mismatch: the bill shows ${invocations} invocations and ${mb_ms} MB-ms; expected ${expected_invocations} and ${expected_mb_ms}"
  fi
  sleep 5
done
