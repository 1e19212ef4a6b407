#!/usr/bin/env bash
# A real 4-node Slurm cluster on this one machine: munged, slurmctld and one slurmd per node
# (node1..node4), each node with its own loopback address 127.0.1.K as NodeAddr.
#
#   tests/env/slurm.sh up     install (apt) if needed, build enroot + pyxis + images (tests/env/containers.sh;
#                             SRT_GRAPH_CONTAINERS=0 skips), write the config under $SLURM_ENV, start, wait idle
#   tests/env/slurm.sh down   stop every daemon this script started (by the pids it recorded)
#
# State lives in $SLURM_ENV (default /tmp/srt-graph-slurm). Only root can run it (munge, slurmd).
#
# SLURM_NETNS=1 (benches/peer): each node in a network namespace of its own (srtg-nK, 10.78.0.K on the
# bridge srtg-br0, slurmctld on 10.78.0.254), as separate machines are: srtctl binds every worker and
# router to 0.0.0.0 on the same ports on every node, which one shared network stack cannot hold. The
# namespaces have no route out. The suite does not use it.
set -euo pipefail
ENV_DIR=${SLURM_ENV:-/tmp/srt-graph-slurm}
NODES=${SLURM_NODES:-4}
NETNS=${SLURM_NETNS:-0}

node_addr() { if [ "$NETNS" = 1 ]; then echo "10.78.0.$1"; else echo "127.0.1.$1"; fi; }
ctld_addr() { if [ "$NETNS" = 1 ]; then echo "10.78.0.254"; else echo "127.0.0.1"; fi; }

netns_up() {
  ip link show srtg-br0 >/dev/null 2>&1 || ip link add srtg-br0 type bridge
  ip addr replace 10.78.0.254/24 dev srtg-br0
  ip link set srtg-br0 up
  for k in $(seq 1 "$NODES"); do
    ip netns list | grep -qw "srtg-n$k" && continue
    ip netns add "srtg-n$k"
    ip link add "srtg-v$k" type veth peer name eth0 netns "srtg-n$k"
    ip link set "srtg-v$k" master srtg-br0 up
    ip -n "srtg-n$k" addr add "10.78.0.$k/24" dev eth0
    ip -n "srtg-n$k" link set eth0 up
    ip -n "srtg-n$k" link set lo up
  done
  # Node names resolve, as a cluster's DNS makes them (srtctl connects to `node1:4222`); removed by down.
  sed -i '/# srt-graph netns cluster$/d' /etc/hosts
  for k in $(seq 1 "$NODES"); do echo "10.78.0.$k node$k # srt-graph netns cluster" >>/etc/hosts; done
}

netns_down() {
  for k in $(seq 1 "$NODES"); do ip netns del "srtg-n$k" 2>/dev/null || true; done
  ip link del srtg-br0 2>/dev/null || true
  sed -i '/# srt-graph netns cluster$/d' /etc/hosts
}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "tests/env/slurm.sh: needs root (munged and slurmd run as root)" >&2
    exit 77
  fi
}

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
  fi
}

write_config() {
  local host cpus
  host=$(hostname)
  cpus=$(nproc)
  mkdir -p "$ENV_DIR"/{spool,state,log}
  {
    echo "ClusterName=srtgraph"
    echo "SlurmctldHost=$host($(ctld_addr))"
    echo "SlurmctldPort=16817"
    echo "SlurmctldPidFile=$ENV_DIR/slurmctld.pid"
    echo "SlurmctldLogFile=$ENV_DIR/log/slurmctld.log"
    echo "SlurmdPidFile=$ENV_DIR/slurmd-%n.pid"
    echo "SlurmdSpoolDir=$ENV_DIR/spool/slurmd-%n"
    echo "SlurmdLogFile=$ENV_DIR/log/slurmd-%n.log"
    echo "StateSaveLocation=$ENV_DIR/state"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "SlurmdParameters=config_overrides"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SchedulerType=sched/builtin"
    echo "ReturnToService=2"
    echo "MpiDefault=none"
    echo "KillWait=5"
    echo "InactiveLimit=0"
    echo "MinJobAge=600"
    for k in $(seq 1 "$NODES"); do
      echo "NodeName=node$k NodeHostname=$host NodeAddr=$(node_addr "$k") Port=$((17000 + k)) CPUs=$cpus RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=node[1-$NODES] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
    # pyxis, when tests/env/containers.sh could build it (srun then takes --container-image …).
    if [ -s "$ENV_DIR/plugstack.conf" ]; then echo "PlugStackConfig=$ENV_DIR/plugstack.conf"; fi
  } >"$ENV_DIR/slurm.conf"
  # The client tools (sbatch, srun, scontrol) read /etc/slurm/slurm.conf unless SLURM_CONF says otherwise;
  # tests export SLURM_CONF, so the machine's own configuration is never touched.
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then mungekey -c; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /etc/munge /var/log/munge /var/lib/munge /run/munge
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    echo "munge: already running (left alone)"
    return
  fi
  # munged writes its pid file as the munge user, so it goes in /run/munge; keep our own copy.
  rm -f /run/munge/srt-graph-munged.pid
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/srt-graph-munged.pid
  for _ in $(seq 50); do
    [ -s /run/munge/srt-graph-munged.pid ] && { cp /run/munge/srt-graph-munged.pid "$ENV_DIR/munged.pid"; break; }
    sleep 0.1
  done
}

up() {
  need_root
  install
  if [ -s "$ENV_DIR/slurmctld.pid" ] && kill -0 "$(cat "$ENV_DIR/slurmctld.pid")" 2>/dev/null; then
    echo "slurm: already up ($ENV_DIR)"
    return
  fi
  mkdir -p "$ENV_DIR"
  if [ "${SRT_GRAPH_CONTAINERS:-1}" != 0 ]; then
    bash "$(dirname "$0")/containers.sh" up "$ENV_DIR"
  else
    echo "SRT_GRAPH_CONTAINERS=0: no pyxis in this cluster" >"$ENV_DIR/containers.skip"
  fi
  write_config
  export SLURM_CONF=$ENV_DIR/slurm.conf
  start_munge
  if [ "$NETNS" = 1 ]; then netns_up; fi
  slurmctld -f "$SLURM_CONF" -i
  for k in $(seq 1 "$NODES"); do
    mkdir -p "$ENV_DIR/spool/slurmd-node$k"
    if [ "$NETNS" = 1 ]; then
      # nsenter, not `ip netns exec`: that remounts /sys, and slurmd needs the cgroup file system.
      nsenter --net="/run/netns/srtg-n$k" slurmd -f "$SLURM_CONF" -N "node$k"
    else
      slurmd -f "$SLURM_CONF" -N "node$k"
    fi
  done
  for _ in $(seq 100); do
    scontrol ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  scontrol update nodename="node[1-$NODES]" state=idle >/dev/null 2>&1 || true
  for _ in $(seq 150); do
    if [ "$(sinfo -h -t idle -o '%D' 2>/dev/null | head -1)" = "$NODES" ]; then
      echo "slurm: $NODES nodes idle (SLURM_CONF=$SLURM_CONF)"
      return
    fi
    scontrol update nodename="node[1-$NODES]" state=resume >/dev/null 2>&1 || true
    sleep 0.2
  done
  echo "slurm: nodes did not become idle:" >&2
  sinfo >&2 || true
  tail -20 "$ENV_DIR"/log/*.log >&2 || true
  exit 1
}

stop_pidfile() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  export SLURM_CONF=$ENV_DIR/slurm.conf
  if [ -f "$SLURM_CONF" ]; then scancel --user=root >/dev/null 2>&1 || true; fi
  for f in "$ENV_DIR"/slurmd-node*.pid; do stop_pidfile "$f"; done
  stop_pidfile "$ENV_DIR/slurmctld.pid"
  stop_pidfile "$ENV_DIR/munged.pid"
  if [ "$NETNS" = 1 ]; then netns_down; fi
  echo "slurm: down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
