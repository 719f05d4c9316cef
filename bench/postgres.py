"""PostgreSQL servers of one's own on this machine, for the scale drill and the tests: a primary
(`initdb`), a streaming replica of it (`pg_basebackup -R`), and PgBouncer in transaction pooling
in front. Each lives in a folder of its own on a port of its own and is stopped when done.

PostgreSQL and PgBouncer refuse to run as root: as root, their programs run as `postgres`."""

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"


def pg_bin(program: str) -> str:
    """A PostgreSQL server program, from the newest version installed (Debian's layout)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL's server programs are not installed (postgresql-15)")
    return str(versions[-1] / program)


def pgbouncer_program() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )


def apt_install(package: str) -> None:
    """Installs one of Debian's packages with apt-get."""
    print(f"installing {package} (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_pgbouncer() -> str:
    """PgBouncer's program, installed with apt-get (Debian's package) when it is missing."""
    program = pgbouncer_program()
    if program is None:
        apt_install("pgbouncer")
        program = pgbouncer_program()
    if program is None:
        raise RuntimeError("pgbouncer could not be installed")
    return program


def as_server_user(command: list[str], user: str = SERVER_USER) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if os.geteuid() == 0 else command


def server_folder(prefix: str, user: str = SERVER_USER) -> Path:
    """An empty folder the server programs (run as `user`, as root) may write in."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(folder, user, user)
    return folder


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Cluster:
    """A PostgreSQL server on 127.0.0.1:`port`, its data in `data` (sockets there too)."""

    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            as_server_user([pg_bin("pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        # The port on the command line: a replica's copied configuration names its primary's.
        self.pg_ctl("-w", "-t", "60", "-l", str(self.log), "-o", f"-p {self.port}", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop_quietly(self) -> None:
        with suppress(Exception):
            if self.running():
                self.stop("immediate")


def initdb(folder: Path, port: int, **settings: str) -> Cluster:
    """A new primary, started: UTC, WAL for a replica, loopback only, trust for local users
    (this machine's drills only); `settings` are added to postgresql.conf."""
    cluster = Cluster(folder / "primary", port)
    subprocess.run(
        as_server_user(
            [
                pg_bin("initdb"),
                "-D",
                str(cluster.data),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    conf = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{folder}'",
        "timezone": "'UTC'",
        "wal_level": "replica",
        "max_wal_senders": "4",
        "hot_standby": "on",
        **settings,
    }
    with open(cluster.data / "postgresql.conf", "a") as out:
        out.writelines(f"{name} = {value}\n" for name, value in conf.items())
    cluster.start()
    return cluster


def basebackup(primary: Cluster, folder: Path, port: int) -> Cluster:
    """A streaming replica of `primary` (`pg_basebackup -R`, WAL streamed), started."""
    replica = Cluster(folder / "replica", port)
    subprocess.run(
        as_server_user(
            [
                pg_bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                SERVER_USER,
                "-D",
                str(replica.data),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
            ]
        ),
        check=True,
    )
    with open(replica.data / "postgresql.conf", "a") as out:
        out.write(f"port = {port}\n")
    replica.start()
    return replica


@dataclass
class Bouncer:
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin_url(self) -> str:
        return self.url("pgbouncer")


@contextmanager
def pgbouncer(
    folder: Path,
    port: int,
    databases: dict[str, str],
    *,
    user: str = SERVER_USER,
    run_as: str = SERVER_USER,
    **settings,
):
    """PgBouncer on 127.0.0.1:`port`, transaction pooling, for `databases` (name: libpq
    connection string, `*` for any other name), trusting `user` (also its admin); run as
    `run_as` when root (one who may reach the servers' sockets); stopped on exit. `settings`
    override the [pgbouncer] section's."""
    program = ensure_pgbouncer()
    ini = folder / "pgbouncer.ini"
    users = folder / "userlist.txt"
    users.write_text(f'"{user}" ""\n')
    options = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "trust",
        "auth_file": str(users),
        "admin_users": user,
        "pool_mode": "transaction",
        "default_pool_size": "20",
        "max_client_conn": "1000",
        # A server that cannot be reached fails a waiting query within seconds (the service
        # answers 503) instead of holding it for PgBouncer's default two minutes.
        "query_wait_timeout": "5",
        "server_connect_timeout": "3",
        "server_login_retry": "1",
        "ignore_startup_parameters": "extra_float_digits",
        "logfile": str(folder / "pgbouncer.log"),
        "pidfile": str(folder / "pgbouncer.pid"),
        **settings,
    }
    # Every server session starts in UTC, whatever its server's default (Django sets UTC on its
    # connections too, and PgBouncer carries that setting to whichever session serves them).
    utc = "connect_query='SET timezone TO UTC'"
    lines = ["[databases]", *(f"{name} = {dsn} {utc}" for name, dsn in databases.items())]
    lines += ["[pgbouncer]", *(f"{name} = {value}" for name, value in options.items())]
    ini.write_text("\n".join(lines) + "\n")
    if os.geteuid() == 0:
        for path in (ini, users):
            shutil.chown(path, run_as, run_as)
    with open(folder / "pgbouncer.out", "w") as out:
        command = as_server_user([program, str(ini)], run_as)
        process = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        _wait_for_port(port, process, folder / "pgbouncer.out")
        yield Bouncer(port=port, user=user)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (log.read_text() if log.exists() else "")[-2000:]
            raise RuntimeError(f"pgbouncer exited ({process.returncode}):\n{output}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not listen on {port}")
