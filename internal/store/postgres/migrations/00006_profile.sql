-- The send profile a submission named: its HTTP headers are added to the partner's when the
-- message is packed, so the name is kept until then.

-- +goose Up
ALTER TABLE messages ADD COLUMN profile TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE messages DROP COLUMN profile;
