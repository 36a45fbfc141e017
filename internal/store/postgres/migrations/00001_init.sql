-- The gateway's records: messages (the queue's jobs), failed attempts, and the timeline.
-- The same schema as the embedded SQLite database, version for version, so that a migration
-- number means the same change on both. Times are BIGINT nanoseconds since the Unix epoch,
-- UTC, as there; 0 stands for "no time". JSON columns are JSONB holding the encoding/json
-- form of the Go record fields ('null' for none).

-- +goose Up
CREATE TABLE messages (
    -- An identity never hands out a value twice, so list cursors and references stay valid.
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    direction       TEXT    NOT NULL CHECK (direction IN ('out', 'in')),
    kind            TEXT    NOT NULL DEFAULT '',
    message_id      TEXT    NOT NULL,
    station         TEXT    NOT NULL,
    partner         TEXT    NOT NULL,
    subject         TEXT    NOT NULL DEFAULT '',
    tag             TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN
                        ('queued', 'sending', 'awaiting_mdn', 'sent', 'failed', 'received', 'suspended')),
    files           JSONB   NOT NULL DEFAULT 'null',  -- []File
    wire            TEXT    NOT NULL DEFAULT '',
    wire_header     JSONB   NOT NULL DEFAULT 'null',  -- http.Header
    mic             TEXT    NOT NULL DEFAULT '',
    mdn_mode        TEXT    NOT NULL DEFAULT '',
    mdn             JSONB   NOT NULL DEFAULT 'null',  -- MDN
    url             TEXT    NOT NULL DEFAULT '',
    related_id      BIGINT  REFERENCES messages (id),  -- NULL when unrelated
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL DEFAULT 0,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    -- The state Claim took a row from, kept while it is sending so that a worker that
    -- reclaims an expired lease knows whether the row was due to be sent or had run out of
    -- time waiting for its MDN.
    claimed_from    TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    last_code       TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    -- The queue's states belong to outbound rows, so the queries of the queue need not
    -- ask for the direction.
    CHECK ((direction = 'out') = (state IN ('queued', 'sending', 'awaiting_mdn', 'sent', 'failed')))
);

-- Claim and NextDue: due rows by state and time, with the partner for the per-partner limit.
CREATE INDEX messages_due ON messages (state, next_attempt_at, partner);
-- Claim: rows in sending by the end of their lease (a lost node's rows) and, per partner,
-- the rows in flight.
CREATE INDEX messages_leases ON messages (lease_until, partner) WHERE state = 'sending';
-- FindDuplicate and CreateInbound: one partner's inbound Message-IDs within a time window.
CREATE INDEX messages_duplicate ON messages (direction, station, partner, message_id, created_at);
-- FindByMessageID: the newest row of a Message-ID.
CREATE INDEX messages_message_id ON messages (message_id, direction, id);
-- Lists, newest first, filtered by partner, by box (direction and state) or by tag.
CREATE INDEX messages_partner ON messages (partner, id);
CREATE INDEX messages_box ON messages (direction, state, id);
CREATE INDEX messages_tag ON messages (tag, id) WHERE tag <> '';
CREATE INDEX messages_related ON messages (related_id) WHERE related_id IS NOT NULL;

CREATE TABLE attempts (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_row  BIGINT  NOT NULL REFERENCES messages (id),
    at           BIGINT  NOT NULL,
    class        TEXT    NOT NULL CHECK (class IN ('transient', 'incomplete', 'permanent')),
    code         TEXT    NOT NULL,
    http_status  INTEGER NOT NULL DEFAULT 0,
    header       JSONB   NOT NULL DEFAULT 'null',  -- http.Header
    body_excerpt TEXT    NOT NULL DEFAULT '',
    error        TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX attempts_message ON attempts (message_row, id);

CREATE TABLE events (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT  NOT NULL,
    message_row BIGINT  REFERENCES messages (id),  -- NULL for events not about one message
    direction   TEXT    NOT NULL DEFAULT '',
    partner     TEXT    NOT NULL DEFAULT '',
    tag         TEXT    NOT NULL DEFAULT '',
    type        TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX events_partner ON events (partner, id);
CREATE INDEX events_message ON events (message_row) WHERE message_row IS NOT NULL;

-- +goose Down
DROP TABLE events;
DROP TABLE attempts;
DROP TABLE messages;
