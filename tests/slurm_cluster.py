"""A real single-node SLURM for the tests: munged, slurmctld and slurmd on localhost from
Debian's ``slurm-wlm`` and ``munge``, every file (config, state, sockets, logs) in one folder,
and every daemon stopped by the pid it was started with.

Needs root (slurmd runs jobs as their user) and the packages (``tests/system_packages.sh``).
No accounting daemon: job states come from ``squeue`` while jobs live and from ``scontrol``
for ``MinJobAge`` seconds after (the executor is run with ``--slurm-status-command squeue``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")
#: Where srun looks without SLURM_CONF: Snakemake's job step drops every SLURM_* variable but a
#: few before it calls srun inside the job, so the test config is linked here while it runs.
SYSTEM_CONFIG = Path("/etc/slurm/slurm.conf")


def missing() -> str | None:
    """Why no cluster can start here, or ``None``."""
    absent = [name for name in DAEMONS if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed (tests/system_packages.sh installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "not root: slurmd must run as root to start jobs"
    if not Path("/etc/munge/munge.key").is_file():
        return "no /etc/munge/munge.key (the munge package creates it)"
    if SYSTEM_CONFIG.exists() or SYSTEM_CONFIG.is_symlink():
        return f"{SYSTEM_CONFIG} exists: a SLURM is configured on this machine, the test does not touch it"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; a process already gone is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once it is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Cluster:
    """``with Cluster(folder) as cluster:`` a one-node cluster; ``cluster.environ`` is the
    environment its client commands (and Snakemake's executor) need."""

    def __init__(self, folder: Path, cpus: int | None = None, memory_mb: int = 4000):
        self.folder = Path(folder)
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb
        self.pids: dict[str, int] = {}
        self.environ = dict(os.environ)
        self.linked = False

    def _write_config(self) -> Path:
        host = socket.gethostname()
        ctld, node = _free_ports(2)
        for name in ("state", "spool", "logs"):
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        config = self.folder / "slurm.conf"
        config.write_text("\n".join([
            "ClusterName=detstudy-test",
            f"SlurmctldHost={host}",
            "SlurmUser=root", "SlurmdUser=root",
            f"SlurmctldPort={ctld}", f"SlurmdPort={node}",
            "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={self.folder / 'munge.socket'}",
            f"StateSaveLocation={self.folder / 'state'}", f"SlurmdSpoolDir={self.folder / 'spool'}",
            f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}", f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.folder / 'logs' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.folder / 'logs' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/builtin", "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU_Memory",
            "ReturnToService=2", "MinJobAge=600", "SlurmdTimeout=60", "InactiveLimit=0", "KillWait=5",
            f"NodeName={host} CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        return config

    def _wait_for(self, what: str, check, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.3)
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (self.folder / "logs").glob("*.log"))
        raise RuntimeError(f"the test cluster's {what} did not come up within {timeout:.0f} s\n{logs}")

    def _pid(self, name: str) -> int:
        return int((self.folder / f"{name}.pid").read_text().split()[0])

    def start(self) -> "Cluster":
        config = self._write_config()
        self.environ["SLURM_CONF"] = str(config)
        SYSTEM_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONFIG.symlink_to(config)
        self.linked = True
        subprocess.run(["munged", "--force", f"--socket={self.folder / 'munge.socket'}",
                        f"--pid-file={self.folder / 'munged.pid'}", f"--log-file={self.folder / 'logs' / 'munged.log'}",
                        f"--seed-file={self.folder / 'munged.seed'}"], check=True, env=self.environ)
        self.pids["munged"] = self._pid("munged")
        subprocess.run(["slurmctld", "-f", str(config)], check=True, env=self.environ)
        self._wait_for("slurmctld", lambda: (self.folder / "slurmctld.pid").is_file())
        self.pids["slurmctld"] = self._pid("slurmctld")
        subprocess.run(["slurmd", "-f", str(config)], check=True, env=self.environ)
        self._wait_for("slurmd", lambda: (self.folder / "slurmd.pid").is_file())
        self.pids["slurmd"] = self._pid("slurmd")
        self._wait_for("node", self._node_idle, timeout=60)
        return self

    def _node_idle(self) -> bool:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.environ)
        return done.returncode == 0 and done.stdout.strip().startswith(("idle", "mix"))

    def stop(self) -> None:
        if self.linked:
            SYSTEM_CONFIG.unlink(missing_ok=True)
            self.linked = False
        for name in ("slurmd", "slurmctld", "munged"):  # the order they depend on each other
            pid = self.pids.pop(name, None)
            if pid is not None:
                _terminate(pid)

    def __enter__(self) -> "Cluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
