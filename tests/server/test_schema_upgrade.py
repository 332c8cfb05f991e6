"""Schema revisions: a data directory of the last release before migrations is recognised and upgraded in place
by ``dockyard db upgrade`` and served; a schema newer than this dockyard is refused with one line."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from dockyard.server.storage import schema
from dockyard.server.storage.metadata import SqliteMetadataStore
from tests.support.images import make_image, push
from tests.support.servers import DockyardServer, subprocess_env

#: The ``SCHEMA`` string of ``metadata.py`` at 826f06a, the last release that created its tables itself.
OLD_SCHEMA = (Path(__file__).parent / "data" / "metadata-schema-826f06a.sql").read_text()
TABLES = ("repositories", "manifests", "tags", "repo_blobs", "scope_maps", "tokens", "auth_version")


def _dockyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, env=subprocess_env(), timeout=60
    )


def _schema_sql(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE name != 'alembic_version'"
                            " AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    return [(name, sql) for name, sql in rows]


def test_the_head_revision_is_the_one_the_code_knows() -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "dockyard.server.storage:migrations")
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == schema.HEAD
    assert [rev.revision for rev in reversed(list(script.walk_revisions()))] == list(schema.KNOWN)


def test_the_first_revision_is_the_old_release_schema_exactly(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    first = tmp_path / "first.db"
    engine = sa.create_engine(f"sqlite:///{first}")
    with engine.connect() as conn:
        config = Config()
        config.set_main_option("script_location", "dockyard.server.storage:migrations")
        config.attributes["connection"] = conn
        command.upgrade(config, schema.FIRST)
        conn.commit()
    engine.dispose()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(OLD_SCHEMA)
    assert _schema_sql(first) == _schema_sql(old)


def test_a_new_database_has_the_old_release_tables_and_the_later_ones(tmp_path: Path) -> None:
    SqliteMetadataStore(tmp_path / "new").close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(OLD_SCHEMA)
    new_schema = dict(_schema_sql(tmp_path / "new" / "metadata.db"))
    assert set(_schema_sql(old)) <= set(new_schema.items())
    assert "leases" in new_schema


def _old_release_data_dir(tmp_path: Path) -> tuple[Path, str, bytes]:
    """A data directory as the last release before migrations left it: its SCHEMA, holding a pushed image."""
    with DockyardServer(tmp_path / "today") as today:
        image = make_image(seed="old-release", layers=2)
        digest = push(image, today.url, "old/app", "v1")
    old = tmp_path / "old-data"
    old.mkdir(mode=0o700)
    shutil.copytree(today.data_dir / "blobs", old / "blobs")
    with sqlite3.connect(old / "metadata.db") as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute("ATTACH DATABASE ? AS today", (str(today.data_dir / "metadata.db"),))
        for table in TABLES:
            conn.execute(f"DELETE FROM main.{table}")
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM today.{table}")
        conn.commit()
        conn.execute("DETACH DATABASE today")
    return old, digest, image.body


def test_a_data_dir_of_the_release_before_migrations_is_upgraded_and_served(tmp_path: Path) -> None:
    data_dir, digest, body = _old_release_data_dir(tmp_path)

    done = _dockyard("db", "upgrade", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert "made by a release before migrations; recognised and upgraded in place" in done.stdout
    with sqlite3.connect(data_dir / "metadata.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema.HEAD,)]
        assert conn.execute("SELECT name FROM repositories").fetchall() == [("old/app",)]

    with DockyardServer(tmp_path / "served", data_dir=data_dir) as server, httpx.Client(base_url=server.url) as http:
        got = http.get("/v2/old/app/manifests/v1")
        assert got.status_code == 200 and got.content == body and got.headers["Docker-Content-Digest"] == digest
        assert http.get("/v2/old/app/tags/list").json()["tags"] == ["v1"]
        push(make_image(seed="old-release-2", layers=1), server.url, "old/app", "v2", client=http)
        assert http.get("/v2/old/app/tags/list").json()["tags"] == ["v1", "v2"]


def test_serve_upgrades_the_embedded_database_itself(tmp_path: Path) -> None:
    data_dir, digest, _ = _old_release_data_dir(tmp_path)
    with DockyardServer(tmp_path / "served", data_dir=data_dir) as server:
        got = httpx.get(f"{server.url}/v2/old/app/manifests/v1")
        assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    with sqlite3.connect(data_dir / "metadata.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema.HEAD,)]


def test_serve_refuses_a_sqlite_schema_newer_than_itself(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    SqliteMetadataStore(data_dir).close()
    with sqlite3.connect(data_dir / "metadata.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00d'")
    done = _dockyard("serve", "--port", "0", "--data-dir", str(data_dir))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: the metadata database")
    assert "this dockyard is older than the database" in done.stderr
    refused = _dockyard("db", "upgrade", "--data-dir", str(data_dir))
    assert refused.returncode == 1 and "this dockyard is older than the database" in refused.stderr


def test_the_tables_the_postgres_store_queries_are_what_the_migrations_made(postgres_url: str) -> None:
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from dockyard.server.storage.tables import metadata

    engine = sa.create_engine(schema.engine_url(postgres_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_sqlite_metadata_url_puts_the_database_where_it_says(tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "registry.db"
    url = f"sqlite:///{database}"
    with DockyardServer(tmp_path / "srv", "--metadata-url", url) as server:
        push(make_image(seed="sqlite-url", layers=1), server.url, "where/app", "v1")
        assert not (server.data_dir / "metadata.db").exists()
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT name FROM repositories").fetchall() == [("where/app",)]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema.HEAD,)]
    assert (database.stat().st_mode & 0o077) == 0
