#!/usr/bin/env bash
# Prepares a local Kubernetes cluster (Docker Desktop or kind) for FaaS Billing: Knative Serving
# with Kourier, Knative Eventing with the multi-tenant channel-based Broker, the cluster's domain,
# and a local image registry on localhost:5000. Safe to run again: every step checks or applies
# declaratively. Versions are pinned below (override with the environment variables).
set -euo pipefail

KNATIVE_SERVING_VERSION="${KNATIVE_SERVING_VERSION:-knative-v1.23.0}"
KNATIVE_EVENTING_VERSION="${KNATIVE_EVENTING_VERSION:-knative-v1.22.2}"
KOURIER_VERSION="${KOURIER_VERSION:-knative-v1.23.0}"
# Hostnames of Knative Services: <service>.<namespace>.<domain>. sslip.io resolves
# <anything>.127.0.0.1.sslip.io to 127.0.0.1, where Docker Desktop exposes Kourier.
KNATIVE_DOMAIN="${KNATIVE_DOMAIN:-127.0.0.1.sslip.io}"
REGISTRY_NAME="${REGISTRY_NAME:-faas-billing-registry}"
REGISTRY_PORT="${REGISTRY_PORT:-5000}"

SERVING="https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}"
EVENTING="https://github.com/knative/eventing/releases/download/${KNATIVE_EVENTING_VERSION}"
KOURIER="https://github.com/knative-extensions/net-kourier/releases/download/${KOURIER_VERSION}"

die() { echo "setup-k8s: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed ($2)"; }

need kubectl "https://kubernetes.io/docs/tasks/tools/"
need docker "Docker Desktop or Docker Engine, for the local registry"
kubectl cluster-info >/dev/null 2>&1 || die "kubectl cannot reach a cluster; enable Kubernetes in Docker Desktop or create a kind cluster first"
docker info >/dev/null 2>&1 || die "the Docker daemon is not running"

echo "== Knative Serving ${KNATIVE_SERVING_VERSION}"
kubectl apply -f "${SERVING}/serving-crds.yaml"
kubectl wait --for=condition=Established --timeout=120s crd/services.serving.knative.dev
kubectl apply -f "${SERVING}/serving-core.yaml"

echo "== Kourier ${KOURIER_VERSION}"
kubectl apply -f "${KOURIER}/kourier.yaml"
kubectl patch configmap/config-network --namespace knative-serving --type merge \
  --patch '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'

echo "== domain ${KNATIVE_DOMAIN}"
kubectl patch configmap/config-domain --namespace knative-serving --type merge \
  --patch "{\"data\":{\"${KNATIVE_DOMAIN}\":\"\"}}"
# Knative resolves image tags to digests by asking the registry from inside the cluster, where
# localhost:5000 is not the registry: skip that for the local registry.
kubectl patch configmap/config-deployment --namespace knative-serving --type merge \
  --patch "{\"data\":{\"registries-skipping-tag-resolving\":\"kind.local,ko.local,dev.local,localhost:${REGISTRY_PORT}\"}}"

echo "== Knative Eventing ${KNATIVE_EVENTING_VERSION}"
kubectl apply -f "${EVENTING}/eventing-crds.yaml"
kubectl wait --for=condition=Established --timeout=120s crd/brokers.eventing.knative.dev crd/triggers.eventing.knative.dev crd/pingsources.sources.knative.dev
kubectl apply -f "${EVENTING}/eventing-core.yaml"
kubectl apply -f "${EVENTING}/in-memory-channel.yaml"
kubectl apply -f "${EVENTING}/mt-channel-broker.yaml"

echo "== waiting for Knative to be ready"
kubectl wait --for=condition=Available --timeout=300s deployment --all --namespace knative-serving
kubectl wait --for=condition=Available --timeout=300s deployment --all --namespace kourier-system
kubectl wait --for=condition=Available --timeout=300s deployment --all --namespace knative-eventing

echo "== local registry localhost:${REGISTRY_PORT}"
if [ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY_NAME}" 2>/dev/null || true)" != "true" ]; then
  if docker inspect "${REGISTRY_NAME}" >/dev/null 2>&1; then
    docker start "${REGISTRY_NAME}" >/dev/null
  else
    docker run -d --restart=always -p "127.0.0.1:${REGISTRY_PORT}:5000" --name "${REGISTRY_NAME}" registry:2 >/dev/null
  fi
fi

context="$(kubectl config current-context)"
if [[ "${context}" == kind-* ]]; then
  # kind nodes are containers: give them the registry under localhost:<port> (the cluster must
  # have been created with containerd's config_path set to /etc/containerd/certs.d).
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "${REGISTRY_NAME}")" = "null" ]; then
    docker network connect kind "${REGISTRY_NAME}"
  fi
  for node in $(kind get nodes --name "${context#kind-}" 2>/dev/null || true); do
    docker exec "${node}" mkdir -p "/etc/containerd/certs.d/localhost:${REGISTRY_PORT}"
    printf '[host."http://%s:5000"]\n' "${REGISTRY_NAME}" |
      docker exec -i "${node}" cp /dev/stdin "/etc/containerd/certs.d/localhost:${REGISTRY_PORT}/hosts.toml"
  done
fi

echo "Knative Serving, Kourier, Eventing and the registry localhost:${REGISTRY_PORT} are ready."
echo "Next: scripts/setup-prometheus.sh (optional), then scripts/deploy-all.sh"
