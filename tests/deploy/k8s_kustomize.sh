#!/usr/bin/env bash
# What `kubectl apply -k` would send, for the CPU base and the CUDA overlay,
# rendered by kubectl's kustomize and checked against the Kubernetes schemas.
#   tests/deploy/k8s_kustomize.sh KUBECTL NODE REPO_ROOT
set -euo pipefail
kubectl="$1" node="$2" root="$3"
for d in base overlays/cuda; do
  echo "== deploy/k8s/$d"
  "$kubectl" kustomize "$root/deploy/k8s/$d" | "$node" "$root/tools/deploy-check/validate_k8s.mjs" -
done
# the overlay's point: a GPU per pod of both roles, on cuda:0
out="$("$kubectl" kustomize "$root/deploy/k8s/overlays/cuda")"
[ "$(grep -c 'nvidia.com/gpu: 1' <<<"$out")" -eq 2 ] || { echo "FAIL: expected 2 nvidia.com/gpu limits"; exit 1; }
