"""The workspace home folder: where the registry, endpoint state, logs and job outputs live."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Home", "DEFAULT_EXPERIMENT"]

DEFAULT_EXPERIMENT = "endpoints-toolkit"


@dataclass(frozen=True)
class Home:
    """Paths of one workspace (DESIGN.md section 2).  Creating one touches nothing on disk."""

    root: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> "Home":
        """``path``, else ``$ENDPOINTS_HOME``, else ``./mlruns`` (absolute, so children agree)."""
        chosen = path or os.environ.get("ENDPOINTS_HOME") or "mlruns"
        return cls(Path(chosen).expanduser().resolve())

    # --- MLflow -------------------------------------------------------------------------
    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def tracking_uri(self) -> str:
        """The tracking URI: the environment wins, as in every MLflow tool."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"

    @property
    def registry_uri(self) -> str:
        return os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri

    # --- endpoint state -----------------------------------------------------------------
    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints"

    @property
    def state_db(self) -> Path:
        return self.endpoints / "state.db"

    @property
    def host_json(self) -> Path:
        return self.endpoints / "host.json"

    @property
    def admin_token_file(self) -> Path:
        return self.endpoints / "admin-token"

    @property
    def logs(self) -> Path:
        return self.endpoints / "logs"

    @property
    def host_log(self) -> Path:
        return self.logs / "host.log"

    @property
    def jobs(self) -> Path:
        return self.endpoints / "jobs"

    @property
    def run_dir(self) -> Path:
        """Unix sockets of instances (kept short: AF_UNIX paths are limited to ~100 bytes)."""
        return self.endpoints / "run"

    @property
    def cache(self) -> Path:
        return self.endpoints / "cache"

    @property
    def secrets_key(self) -> Path:
        """The key that seals endpoint keys in ``state.db`` (0600; see :mod:`toolkit.secretbox`)."""
        return self.endpoints / "secrets.key"

    def ensure(self) -> "Home":
        """Create the folders; the endpoint state (``endpoints/`` and below) only its owner can enter."""
        for d in (self.root, self.artifacts):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.endpoints, self.logs, self.jobs, self.run_dir, self.cache):
            d.mkdir(mode=0o700, exist_ok=True)
        _restrict(self.endpoints)
        return self

    def make_private(self) -> int:
        """Take group and other permissions off everything under ``endpoints/`` (a home made by
        an older version, or files copied in); return how many entries were changed.

        The host runs this at start-up.  Owner bits are kept (a script stays executable);
        symbolic links are not followed, so nothing outside the home is touched.
        """
        changed = int(_restrict(self.endpoints))
        for folder, dirs, files in os.walk(self.endpoints):
            for name in (*dirs, *files):
                changed += _restrict(Path(folder) / name)
        return changed

    def admin_token(self, create: bool = False) -> str | None:
        """Read the admin token; with ``create`` write a new one (mode 0600) if absent."""
        f = self.admin_token_file
        if f.exists():
            return f.read_text().strip()
        if not create:
            return None
        self.ensure()
        token = secrets.token_urlsafe(32)
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
        return token

    def configure_mlflow(self) -> None:
        """Point this process's MLflow at the workspace registry."""
        import mlflow

        self.ensure()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)


def _restrict(path: Path) -> bool:
    """Drop group/other permission bits of ``path`` (not following links); True if it changed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or not st.st_mode & 0o077:
        return False  # links have no mode of their own; another user's file is theirs to fix
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    except PermissionError:
        return False
    return True
