#!/usr/bin/env bash
# Sets a Docker engine up for the container tests on a fresh Debian machine; safe to run again.
#
#   1. installs docker.io and debootstrap from Debian (only when missing);
#   2. starts dockerd in the background when no engine answers, and waits for it;
#   3. makes the base image debian:bookworm without any image registry (debootstrap minbase + docker
#      import), only when the engine lacks it; the root file system is cached as a tarball, so a wiped
#      engine re-imports it in seconds instead of re-bootstrapping.
#
# The base image trusts the CA certificates this machine trusts beyond Debian's own set (a TLS-intercepting
# proxy's, for instance), so apt and pip inside `docker build` work wherever they work on the host.
# Environment: PYDSBASE_CACHE (default ~/.cache/pydsbase), PYDSBASE_DOCKERD_LOG (default /tmp/pydsbase-dockerd.log).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
CACHE=${PYDSBASE_CACHE:-$HOME/.cache/pydsbase}
BASE_IMAGE=debian:bookworm
ROOTFS_TAR="$CACHE/debian-bookworm-minbase.tar"
DOCKERD_LOG=${PYDSBASE_DOCKERD_LOG:-/tmp/pydsbase-dockerd.log}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! $SUDO docker info >/dev/null 2>&1; then
    echo "== starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the engine outlives this script and the CI step that ran it.
    $SUDO setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
    for _ in $(seq 60); do
        if $SUDO docker info >/dev/null 2>&1; then break; fi
        sleep 1
    done
    if ! $SUDO docker info >/dev/null 2>&1; then
        echo "dockerd did not come up within 60 s; its log:" >&2
        tail -20 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
fi

# Writes, one file each, the PEM certificates of $1 (a bundle) that Debian's ca-certificates lacks.
extra_host_certificates() {
    python3 - "$1" <<'PY'
import glob, re, sys
from pathlib import Path
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
def certs(text: str) -> list[str]:
    return pem.findall(text)
debian = {c.replace("\n", "") for f in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True)
          for c in certs(Path(f).read_text())}
host = Path("/etc/ssl/certs/ca-certificates.crt")
extra = [c for c in certs(host.read_text())] if host.exists() else []
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for i, cert in enumerate(c for c in extra if c.replace("\n", "") not in debian):
    (out / f"host-extra-{i}.crt").write_text(cert + "\n")
PY
}

if ! $SUDO docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ ! -s "$ROOTFS_TAR" ]; then
        echo "== bootstrapping $BASE_IMAGE (debootstrap --variant=minbase)"
        root=$(mktemp -d)
        trap '$SUDO rm -rf "$root"' EXIT
        # The image uses the same Debian mirror as this machine: its deb822 sources file is copied in.
        host_sources=/etc/apt/sources.list.d/debian.sources
        if [ ! -s "$host_sources" ]; then
            echo "no $host_sources on this machine: cannot tell which Debian mirror to bootstrap from" >&2
            exit 1
        fi
        mirror=$(awk '/^URIs:/ {print $2; exit}' "$host_sources")
        $SUDO debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
        $SUDO rm -f "$root/etc/apt/sources.list"
        $SUDO cp "$host_sources" "$root/etc/apt/sources.list.d/debian.sources"
        certs=$(mktemp -d)
        extra_host_certificates "$certs"
        $SUDO mkdir -p "$root/usr/local/share/ca-certificates"
        $SUDO cp "$certs"/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
        rm -rf "$certs"
        $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        mkdir -p "$CACHE"
        $SUDO tar -C "$root" -cf "$ROOTFS_TAR.part" .
        mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    fi
    echo "== importing $BASE_IMAGE from $ROOTFS_TAR"
    $SUDO docker import "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
fi

python3 -c "import docker" 2>/dev/null || python3 -m pip install -q "docker>=7.0"
echo "== docker engine ready: $($SUDO docker version --format '{{.Server.Version}}'), base image $BASE_IMAGE"
