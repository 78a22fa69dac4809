"""Secrets only where they must be: the daemon's memory and the instance's environment, never a file of the
home, the state store or the bundle; a home others could read is tightened (issue 19, acceptance 1)."""

from __future__ import annotations

import os
import secrets
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from e2e_kit import Sprout, app_process, kill_all, make_app, processes_of

from loopback import free_port
from sprout.paths import Home

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
LITERAL = 'engine = "mysql"\nurl = "mysql://shop:hunter2@127.0.0.1:3306/shop"\n'


def test_validate_refuses_a_literal_database_password_with_the_fix(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[resources.database]\n" + LITERAL)
    result = Sprout(home=tmp_path / "home", app_dir=app, port=0).run("validate", str(app), check=False)
    assert result.returncode == 2
    assert (
        "resources.database.url: holds a literal password; remove it from the url and give it as a secret: "
        'password = "env:DB_PASSWORD" (or "file:PATH") in [resources.database]'
    ) in result.stdout + result.stderr


@pytest.fixture
def database_user() -> Iterator[tuple[str, str, str]]:
    """A MariaDB user with a random password and the name of a database it may create; both dropped after."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    user, password, name = f"sprout_sec_{suffix}", secrets.token_urlsafe(18), f"sprout_sec_{suffix}"
    admin = pymysql.connect(**MYSQL, autocommit=True)  # type: ignore[arg-type]
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'127.0.0.1'")
        yield user, password, name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        admin.close()


@pytest.mark.slow
def test_up_leaves_no_secret_in_the_home_the_state_store_or_the_bundle(
    tmp_path: Path, database_user: tuple[str, str, str]
) -> None:
    user, db_password, db_name = database_user
    env_secret, file_secret = f"env-{secrets.token_hex(12)}", f"file-{secrets.token_hex(12)}"
    values = (env_secret, file_secret, db_password)
    app = make_app(
        tmp_path,
        '[secrets]\nAPI_KEY = "env:SEC_API_KEY"\nFILE_TOKEN = "file:secrets/token.txt"\n\n'
        '[resources.database]\nengine = "mysql"\n'
        f'url = "mysql://{user}@127.0.0.1:3306/{db_name}"\npassword = "env:SEC_DB_PASSWORD"\n\n'
        "[scaling]\nenabled = false\n",
    )
    (app / "secrets").mkdir()
    (app / "secrets" / "token.txt").write_text(file_secret + "\n")
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "notes.txt").write_text("written before Sprout\n")
    (home / "notes.txt").chmod(0o644)
    sprout = Sprout(
        home=home,
        app_dir=app,
        port=free_port(),
        extra_env={"SEC_API_KEY": env_secret, "SEC_DB_PASSWORD": db_password},
    )
    try:
        pushed = sprout.run("push", str(app))
        assert "not packed (file: secrets never enter a bundle): secrets/token.txt" in pushed.stdout
        up = sprout.run("up", str(app), "--port", str(sprout.port))
        assert "2/2 healthy" in up.stdout
        # The loose home was tightened, and said so.
        assert (
            f"notice: {home.resolve()} was open to other users (mode 0755); made the home {home.resolve()} "
            "owner-only: " in pushed.stderr
        )
        assert stat.S_IMODE(home.stat().st_mode) == 0o700

        # The values reached the app: its environment holds them, and DATABASE_URL logs in.
        instance = sprout.environment()["instances"][0]
        environ = _environ(app_process(instance["pid"]).pid)
        assert environ["API_KEY"] == env_secret and environ["FILE_TOKEN"] == file_secret
        assert environ["DATABASE_URL"] == f"mysql://{user}:{db_password}@127.0.0.1:3306/{db_name}"
        conn = pymysql.connect(host="127.0.0.1", port=3306, user=user, password=db_password)
        with conn, conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (db_name,))
            assert cursor.fetchone() == (db_name,)

        # Every file and folder under the home is private, and none holds a value (state.db included,
        # byte for byte, with its WAL; the instances' spec files; the stored manifests).
        files = [path for path in home.rglob("*") if path.is_file() and not path.is_symlink()]
        assert home / "state.db" in files and any(p.name == "spec.json" for p in files)
        for path in [home, *home.rglob("*")]:
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {mode:04o}"
        for path in files:
            data = path.read_bytes()
            for value in values:
                assert value.encode() not in data, f"{path} holds a secret value"

        # The bundle in the artifact store has no secret file; nor has its unpacked copy in the cache.
        bundles = list((home / "artifacts").rglob("*.tar.gz"))
        assert bundles
        for bundle in bundles:
            with tarfile.open(bundle) as tar:
                names = tar.getnames()
            assert "sprout.toml" in names and not [n for n in names if n.startswith("secrets")]
        cache = Home(home.resolve()).cache
        assert not list(cache.rglob("token.txt"))
        size = (home / "state.db").stat().st_size
        print(
            f"\n[acceptance 1] {len(files)} files under the home, all owner-only, none holding any of the 3 values; state.db {size} bytes"
        )
    finally:
        sprout.run("down", str(app), check=False, timeout=90)
        kill_all(processes_of(home))


def _environ(pid: int) -> dict[str, str]:
    """A process's environment as the kernel shows it."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
