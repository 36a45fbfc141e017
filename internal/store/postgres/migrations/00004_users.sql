-- The console's users: a name and a bcrypt hash of the password.

-- +goose Up
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT   NOT NULL CHECK (name <> ''),
    password_hash TEXT   NOT NULL CHECK (password_hash <> ''),
    created_at    BIGINT NOT NULL
);
-- "Admin" and "admin" are one user, as an operator expects at a login form (SQLite's
-- NOCASE): the unique index is on the name with ASCII letters folded.
CREATE UNIQUE INDEX users_name ON users (translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));

-- +goose Down
DROP TABLE users;
