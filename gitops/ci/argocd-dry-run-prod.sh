#!/usr/bin/env bash
# CI job for every change that touches gitops/ (needs a cluster; not part of scripts/test):
# show what syncing the prod Application at the commit under review would change, then run
# a server-side dry-run sync of it. Nothing is applied.
#
# Environment: ARGOCD_SERVER (the openshift-gitops route host) and ARGOCD_AUTH_TOKEN (a
# token of an Argo CD account with `applications, get` and `applications, sync` on
# zelda-rl/zelda-rl-prod). Argument: the revision to test (default: HEAD, which must be
# pushed so Argo CD can fetch it).
set -euo pipefail

: "${ARGOCD_SERVER:?set ARGOCD_SERVER to the Argo CD server host}"
: "${ARGOCD_AUTH_TOKEN:?set ARGOCD_AUTH_TOKEN to an Argo CD API token}"
revision="${1:-$(git rev-parse HEAD)}"
app=zelda-rl-prod
flags=(--grpc-web)

echo "==> offline validation first (kustomize, schemas, policy, seed, command lines)"
cargo xtask gitops

echo "==> argocd app diff $app at $revision"
set +e
argocd app diff "$app" --revision "$revision" "${flags[@]}"
rc=$?
set -e
# `app diff` exits 1 when there are differences (expected for a change) and 2 on errors.
if [ "$rc" -gt 1 ]; then
  echo "argocd app diff failed (exit $rc)" >&2
  exit "$rc"
fi

echo "==> dry-run sync of $app at $revision (server-side, prune included)"
argocd app sync "$app" --revision "$revision" --dry-run --prune "${flags[@]}"
