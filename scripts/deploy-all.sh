#!/usr/bin/env bash
# Builds the FaaS Billing image, pushes it, applies an overlay of deploy/ with that image, and waits
# until PostgreSQL, Redis, the migration, the Broker, every Knative Service and the metering source
# are ready; then applies deploy/monitoring when the Prometheus Operator is installed. Safe to run
# again.
#
#   scripts/deploy-all.sh [local|production]      (default: local)
#   scripts/deploy-all.sh --print [local|production]   render only: no docker, no cluster
#
# REGISTRY (default localhost:5000, the registry of scripts/setup-k8s.sh) and TAG (default: the git
# commit and a timestamp) name the image; SKIP_BUILD=1 deploys an image already pushed.
# METERING_SOURCE picks what meters the cluster's Knative revisions: scrape (default: the queue-proxy
# scraper of deploy/base) or agent (deploy/components/agent: the billing agent DaemonSet instead).
# Each meters every revision, so a deploy deletes the other one: both would bill every request twice.
set -euo pipefail
cd "$(dirname "$0")/.."

PRINT_ONLY=false
if [ "${1:-}" = "--print" ]; then
  PRINT_ONLY=true
  shift
fi
OVERLAY="${1:-local}"
NAMESPACE=faas-billing
REGISTRY="${REGISTRY:-localhost:5000}"
TAG="${TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo dev)-$(date -u +%Y%m%d%H%M%S)}"
IMAGE="${REGISTRY}/faas-billing:${TAG}"

METERING_SOURCE="${METERING_SOURCE:-scrape}"

die() { echo "deploy-all: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed ($2)"; }

[ -f "deploy/overlays/${OVERLAY}/kustomization.yaml" ] || die "no overlay deploy/overlays/${OVERLAY} (use local or production)"
need kubectl "https://kubernetes.io/docs/tasks/tools/"

# What each metering source adds to the cluster (deploy/components/agent swaps the first for the
# second): a deploy deletes the other source's, so switching METERING_SOURCE never leaves both.
SCRAPE_RESOURCES=(services.serving.knative.dev/scrape pingsources.sources.knative.dev/scrape-tick triggers.eventing.knative.dev/scrape-tick
  sinkbindings.sources.knative.dev/scrape-events serviceaccount/faas-billing-scrape clusterrolebinding/faas-billing-scrape)
AGENT_RESOURCES=(daemonset/billing-agent serviceaccount/billing-agent clusterrolebinding/faas-billing-agent)
case "${METERING_SOURCE}" in
  scrape)
    KUSTOMIZATION="deploy/overlays/${OVERLAY}"
    OTHER_SOURCE=("${AGENT_RESOURCES[@]}")
    ;;
  agent)
    # The overlay with the component, through a temporary kustomization. kustomize refuses absolute
    # paths, so it names both relative to its own physical path ("../" for each of its parts).
    KUSTOMIZATION="$(cd "$(mktemp -d)" && pwd -P)"
    trap 'rm -rf "${KUSTOMIZATION}"' EXIT
    up="$(sed -E 's#/[^/]+#../#g' <<<"${KUSTOMIZATION}")"
    repo="$(pwd -P)"
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - "%s"\ncomponents:\n  - "%s"\n' \
      "${up}${repo#/}/deploy/overlays/${OVERLAY}" "${up}${repo#/}/deploy/components/agent" >"${KUSTOMIZATION}/kustomization.yaml"
    OTHER_SOURCE=("${SCRAPE_RESOURCES[@]}")
    ;;
  *) die "METERING_SOURCE is scrape or agent, not ${METERING_SOURCE}" ;;
esac

# The manifests (the overlay, with the agent component when METERING_SOURCE=agent) with every image
# of the placeholder name faas-billing (whatever registry and tag the overlay gave it) replaced by
# the image just pushed.
render() {
  kubectl kustomize "${KUSTOMIZATION}" |
    sed -E "s#^([[:space:]]*(- )?image: )([^[:space:]\"]*/)?faas-billing(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]+)?[[:space:]]*\$#\\1${IMAGE}#"
}

if [ "${PRINT_ONLY}" = true ]; then
  render
  exit 0
fi

kubectl cluster-info >/dev/null 2>&1 || die "kubectl cannot reach a cluster (run scripts/setup-k8s.sh first)"
kubectl get crd services.serving.knative.dev brokers.eventing.knative.dev >/dev/null 2>&1 ||
  die "Knative Serving and Eventing are not installed (run scripts/setup-k8s.sh)"
if [ "${OVERLAY}" = production ]; then
  kubectl get secret faas-billing-db --namespace "${NAMESPACE}" >/dev/null 2>&1 ||
    die "create the Secret faas-billing-db in ${NAMESPACE} first (README, Run on a Knative cluster)"
fi

if [ "${SKIP_BUILD:-}" != 1 ]; then
  need docker "Docker Desktop or Docker Engine"
  echo "== building ${IMAGE}"
  docker build --tag "${IMAGE}" .
  docker push "${IMAGE}"
fi

echo "== applying deploy/overlays/${OVERLAY}"
kubectl create namespace "${NAMESPACE}" --dry-run=client -o yaml | kubectl apply -f -
# The API's bootstrap admin key: kept in its own Secret, created once (never rotated by a deploy).
if ! kubectl get secret faas-billing-api-key --namespace "${NAMESPACE}" >/dev/null 2>&1; then
  need openssl "to generate the API admin key"
  key="fbk_$(openssl rand -hex 6)_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"
  kubectl create secret generic faas-billing-api-key --namespace "${NAMESPACE}" --from-literal=API_ADMIN_KEY="${key}"
  echo "created the Secret faas-billing-api-key (the API's admin key; read it with:"
  echo "  kubectl get secret faas-billing-api-key -n ${NAMESPACE} -o jsonpath='{.data.API_ADMIN_KEY}' | base64 -d)"
fi
# A Job's pod template is immutable: replace the migration Job with the new image's.
kubectl delete job faas-billing-migrate --namespace "${NAMESPACE}" --ignore-not-found
# The other metering source goes before this one comes: a switch may miss the requests between the
# old source's last report and the new one's first, but never bills one twice.
kubectl delete --namespace "${NAMESPACE}" --ignore-not-found "${OTHER_SOURCE[@]}"
render | kubectl apply -f -

echo "== waiting"
if [ "${OVERLAY}" = local ]; then
  kubectl rollout status statefulset/postgres --namespace "${NAMESPACE}" --timeout=300s
  kubectl rollout status statefulset/redis --namespace "${NAMESPACE}" --timeout=300s
fi
kubectl wait --for=condition=Complete job/faas-billing-migrate --namespace "${NAMESPACE}" --timeout=300s
kubectl wait --for=condition=Ready broker/default --namespace "${NAMESPACE}" --timeout=300s
kubectl wait --for=condition=Ready ksvc --all --namespace "${NAMESPACE}" --timeout=600s
kubectl wait --for=condition=Ready trigger --all --namespace "${NAMESPACE}" --timeout=300s
if [ "${METERING_SOURCE}" = agent ]; then
  kubectl rollout status daemonset/billing-agent --namespace "${NAMESPACE}" --timeout=300s
fi

if kubectl get crd podmonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com >/dev/null 2>&1; then
  echo "== monitoring"
  kubectl apply -k deploy/monitoring
else
  echo "(the Prometheus Operator is not installed: skipping deploy/monitoring; run scripts/setup-prometheus.sh for it)"
fi

echo "Deployed ${IMAGE} (metering source: ${METERING_SOURCE})."
kubectl get ksvc --namespace "${NAMESPACE}"
echo "API: $(kubectl get ksvc api --namespace "${NAMESPACE}" -o jsonpath='{.status.url}')/api/v1"
