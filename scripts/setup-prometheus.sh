#!/usr/bin/env bash
# Installs kube-prometheus-stack (Prometheus Operator, Prometheus, Alertmanager, Grafana) with helm
# into the namespace monitoring, configured to pick up FaaS Billing's PodMonitor, PrometheusRule
# and Grafana dashboard from any namespace (deploy/monitoring/helm-values.yaml). Safe to run
# again (helm upgrade --install). scripts/deploy-all.sh then applies deploy/monitoring.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART_VERSION="${KUBE_PROMETHEUS_STACK_VERSION:-65.1.1}"
NAMESPACE="${MONITORING_NAMESPACE:-monitoring}"
RELEASE="${MONITORING_RELEASE:-kube-prometheus-stack}"

die() { echo "setup-prometheus: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed ($2)"; }

need kubectl "https://kubernetes.io/docs/tasks/tools/"
need helm "https://helm.sh/docs/intro/install/"
kubectl cluster-info >/dev/null 2>&1 || die "kubectl cannot reach a cluster (run scripts/setup-k8s.sh first)"

helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
helm repo update prometheus-community >/dev/null
helm upgrade --install "${RELEASE}" prometheus-community/kube-prometheus-stack \
  --version "${CHART_VERSION}" \
  --namespace "${NAMESPACE}" --create-namespace \
  --values deploy/monitoring/helm-values.yaml \
  --wait --timeout 10m

echo "kube-prometheus-stack ${CHART_VERSION} is installed in ${NAMESPACE}."
echo "Grafana:    kubectl -n ${NAMESPACE} port-forward svc/${RELEASE}-grafana 3000:80   (admin / prom-operator)"
echo "Prometheus: kubectl -n ${NAMESPACE} port-forward svc/${RELEASE}-prometheus 9090:9090"
