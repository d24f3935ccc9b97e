#!/usr/bin/env bash
# make test-slurm: the workflow on a real SLURM cluster, through
# snakemake-executor-plugin-slurm and the shipped profile (workflow/profiles/slurm),
# must write tables byte-identical to a local run of the same trial.
#
# Needs root and Debian's packages (slurm-wlm, munge), so it is not part of `make test`.
# It starts a one-node cluster of its own (munged, slurmctld, slurmd; every file in a
# temporary folder, no systemd), runs a small simulated trial locally and on the cluster,
# compares every table, and stops the daemons it started by their PID files, also when
# something fails.
#
#   PY        the Python of the ckpk environment (default .venv/bin/python)
#   SUBJECTS  subjects of the simulated trial (default 3)
#   KEEP=1    keep the temporary folder (logs of the daemons and of both runs)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
# Absolute (the runs start in folders of their own), without resolving the venv's link.
[[ $PY = /* ]] || PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
SUBJECTS=${SUBJECTS:-3}
WORK=$(mktemp -d /tmp/ckpk-slurm.XXXXXX)
SECONDS=0

say() { echo "test-slurm [${SECONDS}s]: $*"; }

stop_daemon() {  # pid file, name: TERM, then KILL after 10 s, so a stop never hangs
  local pidfile=$1 name=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { say "stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "killed $name (pid $pid) after 10 s"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -s "$WORK/slurmctld.pid" ]; then
    # Jobs first, so that no job step outlives its daemon.
    timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  stop_daemon "$WORK/slurmd.pid" slurmd
  stop_daemon "$WORK/slurmctld.pid" slurmctld
  stop_daemon "$WORK/munge/munged.pid" munged
  if [ "$status" -ne 0 ]; then
    for log in slurmctld.log slurmd.log cluster.log; do
      [ -f "$WORK/$log" ] && { echo "--- last lines of $WORK/$log"; tail -n 40 "$WORK/$log"; }
    done
  fi
  if [ "${KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
    say "files kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Packages: Debian's SLURM and munge, and the executor plugin in the ckpk environment.
[ "$(id -u)" = 0 ] || { echo "test-slurm: needs root (apt-get, SlurmUser=root)" >&2; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi
"$PY" -m pip install --quiet -c "$ROOT/constraints.txt" snakemake-executor-plugin-slurm
say "$(slurmctld -V), $("$PY" -m pip show snakemake-executor-plugin-slurm | grep ^Version)"

# 2. A one-node cluster. munged gets its own socket and PID file here, so it neither
# needs nor disturbs a munged of the machine; /etc/munge/munge.key comes with the package.
mkdir -p "$WORK/munge" "$WORK/state" "$WORK/spool"
chmod 700 "$WORK/munge"
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 \
  of=/etc/munge/munge.key 2>/dev/null; chmod 400 /etc/munge/munge.key; }
/usr/sbin/munged --force --socket="$WORK/munge/munge.socket" \
  --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" \
  --seed-file="$WORK/munge/munged.seed" --key-file=/etc/munge/munge.key

# slurmctld compares SlurmctldHost with the short host name.
HOST=$(uname -n)
HOST=${HOST%%.*}
CPUS=$(nproc)
# RealMemory a little under the machine's, or slurmd refuses the node.
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
# Ports apart from SLURM's defaults (6817/6818), in case the machine runs one already.
cat > "$WORK/slurm.conf" <<EOF
ClusterName=ckpktest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
# No cgroups and no accounting database in a container: track processes by their
# parent, bind nothing, account nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without sacct the plugin asks squeue, which forgets a job MinJobAge seconds after it
# ended; keep that far above the plugin's first status check.
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=ckpk-node NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=standard Nodes=ckpk-node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$WORK/slurm.conf
# Inside a job the executor plugin calls srun with every SLURM_* variable removed, so
# srun looks for /etc/slurm/slurm.conf, which a real cluster has. This one's config
# stays in $WORK: a srun first on PATH passes it on.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v srun)" \
  > "$WORK/bin/srun"
chmod +x "$WORK/bin/srun"
export PATH="$WORK/bin:$PATH"
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF" -N ckpk-node
for _ in $(seq 1 100); do
  sinfo -h -N -o '%T' 2>/dev/null | grep -q '^idle' && break
  sleep 0.2
done
sinfo -h -N -o '%T' | grep -q '^idle' || { echo "test-slurm: the node did not come up" >&2; exit 1; }
say "cluster up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T')"

# 3. One small simulated trial, run locally and on the cluster, each from its own
# working folder (Snakemake's state is per folder).
"$PY" -m ckpk.cli simulate "$WORK/trial" --subjects "$SUBJECTS" --events 2000 --seed 16
CONFIG=("input_dir=$WORK/trial" "flow={qc_plots: false}")
mkdir -p "$WORK/run-local" "$WORK/run-cluster"
say "local run"
(cd "$WORK/run-local" && "$PY" -m snakemake -s "$ROOT/Snakefile" --cores 2 \
  --config "${CONFIG[@]}" "results_dir=$WORK/local" > "$WORK/local.log" 2>&1) \
  || { tail -n 40 "$WORK/local.log"; exit 1; }
say "cluster run (executor slurm, profile workflow/profiles/slurm)"
# Settings of this test cluster only: no accounting database, so no account and squeue
# for job status (sacct fails without one and the plugin would wait forever); the first
# status check after 1 s instead of 40 (MinJobAge above is far longer).
(cd "$WORK/run-cluster" && "$PY" -m snakemake -s "$ROOT/Snakefile" \
  --profile "$ROOT/workflow/profiles/slurm" \
  --slurm-no-account --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 1 --slurm-keep-successful-logs \
  --config "${CONFIG[@]}" "results_dir=$WORK/cluster" > "$WORK/cluster.log" 2>&1)
grep -q "jobs submitted\|Submitted .*job\|SLURM run ID" "$WORK/cluster.log" \
  || { echo "test-slurm: the run did not go through SLURM" >&2; exit 1; }

# 4. Every table of the local run, byte for byte, and no other table. logs/ holds each
# job's own measurements (time, memory), which differ from run to run by nature.
(cd "$WORK/local" && find . -path ./logs -prune -o -name '*.tsv' -print | sort) \
  > "$WORK/local.tables"
(cd "$WORK/cluster" && find . -path ./logs -prune -o -name '*.tsv' -print | sort) \
  > "$WORK/cluster.tables"
diff "$WORK/local.tables" "$WORK/cluster.tables" \
  || { echo "test-slurm: the two runs wrote different tables" >&2; exit 1; }
while read -r table; do
  cmp "$WORK/local/$table" "$WORK/cluster/$table"
done < "$WORK/local.tables"
say "$(wc -l < "$WORK/local.tables") tables byte-identical to the local run"
# What the profile's groups and resources made of the run (MinJobAge keeps the ended
# jobs listed).
say "cluster jobs: $(grep -c 'has been submitted with SLURM jobid' "$WORK/cluster.log") for $(
  grep '^Finished jobid' "$WORK/cluster.log" | grep -vc 'Rule: all)') Snakemake jobs"
scontrol -o show job | sed -E 's/^JobId=([0-9]+) .* JobState=([^ ]*).* TimeLimit=([^ ]*).* NumCPUs=([^ ]*).* MinMemoryNode=([^ ]*).* Comment=([^ ]*).*/  job \1 \6: \2, time limit \3, \4 CPU(s), \5 memory/'
echo "test-slurm: passed"
