"""``lab ui``: the MLflow UI on lab's tracking store.

On loopback (the default) it is plain ``mlflow server``. Beyond loopback anyone who can reach the port could create
runs, upload a checkpoint and mark a run KILLED, which a later ``lab run resume=<id>`` would load; MLflow's own Host
check reads only a header that any client can forge. So there lab serves MLflow's basic-auth app (an ``admin`` user
whose generated password is shown once) unless told ``--insecure``, and accepts only the Host headers of the bound
address and of localhost unless told ``--allowed-hosts``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import sqlite3
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from lab.commands.common import check_writable
from lab.core.config import REQUIRED
from lab.core.errors import ConfigError
from lab.core.options import option

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
ANY_INTERFACE = frozenset({"0.0.0.0", "::", ""})  # a browser never sends these: it names the machine instead
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
ADMIN = "admin"


@dataclass(frozen=True)
class AuthStore:
    """MLflow's basic-auth configuration and user database, beside the tracking store's database file: in lab's
    default store that is ./mlflow/, which git ignores (only its README is tracked). Neither file holds a
    password, only the database a salted hash of it."""

    config: Path
    database: Path

    @classmethod
    def beside(cls, tracking_database: Path) -> AuthStore:
        folder, stem = tracking_database.resolve().parent, tracking_database.stem
        return cls(config=folder / f"{stem}-auth.ini", database=folder / f"{stem}-auth.db")

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.database}"


def serve(host: str, port: int, allowed_hosts: str | None, insecure: bool, reset_password: bool) -> NoReturn:
    """Replace this process with the MLflow server, as configured for ``host``."""
    from lab.tracking.tracker import client, default_artifact_root, sqlite_path, tracking_uri

    uri = tracking_uri()
    exposed = host not in LOOPBACK
    auth = _auth_store(host, uri, sqlite_path(uri)) if exposed and not insecure else None
    if reset_password and auth is None:
        raise ConfigError("--reset-password applies to lab ui with authentication: a --host other than "
                          "127.0.0.1, localhost or ::1, without --insecure")
    client()  # create the store (once, under a lock) so the UI never races a first run
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
               "--port", str(port)]
    root = default_artifact_root()
    if root:
        command += ["--default-artifact-root", root]
    if allowed_hosts is None and exposed:
        allowed_hosts = ",".join(default_allowed_hosts(host, port))
        _say(f"accepted Host headers: {allowed_hosts.replace(',', ', ')} (--allowed-hosts to change)")
    if allowed_hosts is not None:
        command += ["--allowed-hosts", allowed_hosts]
    if auth is not None:
        _prepare_auth(auth, host, reset_password)
        command += ["--app-name", "basic-auth"]
    elif exposed:
        _say(f"warning: --insecure: no authentication on http://{host}:{port}: anyone who can reach the port can "
             "read, change and delete your runs, and plant checkpoints that `lab run resume=` loads")
    _say(f"MLflow UI for {uri} on http://{host}:{port} (Ctrl-C to stop)")
    _exec(command)


def default_allowed_hosts(host: str, port: int) -> list[str]:
    """The Host headers a browser sends for the bound address, and for localhost (a tunnel, this machine).
    MLflow's own default also accepts every private address (10.*, 192.168.*, ...): any machine on the LAN could
    name itself as the host."""
    names = _machine_names() if host in ANY_INTERFACE else [host]
    return list(dict.fromkeys(f"{_bracketed(name)}:{port}" for name in [*names, *LOCAL_NAMES]))


def _machine_names() -> list[str]:
    """This machine's name and addresses: what a client names a server bound to every interface."""
    names = [socket.gethostname(), socket.getfqdn()]
    # A host name that does not resolve here: the name alone still serves clients that can resolve it.
    with contextlib.suppress(OSError):
        names += socket.gethostbyname_ex(socket.gethostname())[2]
    return names


def _bracketed(name: str) -> str:
    """An IPv6 address is bracketed in a Host header (``[::1]:5000``)."""
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _auth_store(host: str, uri: str, tracking_database: Path | None) -> AuthStore:
    if tracking_database is None:
        raise ConfigError(f"lab ui --host {host}: lab keeps MLflow's users beside a sqlite store, and the tracking "
                          f"URI is {uri}; serve that store with `mlflow server --app-name basic-auth` yourself, or "
                          "pass --insecure")
    return AuthStore.beside(tracking_database)


def _prepare_auth(auth: AuthStore, host: str, reset_password: bool) -> None:
    """Write the configuration, make sure the admin user exists, and hand MLflow what it needs through the
    environment. The password never reaches a file or the server's environment: lab stores its hash itself."""
    auth.config.parent.mkdir(parents=True, exist_ok=True)
    auth.config.write_text(_config_text(auth))
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(auth.config)
    # Flask signs the UI's CSRF tokens with this key; one key per start is enough for one server (a restart only
    # invalidates forms open in a browser), so nothing secret is kept on disk. A key the user set wins.
    os.environ.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(32))
    if reset_password or not _has_admin(auth.database):
        password = secrets.token_urlsafe(18)
        _set_admin_password(auth, password)
        _say(f"authentication on: user {ADMIN}, password {password} (shown only this once; users are kept in "
             f"{auth.database})")
    else:
        _say(f"authentication on: user {ADMIN}, created before (kept in {auth.database}); lost its password? "
             f"lab ui --host {host} --reset-password")


def _config_text(auth: AuthStore) -> str:
    # default_permission covers users an admin adds later (MLflow's default, READ); no admin_password line:
    # lab creates the admin user itself, so MLflow never needs the password.
    return ("# written by `lab ui` on every start; holds no password\n"
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {auth.uri}\n"
            f"admin_username = {ADMIN}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")


def _has_admin(database: Path) -> bool:
    """Read with sqlite3 alone: importing MLflow's auth store costs seconds, needed only to write a password."""
    if not database.exists():
        return False
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT 1 FROM users WHERE username = ?", (ADMIN,)).fetchone() is not None
    except sqlite3.Error:  # created but never migrated: no users table yet
        return False


def _set_admin_password(auth: AuthStore, password: str) -> None:
    """Create the admin user, or give it a new password, through MLflow's own store (its schema and hashing)."""
    auth.database.touch(mode=0o600, exist_ok=True)  # password hashes: readable by this user only
    # Importing the store imports MLflow's server, which warns about its own use of a deprecated starlette module.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
        from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore  # reads MLFLOW_AUTH_CONFIG_PATH

    store = SqlAlchemyStore()
    store.init_db(auth.uri)
    if store.has_user(ADMIN, use_primary=True):
        store.update_user(ADMIN, password=password)
    else:
        store.create_user(ADMIN, password, is_admin=True)
    store.engine.dispose()


def _say(message: str) -> None:
    print(f"lab ui: {message}", file=sys.stderr, flush=True)


def _exec(command: list[str]) -> NoReturn:
    # A UI for one person's runs: one web worker and no GenAI job runners start in seconds rather than ~25 s
    # (MLflow's defaults: 4 workers and a pool of job processes). Set either variable to choose otherwise.
    os.environ.setdefault("MLFLOW_WORKERS", "1")
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # MLflow's web server (a process of its own) warns about its own use of a deprecated starlette module: not the
    # user's concern, so not on the user's screen.
    quiet = "ignore:starlette.middleware.wsgi is deprecated"
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), quiet)))
    os.execv(sys.executable, command)


# ---------------------------------------------------------------------------------------------- the command


def cmd_ui(args: argparse.Namespace) -> int:
    serve(args.host, args.port, args.allowed_hosts, args.insecure, args.reset_password)


@dataclass
class PromoteOptions:
    """``lab promote``'s keys: what to register, and under which name."""

    run: str = option(REQUIRED, "The run whose model to register: a run id (see `lab runs`).")
    name: str = option(REQUIRED, "The registered model it becomes a new version of: models:/NAME@ALIAS.")
    alias: str | None = option(None, "An alias to point at the new version (e.g. champion), moved from any older "
                                     "version of NAME.")


def cmd_promote(args: argparse.Namespace) -> int:
    from lab.core.config import command_options, parse_overrides
    from lab.tracking.models import promote

    options, _ = command_options(PromoteOptions, parse_overrides(args.overrides), "promote")
    check_writable()
    print(promote(options.run, options.name, options.alias))
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """Plain mlflow (``mlflow.pyfunc.load_model``, ``mlflow ui``) uses its own default store unless told lab's:
    ``MLFLOW_TRACKING_URI=$(lab store --uri)``."""
    from lab.tracking.tracker import default_artifact_root, tracking_uri

    if args.uri:
        print(tracking_uri())
        return 0
    source = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "lab's default, ./mlflow/"
    print(f"tracking URI: {tracking_uri()} ({source})")
    print(f"artifacts:    {default_artifact_root() or 'kept by the tracking server'}")
    return 0
