#!/usr/bin/env bash
# Runs a small folkrnn-lens analysis on a real SLURM scheduler and checks that it
# gives the same bytes as local runs with -j 1 and -j 2.
#
#   bash tests/slurm/run_local_slurm.sh      (as root, from any directory)
#
# It installs Debian's SLURM (slurm-wlm's daemons and clients) and munge if
# missing, and the SLURM executor plugin if the Python environment lacks it; starts
# a one-node cluster of this machine's cores and memory with its state, logs, munge
# key and socket under a temporary folder, on free ports (its slurm.conf is linked
# from /etc/slurm/slurm.conf while it runs: the test refuses to start if that file
# exists); runs the analysis with `snakemake --executor slurm --profile
# workflow/profiles/slurm`; compares the SHA-256 of every file under
# results/{transcriptions,corpus,models} with local runs; counts the jobs SLURM
# accepted; and stops every daemon it started, however it ends.
# FOLKRNN_LENS_SLURM_KEEP=1 keeps the temporary folder (logs, results) for a look.
#
# The cluster has no accounting database (AccountingStorageType=none), so the
# executor is told to poll job states with squeue (--slurm-status-command squeue)
# and to submit without an account (--slurm-no-account); a real cluster keeps the
# plugin's defaults (sacct, the user's account).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
started=$SECONDS
say() { printf '[slurm-test %4ds] %s\n' $((SECONDS - started)) "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "run as root: it installs packages and starts munged, slurmctld and slurmd" >&2
    exit 2
fi

# The Python environment: $PYTHON, the active one, else the repository's .venv.
if [[ -n "${PYTHON:-}" ]]; then
    :
elif [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PYTHON="$ROOT/.venv/bin/python"
else
    PYTHON="$(command -v python3)"
fi

# --- install -------------------------------------------------------------------
# slurm-wlm's daemons and clients (without its many optional plugins), and munge.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
    ! command -v munged >/dev/null; then
    say "installing slurmctld, slurmd, slurm-client and munge from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
if ! "$PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    say "installing the SLURM executor plugin (the project's 'cluster' extra)"
    "$PYTHON" -m pip install --quiet "snakemake-executor-plugin-slurm>=2.8"
fi
say "$(slurmctld -V), plugin $("$PYTHON" -c 'from importlib.metadata import version; print(version("snakemake-executor-plugin-slurm"))')"

# --- cluster under a temporary folder --------------------------------------------
# Its slurm.conf must also be at SLURM's default path for the duration: the
# executor's job step (snakemake-executor-plugin-slurm-jobstep) removes SLURM_CONF
# from the environment of the `srun` it runs inside every job.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [[ -L "$DEFAULT_CONF" && ! -e "$DEFAULT_CONF" && "$(readlink "$DEFAULT_CONF")" == /tmp/folkrnn-slurm.* ]]; then
    rm -f "$DEFAULT_CONF" # left by a run of this test that was killed
fi
if [[ -e "$DEFAULT_CONF" || -L "$DEFAULT_CONF" ]]; then
    echo "$DEFAULT_CONF exists (a SLURM installation, or this test running): not starting another cluster" >&2
    exit 2
fi
TMP="$(mktemp -d /tmp/folkrnn-slurm.XXXXXX)"
chmod 755 "$TMP"
mkdir -p "$TMP"/{munge,state,spool,log}
chmod 711 "$TMP/munge" # munged wants it traversable by all, writable by root only
export SLURM_CONF="$TMP/slurm.conf"

SNAKEMAKE_PID=
stop_cluster() {
    local status=$?
    set +e
    if [[ -n "$SNAKEMAKE_PID" ]] && kill -0 "$SNAKEMAKE_PID" 2>/dev/null; then
        kill "$SNAKEMAKE_PID" # interrupted: stop the snakemake this script started
        for _ in $(seq 50); do kill -0 "$SNAKEMAKE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SNAKEMAKE_PID" 2>/dev/null
    fi
    if [[ -f "$TMP/slurmctld.pid" ]]; then
        # cancel what is left, and let slurmd see its job steps end
        squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null
        for _ in $(seq 60); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.5; done
    fi
    for daemon in slurmd slurmctld munged; do
        local pidfile="$TMP/$daemon.pid"
        [[ -f "$pidfile" ]] || continue
        local pid
        pid="$(cat "$pidfile")"
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    done
    [[ "$(readlink "$DEFAULT_CONF")" == "$SLURM_CONF" ]] && rm -f "$DEFAULT_CONF"
    if [[ $status -ne 0 ]]; then
        for log in "$TMP"/log/slurmctld.log "$TMP"/log/slurmd.log; do
            [[ -f "$log" ]] && { echo "--- tail of $log"; tail -n 20 "$log"; }
        done
    fi
    if [[ "${FOLKRNN_LENS_SLURM_KEEP:-0}" == 1 ]]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    say "cluster stopped"
    exit $status
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

read -r CTLD_PORT SLURMD_PORT < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
HOST="$(hostname -s)"
# This machine as slurmd sees it: CPUs, sockets, cores, threads, memory.
NODE="$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')"

cat >"$SLURM_CONF" <<EOF
ClusterName=folkrnn
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$TMP/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/log/slurmctld.log
SlurmdLogFile=$TMP/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$TMP/log/jobcomp.txt
MpiDefault=none
ReturnToService=2
# squeue must still see a finished job when the executor polls
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 $NODE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

mkdir -p "$(dirname "$DEFAULT_CONF")"
ln -s "$SLURM_CONF" "$DEFAULT_CONF"

mungekey --create --keyfile="$TMP/munge/munge.key" --force
munged --key-file="$TMP/munge/munge.key" --socket="$TMP/munge/munge.socket" \
    --pid-file="$TMP/munged.pid" --log-file="$TMP/log/munged.log" \
    --seed-file="$TMP/munge/munged.seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$HOST"

for _ in $(seq 120); do
    state="$(sinfo -h -N -o %T 2>/dev/null || true)"
    [[ "$state" == idle ]] && break
    sleep 0.5
done
[[ "$state" == idle ]] || { echo "node did not become idle (state: '$state')" >&2; exit 1; }
say "one-node cluster up: $HOST, $NODE"

# --- the analysis ----------------------------------------------------------------
DATA="$TMP/data"
mkdir -p "$DATA"
cat >"$DATA/tunes.abc" <<'EOF'
X:7
T:Test Reel
M:4/4
L:1/8
K:D
FAAB AFED|FAAB A2de|fded cAGE|1 FDEC D4:|2 FDEC D2de||
EOF
cat >"$DATA/config.yaml" <<EOF
model:
  file: untrained
  untrained:
    n_layers: 3
    n_units: 16
    seed: 3
    vocabulary_corpora: [mini]
    vocabulary_files: [$ROOT/resources/data_v2_excerpt.txt]
corpora:
  mini: {sources: [$DATA/tunes.abc]}
transcriptions:
  reel: {abc: $DATA/tunes.abc, x: 7}
  excerpt_3: {tokens: $ROOT/resources/data_v2_excerpt.txt, index: 3}
  excerpt_5: {tokens: $ROOT/resources/data_v2_excerpt.txt, index: 5}
  gen: {generate: {seed: 4, temperature: 1.0, max_length: 50}}
record: {layers: [1, 3], quantities: [h, c, f]}
torch_threads: 1
EOF

run_snakemake() {
    local dir="$1"
    shift
    mkdir -p "$dir"
    cp "$DATA/config.yaml" "$dir/config.yaml"
    # in the background, so that a signal to this script is handled at once
    "$PYTHON" -m snakemake -s "$ROOT/Snakefile" -d "$dir" "$@" >"$dir.log" 2>&1 &
    SNAKEMAKE_PID=$!
    wait "$SNAKEMAKE_PID" || {
        tail -n 60 "$dir.log"
        echo "snakemake $* failed in $dir" >&2
        return 1
    }
    SNAKEMAKE_PID=
}

say "running through SLURM"
slurm_start=$SECONDS
run_snakemake "$TMP/run_slurm" --profile "$ROOT/workflow/profiles/slurm" --executor slurm --latency-wait 5 \
    --slurm-no-account --slurm-status-command squeue --slurm-init-seconds-before-status-checks 2
slurm_wall=$((SECONDS - slurm_start))
submitted="$(grep -c '_slurm_rpc_submit_batch_job: JobId=' "$TMP/log/slurmctld.log" || true)"
completed="$(grep -c 'JobState=COMPLETED' "$TMP/log/jobcomp.txt" || true)"
rule_jobs="$(grep -A20 '^Job stats:' "$TMP/run_slurm.log" | awk '$1 == "total" {print $2; exit}')"
say "SLURM run: ${slurm_wall}s wall, $rule_jobs rule jobs in $submitted sbatch submissions ($completed completed)"
sed -n 's/.*JobId=\([0-9]*\) UserId=[^ ]* GroupId=[^ ]* Name=\([^ ]*\) JobState=\([A-Z]*\).*NodeList=\([^ ]*\).*/  job \1 \3 on \4/p' \
    "$TMP/log/jobcomp.txt"

for jobs in 1 2; do
    say "running locally with -j $jobs"
    local_start=$SECONDS
    run_snakemake "$TMP/run_j$jobs" -j "$jobs"
    say "local -j $jobs: $((SECONDS - local_start))s wall"
done

# --- the same bytes? ---------------------------------------------------------------
for run in run_slurm run_j1 run_j2; do
    (cd "$TMP/$run" && find results/transcriptions results/corpus results/models -type f -print0 |
        sort -z | xargs -0 sha256sum) >"$TMP/$run.sha256"
done
n_files="$(wc -l <"$TMP/run_j1.sha256")"
diff -u "$TMP/run_j1.sha256" "$TMP/run_j2.sha256"
diff -u "$TMP/run_j1.sha256" "$TMP/run_slurm.sha256"
[[ "$n_files" -ge 14 ]] || { echo "expected at least 14 result files, found $n_files" >&2; exit 1; }
[[ "$submitted" -ge 1 && "$completed" == "$submitted" ]] ||
    { echo "SLURM accepted $submitted jobs, completed $completed" >&2; exit 1; }

say "PASS: $n_files result files identical (SLURM, -j 1, -j 2); SLURM wall ${slurm_wall}s, $submitted jobs submitted"
