#!/usr/bin/env bash
# Builds the CPU image without a registry: a Debian bookworm base made with mmdebstrap and imported into podman,
# the `ecsnet` command published self-contained beside it, the ImageNet ResNet-18 ONNX file the build resolved
# (weights/ResNet18.onnx in the context), and k8s/images/Dockerfile on top (docs/DEPLOY.md, "Images").
# Usage: k8s/images/build.sh [TAG]   (default localhost/ecsnet:dev). Needs podman, runc and mmdebstrap (Debian packages).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-localhost/ecsnet:dev}
work=${ECSNET_IMAGE_WORK:-$root/.build/image}
base=localhost/ecsnet-base:bookworm
export CONTAINERS_CONF=$root/k8s/images/containers.conf
mkdir -p "$work"

if ! podman image exists "$base"; then
  echo "== base image $base (mmdebstrap --variant=minbase bookworm)"
  # passwd: useradd for the image's user; libstdc++6, libgomp1, zlib1g: LibTorch's native libraries; ca-certificates: TLS
  mmdebstrap --variant=minbase --include=passwd,ca-certificates,libstdc++6,libgomp1,zlib1g bookworm "$work/rootfs.tar"
  podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$base"
  rm -f "$work/rootfs.tar"
fi

echo "== dotnet publish (self-contained, linux-x64, CPU LibTorch)"
rm -rf "$work/context"
dotnet publish "$root/src/EcsNet.Cli" -c Release -r linux-x64 --self-contained -p:EcsNetCuda=false -p:ErrorOnDuplicatePublishOutputFiles=false -o "$work/context/app" -v quiet -nologo

echo "== ResNet-18 ONNX weights into the context (the file --backbone resnet18 loads)"
# The same file the build records in EcsNet.Core's assembly metadata: ECSNET_RESNET18_ONNX when set, else the
# EcsNetResNet18Onnx property (its place in the NuGet cache, filled by the publish's restore).
onnx=${ECSNET_RESNET18_ONNX:-$(dotnet msbuild "$root/src/EcsNet.Core" -getProperty:EcsNetResNet18Onnx -p:EcsNetCuda=false -nologo)}
sha=$(sed -n 's/.*const string Sha256 = "\([0-9a-f]*\)".*/\1/p' "$root/src/EcsNet.Core/Weights/ResNet18Onnx.cs")
[ -f "$onnx" ] || { echo "ResNet-18 ONNX not found at '$onnx' (restore src/EcsNet.Core, or set ECSNET_RESNET18_ONNX)" >&2; exit 1; }
echo "$sha  $onnx" | sha256sum --check --quiet - || { echo "$onnx: not the sha256 ResNet18Onnx.cs expects" >&2; exit 1; }
install -D -m 0644 "$onnx" "$work/context/weights/ResNet18.onnx"

echo "== podman build $tag"
podman build --build-arg BASE_IMAGE="$base" -f "$root/k8s/images/Dockerfile" -t "$tag" "$work/context"
podman image inspect "$tag" --format '{{.Id}} {{.Size}} bytes, user {{.Config.User}}, ports {{.Config.ExposedPorts}}'
