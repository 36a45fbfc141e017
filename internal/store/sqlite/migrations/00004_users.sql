-- The console's users: a name and a bcrypt hash of the password.

-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- COLLATE NOCASE: "Admin" and "admin" are one user, as an operator expects at a login form.
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE CHECK (name <> ''),
    password_hash TEXT    NOT NULL CHECK (password_hash <> ''),
    created_at    INTEGER NOT NULL
);

-- +goose Down
DROP TABLE users;
