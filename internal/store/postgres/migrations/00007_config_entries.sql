-- Partners, stations and send profiles managed at run time: each entry is the YAML item of
-- the configuration file's list, and the certificate and key files it names are kept with
-- it so that every node sharing the database loads the same.

-- +goose Up
CREATE TABLE config_entries (
    kind       TEXT   NOT NULL CHECK (kind IN ('partner', 'station', 'profile')),
    name       TEXT   NOT NULL CHECK (name <> ''),
    document   TEXT   NOT NULL CHECK (document <> ''),
    revision   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE config_material (
    kind TEXT  NOT NULL,
    name TEXT  NOT NULL,
    file TEXT  NOT NULL CHECK (file <> ''),
    data BYTEA NOT NULL,
    PRIMARY KEY (kind, name, file),
    FOREIGN KEY (kind, name) REFERENCES config_entries (kind, name) ON DELETE CASCADE
);

-- One row: the change counter nodes poll to notice another node's change. Every write of
-- an entry updates it, so its row lock also puts the writes of all nodes in one order.
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE config_version;
DROP TABLE config_material;
DROP TABLE config_entries;
