#!/usr/bin/env bash
# Debian packages the build, the tests and the demo need. Idempotent.
set -euo pipefail
pkgs=(
  build-essential pkg-config meson ninja-build
  libglib2.0-dev libjson-glib-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav
  gir1.2-gst-rtsp-server-1.0 python3-gi
  clang libclang-rt-14-dev valgrind
  python3-fastapi python3-uvicorn python3-websockets python3-pytest python3-httpx python3-bcrypt
  python3-yaml
  openssl
  procps psmisc
  python3-fusepy libfuse2 fuse
  supervisor
  prometheus
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && SUDO= || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Go is not a Debian package here (Debian 12's is older than go.mod asks): say so at once
# rather than fail in the middle of a build.
want=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' "$(dirname "$0")/../go.mod")
have=$(cd / && PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9]*\.[0-9]*\).*/\1/p' || true)
if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]; then
  echo "deps: Go >= $want is needed at /usr/local/go (found: ${have:-none}); see https://go.dev/dl/" >&2
  exit 1
fi
