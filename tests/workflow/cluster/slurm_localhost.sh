#!/usr/bin/env bash
# A single-node SLURM on this machine, for testing profiles/slurm against a real scheduler (tests/workflow/test_slurm.py).
#
#   tests/workflow/cluster/slurm_localhost.sh start DIR    # write the config into DIR, start munged, slurmctld, slurmd;
#                                                 # returns once the node is idle
#   tests/workflow/cluster/slurm_localhost.sh status DIR   # exit 0 if our daemons run and the node answers
#   tests/workflow/cluster/slurm_localhost.sh stop DIR     # stop what `start DIR` started, by PID
#
# Needs root and the Debian packages: apt-get install -y --no-install-recommends slurm-wlm munge
# No systemd, no accounting database, no cgroups: everything lives in DIR (config, state, spool, logs, pids),
# except /etc/slurm/slurm.conf, which must be a symlink to DIR/slurm.conf because the SLURM executor plugin's job
# step drops SLURM_CONF from the environment (srun then finds no configuration). The node offers $(nproc) CPUs
# and 80% of the memory, and no GPU, like most clusters' CPU partitions: sbatch refuses a job that asks for one.
# With SLURM_TEST_GPUS=1 in the environment of `start`, it also offers one count-only "gpu" GRES (no device
# behind it), so that a job asking --gpus=1 is scheduled as on a GPU node; such a job still computes on the CPU.
set -euo pipefail

SLURM_CONF_LINK=/etc/slurm/slurm.conf
SBIN=/usr/sbin

die() {
  echo "slurm_localhost.sh: $*" >&2
  exit 1
}

usage() {
  die "usage: $0 start|stop|status DIR"
}

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

pid_in() { if [[ -s "$1" ]]; then cat "$1"; fi; }

munge_works() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

node_state() { timeout 10 sinfo -h -o %T 2>/dev/null | head -n 1 || true; }

check_installed() {
  local missing=()
  for exe in "$SBIN/slurmctld" "$SBIN/slurmd" "$SBIN/munged"; do
    [[ -x "$exe" ]] || missing+=("$exe")
  done
  for cmd in sbatch squeue sinfo munge unmunge; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  ((${#missing[@]} == 0)) ||
    die "not installed: ${missing[*]}; install with: apt-get install -y --no-install-recommends slurm-wlm munge"
  [[ $(id -u) -eq 0 ]] || die "must run as root (it starts munged and the SLURM daemons, writes $SLURM_CONF_LINK)"
}

write_config() {
  local dir=$1 host cpus mem_mb gres="" gres_types="# no GresTypes: no GPU on this node"
  host=$(hostname -s)
  cpus=$(nproc)
  if [[ ${SLURM_TEST_GPUS:-0} == 1 ]]; then
    gres=" Gres=gpu:1"
    gres_types="GresTypes=gpu"
  fi
  # Below the machine's memory, or slurmd reports "Low RealMemory" and the node drains.
  mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
  mkdir -p "$dir/state" "$dir/spool"
  cat >"$dir/slurm.conf" <<EOF
# Written by tests/workflow/cluster/slurm_localhost.sh: one node on localhost, no accounting, no cgroups.
ClusterName=vaepipe-localhost
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
# Finished jobs stay visible to squeue for an hour: the plugin's squeue status checks (no sacct here) and the
# test's final check of every job rely on it.
MinJobAge=3600
${gres_types}
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb}${gres} State=UNKNOWN
PartitionName=localhost Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if [[ -n $gres ]]; then
    # slurmd drops a GPU without a device file, so an empty regular file stands in for one. Without cgroups
    # nothing is bound to the job: the GRES only makes --gpus=1 schedulable.
    : >"$dir/fake-gpu0"
    printf 'NodeName=%s Name=gpu File=%s\n' "$host" "$dir/fake-gpu0" >"$dir/gres.conf"
  else
    : >"$dir/gres.conf"
  fi
}

link_config() {
  local dir=$1 target
  mkdir -p "$(dirname "$SLURM_CONF_LINK")"
  for name in slurm.conf gres.conf; do
    local link=/etc/slurm/$name
    if [[ -L $link ]]; then
      target=$(readlink "$link")
      # A link left by an earlier run whose daemons are gone is ours to replace; a live one is not.
      if [[ $target != "$dir/$name" ]] && alive "$(pid_in "$(dirname "$target")/slurmctld.pid")"; then
        die "$link points to $target, whose slurmctld still runs; stop it first: $0 stop $(dirname "$target")"
      fi
    elif [[ -e $link ]]; then
      die "$link exists and is not a link from this script; move it away to run a test cluster here"
    fi
    ln -sfn "$dir/$name" "$link"
  done
}

start_munge() {
  local dir=$1
  if munge_works; then
    return # a munged that someone else started (or ours from an earlier start) serves us as well
  fi
  [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing; create it with: mungekey --create"
  install -d -o munge -g munge -m 0755 /run/munge
  setpriv --reuid=munge --regid=munge --init-groups "$SBIN/munged" ||
    die "munged did not start (see /var/log/munge/munged.log)"
  cp /run/munge/munged.pid "$dir/munged.pid" # ours to stop
  for _ in $(seq 50); do
    munge_works && return
    sleep 0.1
  done
  die "munged runs but 'munge -n | unmunge' fails (see /var/log/munge/munged.log)"
}

start() {
  local dir=$1
  check_installed
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  if alive "$(pid_in "$dir/slurmctld.pid")" && alive "$(pid_in "$dir/slurmd.pid")"; then
    echo "SLURM from $dir already runs (node: $(node_state))"
    return
  fi
  local others
  others=$({ pgrep -x slurmctld || true; pgrep -x slurmd || true; } | tr '\n' ' ')
  [[ -z $others ]] || die "another slurmctld/slurmd runs on this machine (pids: $others); stop it first"
  write_config "$dir"
  link_config "$dir"
  start_munge "$dir"
  "$SBIN/slurmctld" -f "$dir/slurm.conf" || die "slurmctld did not start; see $dir/slurmctld.log"
  "$SBIN/slurmd" -f "$dir/slurm.conf" || die "slurmd did not start; see $dir/slurmd.log"
  local state=""
  for _ in $(seq 60); do
    state=$(node_state)
    case $state in
    idle*)
      echo "SLURM up: node $(hostname -s) idle, config $dir/slurm.conf"
      return
      ;;
    inval* | drain*)
      die "the node is '$state': $(scontrol show node | grep -o 'Reason=.*' || true); see $dir/slurmctld.log"
      ;;
    esac
    sleep 1
  done
  die "the node did not become idle within 60 s (sinfo says '${state:-nothing}');" \
    "see $dir/slurmctld.log and $dir/slurmd.log"
}

stop_pid() {
  local name=$1 pid=$2
  alive "$pid" || return 0
  kill "$pid"
  for _ in $(seq 100); do
    alive "$pid" || return 0
    sleep 0.1
  done
  echo "slurm_localhost.sh: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  local dir=$1
  [[ -d $dir ]] || die "$dir does not exist: nothing to stop"
  dir=$(cd "$dir" && pwd -P)
  stop_pid slurmd "$(pid_in "$dir/slurmd.pid")"
  stop_pid slurmctld "$(pid_in "$dir/slurmctld.pid")"
  stop_pid munged "$(pid_in "$dir/munged.pid")"
  rm -f "$dir/munged.pid"
  for name in slurm.conf gres.conf; do
    if [[ -L /etc/slurm/$name && $(readlink "/etc/slurm/$name") == "$dir/$name" ]]; then
      rm -f "/etc/slurm/$name"
    fi
  done
  echo "SLURM from $dir stopped"
}

status() {
  local dir=$1
  dir=$(cd "$dir" && pwd -P) || die "$1 does not exist"
  alive "$(pid_in "$dir/slurmctld.pid")" || die "slurmctld of $dir does not run"
  alive "$(pid_in "$dir/slurmd.pid")" || die "slurmd of $dir does not run"
  echo "node $(hostname -s): $(node_state)"
}

(($# == 2)) || usage
case $1 in
start) start "$2" ;;
stop) stop "$2" ;;
status) status "$2" ;;
*) usage ;;
esac
