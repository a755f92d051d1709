"""A one-node Slurm cluster on localhost for the integration tests (Debian's ``slurm-wlm`` and ``munge``).

Everything lives in one temporary folder: a private munge daemon (its own key and socket), ``slurm.conf`` with
free ports, the controller and the node daemon. Commands find it through ``SLURM_CONF``. Starting takes well
under a second; :func:`start` returns None and a reason when it cannot (not root, Slurm not installed, a daemon
that does not come up), so the tests skip with that reason.
"""
import os
import shutil
import socket
import subprocess
import time

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(d, host, cpus):
    return f"""ClusterName=ci
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge/munge.sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=ci Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


class Cluster:
    def __init__(self, directory):
        self.dir = directory
        self.env = dict(os.environ, SLURM_CONF=os.path.join(directory, "slurm.conf"))

    def run(self, *cmd, check=True):
        r = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=60)
        if check and r.returncode:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
        return r.stdout

    def job_state(self, job):
        """``{job id: state}`` of the jobs (array tasks included) of ``job`` from ``scontrol show job``."""
        out = self.run("scontrol", "-o", "show", "job", str(job), check=False)
        states = {}
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            states[fields.get("JobId")] = fields.get("JobState")
        return states

    def stop(self):
        for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            try:
                with open(os.path.join(self.dir, pidfile)) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 15)
            except (OSError, ValueError):
                pass


def start(directory, cpus=2):
    """``(Cluster, None)`` or ``(None, why it cannot start here)``."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return None, f"Slurm is not installed ({', '.join(missing)} not found; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return None, "a private Slurm cluster needs root (slurmd runs jobs as their users)"
    d = directory
    for sub in ("state", "spool", "munge"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(os.path.join(d, "munge"), 0o700)
    key = os.path.join(d, "munge", "munge.key")
    with open(key, "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(key, 0o400)
    host = socket.gethostname().split(".")[0]
    with open(os.path.join(d, "slurm.conf"), "w") as f:
        f.write(_conf(d, host, cpus))
    cluster = Cluster(d)
    m = os.path.join(d, "munge")
    steps = [["munged", "--force", f"--socket={m}/munge.sock", f"--key-file={key}", f"--pid-file={m}/munged.pid",
              f"--log-file={m}/munged.log", f"--seed-file={m}/seed"], ["slurmctld", "-c"], ["slurmd", "-c"]]
    for cmd in steps:
        r = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=60)
        if r.returncode:
            cluster.stop()
            return None, f"{cmd[0]} did not start: {(r.stderr or r.stdout).strip()[:300]}"
    deadline = time.time() + 30
    while time.time() < deadline:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=cluster.env, capture_output=True, text=True)
        if r.returncode == 0 and "idle" in r.stdout:
            return cluster, None
        time.sleep(0.2)
    cluster.stop()
    return None, f"the Slurm node did not become idle within 30 s (logs in {d})"
