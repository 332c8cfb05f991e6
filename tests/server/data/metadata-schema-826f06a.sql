-- SCHEMA of src/dockyard/server/storage/metadata.py at 826f06a (the last release before migrations)
CREATE TABLE IF NOT EXISTS repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled INTEGER NOT NULL DEFAULT 1,
    read_enabled INTEGER NOT NULL DEFAULT 1,
    list_enabled INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS manifests (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repositories(id),
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    image_size INTEGER NOT NULL,
    config_media_type TEXT,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    architecture TEXT,
    os TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled INTEGER NOT NULL DEFAULT 1,
    read_enabled INTEGER NOT NULL DEFAULT 1,
    list_enabled INTEGER NOT NULL DEFAULT 1,
    content BLOB NOT NULL,
    UNIQUE (repo_id, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_time ON manifests (repo_id, updated, digest);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo_id, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo_id INTEGER NOT NULL REFERENCES repositories(id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled INTEGER NOT NULL DEFAULT 1,
    read_enabled INTEGER NOT NULL DEFAULT 1,
    list_enabled INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repo_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_time ON tags (repo_id, updated, name);
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repo_id, digest);
CREATE TABLE IF NOT EXISTS repo_blobs (
    repo_id INTEGER NOT NULL REFERENCES repositories(id),
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest);
CREATE TABLE IF NOT EXISTS scope_maps (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    rules TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    scope_map TEXT,
    rules TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    expires REAL,
    created REAL NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO auth_version (id, version) VALUES (1, 0);
