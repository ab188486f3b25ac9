#!/usr/bin/env bash
# Build one image per Dockerfile, tagged with the version. Without a Docker engine, say so and
# succeed: the rest of the deploy stage (manifests, validation, rollout rehearsal) still runs.
# Usage: pipelines/build-images.sh VERSION REGISTRY name=Dockerfile ...
set -euo pipefail
version=$1 registry=$2
shift 2
if ! docker info >/dev/null 2>&1; then
  echo "deploy: NO DOCKER ENGINE answers here (docker info failed): images NOT built."
  echo "deploy: the manifests below name ${registry}/<image>:${version}; build them where an engine runs."
  exit 0
fi
for pair in "$@"; do
  name=${pair%%=*} dockerfile=${pair#*=}
  docker build --file "$dockerfile" --tag "${registry}/${name}:${version}" \
    --label "org.opencontainers.image.version=${version}" \
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD)" .
done
echo "deploy: built $# images tagged ${version} (not pushed: pushing needs the registry's credentials)"
