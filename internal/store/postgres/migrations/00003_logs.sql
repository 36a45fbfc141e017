-- Indexes of the failure log and the timeline, which list newest first (by id) under a
-- filter: each index leads with the filter and ends with the id, so a page reads the index
-- in order and stops at the limit.

-- +goose Up
CREATE INDEX attempts_code ON attempts (code, id);
CREATE INDEX attempts_class ON attempts (class, id);
CREATE INDEX events_tag ON events (tag, id);
CREATE INDEX events_direction ON events (direction, id);

-- +goose Down
DROP INDEX events_direction;
DROP INDEX events_tag;
DROP INDEX attempts_class;
DROP INDEX attempts_code;
