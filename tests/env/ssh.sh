#!/usr/bin/env bash
# Several real OpenSSH "hosts" on this machine: one sshd per loopback address 127.0.1.K (K = 1..N), each
# with its own host key, key-only login for root with a generated user key.
#
#   tests/env/ssh.sh up     install (apt) if needed, generate keys and configs under $SSH_ENV, start
#   tests/env/ssh.sh down   stop the sshd instances this script started (by their pid files)
#
# $SSH_ENV/ssh_config names the hosts h1..hN (plus `badkey`, whose host key is not the one on record, and
# `noauth`, whose user key is not authorised) for `ssh -F` / `srt-graph run --ssh-config`. Nothing under
# ~/.ssh or /etc/ssh is touched. Every sshd logs to $SSH_ENV/sshd-K.log (one "Accepted" line per
# connection, which is how tests count connections).
set -euo pipefail
ENV_DIR=${SSH_ENV:-/tmp/srt-graph-ssh}
HOSTS=${SSH_HOSTS:-4}

up() {
  if [ "$(id -u)" != 0 ]; then
    echo "tests/env/ssh.sh: needs root (sshd)" >&2
    exit 77
  fi
  if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server openssh-client >/dev/null
  fi
  mkdir -p "$ENV_DIR" /run/sshd
  chmod 700 "$ENV_DIR"
  [ -f "$ENV_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$ENV_DIR/id_ed25519"
  [ -f "$ENV_DIR/wrong_id" ] || ssh-keygen -q -t ed25519 -N '' -f "$ENV_DIR/wrong_id"
  [ -f "$ENV_DIR/other_host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$ENV_DIR/other_host_key"
  cp "$ENV_DIR/id_ed25519.pub" "$ENV_DIR/authorized_keys"
  chmod 600 "$ENV_DIR/authorized_keys"
  : >"$ENV_DIR/known_hosts"
  : >"$ENV_DIR/ssh_config"
  for k in $(seq 1 "$HOSTS"); do
    local addr=127.0.1.$k
    [ -f "$ENV_DIR/host_key_$k" ] || ssh-keygen -q -t ed25519 -N '' -f "$ENV_DIR/host_key_$k"
    cat >"$ENV_DIR/sshd_$k.conf" <<EOF
ListenAddress $addr
Port 22
HostKey $ENV_DIR/host_key_$k
PidFile $ENV_DIR/sshd-$k.pid
AuthorizedKeysFile $ENV_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
AcceptEnv LANG
Subsystem sftp internal-sftp
EOF
    echo "$addr $(cut -d' ' -f1-2 "$ENV_DIR/host_key_$k.pub")" >>"$ENV_DIR/known_hosts"
    cat >>"$ENV_DIR/ssh_config" <<EOF
Host h$k
  HostName $addr
  User root
  IdentityFile $ENV_DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $ENV_DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes

EOF
    if [ -s "$ENV_DIR/sshd-$k.pid" ] && kill -0 "$(cat "$ENV_DIR/sshd-$k.pid")" 2>/dev/null; then
      continue
    fi
    /usr/sbin/sshd -f "$ENV_DIR/sshd_$k.conf" -E "$ENV_DIR/sshd-$k.log"
  done
  # A host whose key does not match the record, and one that does not accept our key.
  cat >>"$ENV_DIR/ssh_config" <<EOF
Host badkey
  HostName 127.0.1.1
  User root
  IdentityFile $ENV_DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $ENV_DIR/known_hosts_bad
  StrictHostKeyChecking yes
  BatchMode yes

Host noauth
  HostName 127.0.1.1
  User root
  IdentityFile $ENV_DIR/wrong_id
  IdentitiesOnly yes
  UserKnownHostsFile $ENV_DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
  echo "127.0.1.1 $(cut -d' ' -f1-2 "$ENV_DIR/other_host_key.pub")" >"$ENV_DIR/known_hosts_bad"
  for k in $(seq 1 "$HOSTS"); do
    for _ in $(seq 50); do
      ssh -F "$ENV_DIR/ssh_config" "h$k" true 2>/dev/null && break
      sleep 0.1
    done
    ssh -F "$ENV_DIR/ssh_config" "h$k" true
  done
  echo "ssh: $HOSTS hosts up (ssh -F $ENV_DIR/ssh_config h1..h$HOSTS)"
}

down() {
  for f in "$ENV_DIR"/sshd-*.pid; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
  echo "ssh: down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
