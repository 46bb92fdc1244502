#!/usr/bin/env bash
# A real single-node SLURM cluster on this host, for the project's tests (run as root).
#
#   scripts/slurm-cluster.sh [start]   install if missing, configure, start, wait until the node is idle
#   scripts/slurm-cluster.sh stop      stop the daemons this script starts
#   scripts/slurm-cluster.sh status    one status line; exit 0 iff the node is usable
#
# Pieces: munged (auth), MariaDB + slurmdbd (accounting, so `sacct` works: submitit reads a job's
# state from sacct), slurmctld, slurmd. No systemd: every daemon is started directly, which also
# works in a container. No cgroups: proctrack/linuxproc + task/none.
# Set SLURM_ACCOUNTING=none to skip MariaDB/slurmdbd (then `sacct` fails and submitit reports
# job.state == "UNKNOWN"; job.result() still works since it only waits for the result file).
# Running `start` twice is harmless: running daemons are left alone, the node is only resumed.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # the daemons live in sbin, which sudo/CI PATHs may lack

ACTION=${1:-start}
ACCOUNTING=${SLURM_ACCOUNTING:-slurmdbd}
CLUSTER=langmix
PARTITION=debug
HOST=$(hostname -s)
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
SPOOL_D=/var/spool/slurmd
SPOOL_CTLD=/var/spool/slurmctld
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=langmix-slurmdbd
WAIT_S=${SLURM_WAIT_S:-60}

log() { echo "slurm-cluster: $*" >&2; }

die() {
    log "ERROR: $*"
    local f
    for f in "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log "$LOG_DIR"/slurmdbd.log \
             /var/log/mysql/error.log /var/log/munge/munged.log; do
        [[ -s $f ]] && { echo "---- tail $f" >&2; tail -n 25 "$f" >&2; }
    done
    exit 1
}

pid_alive() { local pid; pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

# Stop the daemon whose pid file is $1 (SIGTERM, then wait up to 10 s for it to exit).
stop_pidfile() {
    local pid i
    pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && kill "$pid" 2>/dev/null || return 0
    for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    log "pid $pid ($1) still running after 10 s"
}

apt_install() {
    log "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    local opts=(-o DPkg::Lock::Timeout=300 -y --no-install-recommends)
    apt-get "${opts[@]}" install "$@" >/dev/null 2>&1 || {
        apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
        apt-get "${opts[@]}" install "$@" >/dev/null
    }
}

install_packages() {
    local pkgs=()
    command -v slurmctld >/dev/null || pkgs+=(slurm-wlm)
    command -v munged >/dev/null || pkgs+=(munge)
    if [[ $ACCOUNTING == slurmdbd ]]; then
        command -v slurmdbd >/dev/null || pkgs+=(slurmdbd)
        command -v mariadbd >/dev/null || command -v mysqld >/dev/null || pkgs+=(mariadb-server)
    fi
    if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
}

# ---------------------------------------------------------------- munge
start_munge() {
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    local i
    for i in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.5
    done
    die "munge credentials do not round-trip"
}

# ---------------------------------------------------------------- MariaDB + slurmdbd
mysql_ping() { mysqladmin --protocol=socket ping >/dev/null 2>&1; }

start_mariadb() {
    install -d -o mysql -g mysql -m 0755 /run/mysqld /var/log/mysql
    if ! mysql_ping; then
        if [[ ! -d /var/lib/mysql/mysql ]]; then
            log "initialising MariaDB data directory"
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 \
                || die "mariadb-install-db failed"
        fi
        log "starting MariaDB"
        # --skip-networking: slurmdbd talks to it over the unix socket only.
        setsid nohup mysqld_safe --user=mysql --skip-networking --log-error=/var/log/mysql/error.log \
            >/dev/null 2>&1 < /dev/null &
        local i
        for i in $(seq 60); do mysql_ping && break; sleep 0.5; done
        mysql_ping || die "MariaDB did not start"
    fi
    mariadb --protocol=socket -uroot <<SQL || die "cannot create the accounting database"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
SQL
}

write_slurmdbd_conf() {
    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by scripts/slurm-cluster.sh
DbdHost=localhost
DbdPort=6819
SlurmUser=root
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=$DB_NAME
StorageUser=$DB_USER
StoragePass=$DB_PASS
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
EOF
    install -m 0600 -o root -g root "$tmp" "$CONF_DIR/slurmdbd.conf"
    rm -f "$tmp"
}

start_slurmdbd() {
    pid_alive "$RUN_DIR/slurmdbd.pid" && return
    log "starting slurmdbd"
    slurmdbd || die "slurmdbd did not start"
    local i
    for i in $(seq 60); do
        sacctmgr -n list cluster >/dev/null 2>&1 && return
        sleep 0.5
    done
    die "slurmdbd does not answer"
}

# ---------------------------------------------------------------- slurm.conf
render_slurm_conf() {
    local cpus mem_mb headroom real_mem acct
    cpus=$(nproc)
    mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
    headroom=$(( mem_mb / 10 > 512 ? mem_mb / 10 : 512 ))
    real_mem=$(( mem_mb - headroom ))
    if [[ $ACCOUNTING == slurmdbd ]]; then
        acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
    else
        acct="AccountingStorageType=accounting_storage/none"
    fi
    cat <<EOF
# Written by scripts/slurm-cluster.sh: a single-node test cluster on $HOST.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# No cgroups (containers): track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# Several 1-CPU jobs at once; memory is a consumable resource too.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
SchedulerType=sched/backfill
$acct
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
JobRequeue=1
ReturnToService=2
# Fast turnaround for tests.
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdSpoolDir=$SPOOL_D
StateSaveLocation=$SPOOL_CTLD
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

write_configs() {
    install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" "$SPOOL_D" "$SPOOL_CTLD"
    local tmp changed=1
    tmp=$(mktemp)
    render_slurm_conf >"$tmp"
    if [[ -f $CONF_DIR/slurm.conf ]] && cmp -s "$tmp" "$CONF_DIR/slurm.conf"; then changed=0; fi
    install -m 0644 "$tmp" "$CONF_DIR/slurm.conf"
    rm -f "$tmp"
    # 22.05 reads cgroup.conf when present; keep a harmless one (no cgroup plugin is configured).
    [[ -f $CONF_DIR/cgroup.conf ]] || printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' >"$CONF_DIR/cgroup.conf"
    [[ $ACCOUNTING == slurmdbd ]] && write_slurmdbd_conf
    if ((changed)) && (pid_alive "$RUN_DIR/slurmctld.pid" || pid_alive "$RUN_DIR/slurmd.pid"); then
        log "slurm.conf changed: restarting slurmctld/slurmd"
        stop_slurm_daemons
    fi
}

# ---------------------------------------------------------------- slurmctld + slurmd
stop_slurm_daemons() {
    local name
    for name in slurmd slurmctld; do stop_pidfile "$RUN_DIR/$name.pid"; done
}

start_slurm_daemons() {
    if ! pid_alive "$RUN_DIR/slurmctld.pid"; then
        log "starting slurmctld"
        slurmctld || die "slurmctld did not start"
    fi
    if ! pid_alive "$RUN_DIR/slurmd.pid"; then
        log "starting slurmd"
        slurmd || die "slurmd did not start"
    fi
}

node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n1; }

wait_idle() {
    local deadline=$(( SECONDS + WAIT_S )) state=""
    while (( SECONDS < deadline )); do
        state=$(node_state)
        case $state in
            idle|mixed|allocated|completing) return 0 ;;
            down*|drain*|drained*|fail*)
                scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    die "node $HOST is not idle after ${WAIT_S}s (state: '${state:-no answer}')"
}

status_line() {
    local state
    state=$(node_state)
    echo "slurm-cluster: cluster '$CLUSTER' node $HOST is ${state:-unreachable}" \
         "(partition $PARTITION, $(nproc) CPUs, accounting: $ACCOUNTING)"
    [[ $state =~ ^(idle|mixed|allocated|completing)$ ]]
}

# ---------------------------------------------------------------- actions
start() {
    [[ $EUID -eq 0 ]] || die "run as root"
    install_packages
    install -d -m 0755 "$LOG_DIR" "$RUN_DIR"
    start_munge
    write_configs
    if [[ $ACCOUNTING == slurmdbd ]]; then
        start_mariadb
        start_slurmdbd
        sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
    fi
    start_slurm_daemons
    wait_idle
    status_line
}

stop() {
    [[ $EUID -eq 0 ]] || die "run as root"
    stop_slurm_daemons
    stop_pidfile "$RUN_DIR/slurmdbd.pid"
    if command -v mysqladmin >/dev/null && mysql_ping; then
        mysqladmin --protocol=socket shutdown >/dev/null 2>&1 || true
    fi
    stop_pidfile /run/munge/munged.pid
    log "stopped"
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    status) status_line ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
