#!/usr/bin/env bash
# Containers for the test Slurm cluster: enroot and pyxis built from the source snapshots in
# ../shared/vendor (nothing else can be downloaded here), and two images built once and cached outside
# the checkout (rebuilt only when their recipe below changes):
#   debian12-python.sqsh  Debian 12 (debootstrap) with python3 and venv support — what workers run in
#   no-libc.sqsh          busybox-static alone: no C library at all (the static node binary must run there)
#
#   tests/env/containers.sh up ENV_DIR   build what is missing; write ENV_DIR/containers.env (PYXIS_SO=,
#                                        IMAGE=, NO_LIBC_IMAGE=) and ENV_DIR/plugstack.conf; exit 0
#   On any failure, or without ../shared/vendor: ENV_DIR/containers.skip says why (the container tests
#   print it and are skipped), and the exit status is 0, so the cluster still comes up without pyxis.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV_DIR=${2:?usage: $0 up ENV_DIR}
VENDOR=${SRT_GRAPH_VENDOR:-../shared/vendor}
CACHE=${SRT_GRAPH_CONTAINER_CACHE:-/var/cache/srt-graph/containers}
PACKAGES=(gcc make libbsd-dev libmd-dev gawk squashfs-tools makeself debootstrap libslurm-dev pigz zstd jq parallel busybox-static)
# Changing what goes into an image changes its name, so a stale cached image is never used.
# The image trusts what this machine trusts (a site's proxy CA under /usr/local/share/ca-certificates),
# as a site's images do: pip inside reaches PyPI the way pip outside does.
IMAGE_RECIPE="debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm; local CAs $(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum); mksquashfs -comp zstd"
NO_LIBC_RECIPE="busybox-static as /bin/sh and /bin/busybox; mksquashfs -comp zstd"

skip() {
  echo "$*" >"$ENV_DIR/containers.skip"
  rm -f "$ENV_DIR/containers.env"
  echo "containers: SKIPPED: $*" >&2
  exit 0
}

mirror() {
  # The Debian mirror apt already uses (deb822 or one-line sources).
  { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } | grep -v security | head -1
}

build_enroot() {
  command -v enroot >/dev/null && enroot version >/dev/null 2>&1 && return
  local src=$CACHE/src/enroot
  rm -rf "$src" && mkdir -p "$src"
  tar xzf "$VENDOR/enroot-src.tar.gz" -C "$src" --strip-components=1
  # The three git submodules cannot be fetched: Debian's makeself and the system's kernel headers stand
  # in, and FORCE_GLIBC=1 skips musl: the utilities link against this machine's C library, which (glibc
  # 2.36) lacks the strlcpy/strlcat that musl has, so Debian's libbsd provides them (by its soname:
  # enroot's own libbsd.a, first on the search path, has neither).
  install -m 755 -D /usr/bin/makeself "$src/deps/makeself/makeself.sh"
  mkdir -p "$src/deps/dist/linux/include"
  cp -r /usr/include/linux /usr/include/asm-generic "$src/deps/dist/linux/include/"
  cp -r "/usr/include/$(uname -m)-linux-gnu/asm" "$src/deps/dist/linux/include/"
  touch "$src/deps/linux-headers/.stamp"
  CPPFLAGS="-DLIBBSD_OVERLAY -isystem /usr/include/bsd" \
    make -C "$src" install FORCE_GLIBC=1 prefix=/usr/local LDLIBS="-l:libbsd.a -l:libbsd.so.0" >"$CACHE/enroot-build.log" 2>&1 \
    || { tail -20 "$CACHE/enroot-build.log" >&2; return 1; }
}

build_pyxis() {
  [ -f "$CACHE/pyxis/spank_pyxis.so" ] && return
  local src=$CACHE/src/pyxis
  rm -rf "$src" && mkdir -p "$src" "$CACHE/pyxis"
  tar xzf "$VENDOR/pyxis-src.tar.gz" -C "$src" --strip-components=1
  make -C "$src" >"$CACHE/pyxis-build.log" 2>&1 || { tail -20 "$CACHE/pyxis-build.log" >&2; return 1; }
  cp "$src/spank_pyxis.so" "$CACHE/pyxis/"
}

image_name() { echo "$1-$(echo "$2" | sha256sum | cut -c1-12).sqsh"; }

build_image() {
  local out=$CACHE/images/$(image_name debian12-python "$IMAGE_RECIPE")
  if [ ! -s "$out" ]; then
    local root=$CACHE/rootfs-debian12
    rm -rf "$root"
    mkdir -p "$CACHE/images"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$(mirror)" \
      >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
      cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
      chroot "$root" update-ca-certificates >/dev/null 2>&1 || return 1
    fi
    mksquashfs "$root" "$out.tmp" -comp zstd -noappend -quiet >/dev/null && mv "$out.tmp" "$out"
    rm -rf "$root"
  fi
  echo "$out"
}

build_no_libc_image() {
  local out=$CACHE/images/$(image_name no-libc "$NO_LIBC_RECIPE")
  if [ ! -s "$out" ]; then
    local root=$CACHE/rootfs-no-libc
    rm -rf "$root" && mkdir -p "$root"/{bin,etc,tmp,proc,dev,sys,usr/bin}
    cp /bin/busybox "$root/bin/busybox"
    for tool in sh cat env ls; do ln -s busybox "$root/bin/$tool"; done
    mksquashfs "$root" "$out.tmp" -comp zstd -noappend -quiet >/dev/null && mv "$out.tmp" "$out"
    rm -rf "$root"
  fi
  echo "$out"
}

up() {
  mkdir -p "$ENV_DIR" "$CACHE"
  rm -f "$ENV_DIR/containers.skip"
  for f in enroot-src.tar.gz pyxis-src.tar.gz; do
    [ -f "$VENDOR/$f" ] || skip "no $VENDOR/$f: enroot and pyxis are built from ../shared/vendor, which this checkout does not have"
  done
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null \
      || skip "apt-get could not install: ${missing[*]}"
  fi
  build_enroot || skip "enroot did not build from $VENDOR/enroot-src.tar.gz (log: $CACHE/enroot-build.log)"
  build_pyxis || skip "pyxis did not build from $VENDOR/pyxis-src.tar.gz (log: $CACHE/pyxis-build.log)"
  local image no_libc
  image=$(build_image) || skip "the Debian 12 image did not build (log: $CACHE/debootstrap.log)"
  no_libc=$(build_no_libc_image) || skip "the no-libc image did not build"
  mkdir -p "$ENV_DIR/pyxis-run"
  # All test "nodes" are this one machine: each node's enroot keeps its containers apart, as on separate
  # machines. pyxis passes enroot the job's environment but none of its ENROOT_* paths, so the paths go
  # in enroot's own config (whose values enroot evaluates), keyed by the node. No variable tells which:
  # pyxis calls enroot with the environment the step was launched with (one node list for a step over
  # several nodes), before slurmstepd adds SLURMD_NODENAME, and slurmd starts slurmstepd with an
  # environment of its own. What does tell: the slurmstepd above enroot holds its node's log open
  # (SlurmdLogFile=…/slurmd-%n.log), and `enroot-node` looks for it among enroot's ancestors.
  cat >"$ENV_DIR/enroot-node" <<'SH'
#!/bin/sh
# The test node this process runs under: the slurmd-NODE.log its nearest slurmstepd ancestor holds.
pid=$PPID
while [ "${pid:-1}" -gt 1 ]; do
  for fd in /proc/"$pid"/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    case $target in
      */slurmd-*.log) target=${target##*/slurmd-}; echo "${target%.log}"; exit 0 ;;
    esac
  done
  pid=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f2)
done
echo "${SLURM_STEP_NODELIST:-host}"
SH
  chmod 755 "$ENV_DIR/enroot-node"
  local conf=/usr/local/etc/enroot/enroot.conf
  sed -i '/^ENROOT_\(DATA\|RUNTIME\|CACHE\)_PATH /d; /^ENROOT_ROOTFS_WRITABLE /d; /srt-graph test cluster/d' "$conf"
  {
    echo "# srt-graph test cluster: one enroot per Slurm node"
    echo "ENROOT_DATA_PATH $ENV_DIR/enroot/\$($ENV_DIR/enroot-node)/data"
    echo "ENROOT_RUNTIME_PATH $ENV_DIR/enroot/\$($ENV_DIR/enroot-node)/run"
    echo "ENROOT_CACHE_PATH $ENV_DIR/enroot/\$($ENV_DIR/enroot-node)/cache"
    # The peer cluster (benches/peer) runs srtctl, whose nginx and scripts write into the image's own
    # directories, as GPU clusters' enroot configurations allow.
    if [ "${SLURM_NETNS:-0}" = 1 ]; then echo "ENROOT_ROOTFS_WRITABLE yes"; fi
  } >>"$conf"
  # A cluster comes up with no container on its nodes: what an earlier session's failed tests left
  # would otherwise be counted as this session's leftovers (the tests assert there are none).
  rm -rf "$ENV_DIR"/enroot/*/data/pyxis_*
  echo "required $CACHE/pyxis/spank_pyxis.so runtime_path=$ENV_DIR/pyxis-run" >"$ENV_DIR/plugstack.conf"
  {
    echo "PYXIS_SO=$CACHE/pyxis/spank_pyxis.so"
    echo "IMAGE=$image"
    echo "NO_LIBC_IMAGE=$no_libc"
  } >"$ENV_DIR/containers.env"
  echo "containers: enroot $(enroot version), pyxis, images $(basename "$image") $(basename "$no_libc")"
}

case "${1:-}" in
  up) up ;;
  *) echo "usage: $0 up ENV_DIR" >&2; exit 2 ;;
esac
