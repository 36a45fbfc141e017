-- The configuration change counter starts at 1, so that every value a node reads can guard
-- a write (store.ConfigEntry.Base, where 0 means no guard).

-- +goose Up
UPDATE config_version SET version = version + 1 WHERE id = 1;

-- +goose Down
UPDATE config_version SET version = version - 1 WHERE id = 1 AND version > 0;
