package store

import (
	"context"
	"time"
)

// Kinds of configuration entries kept in the database.
const (
	EntryPartner = "partner"
	EntryStation = "station"
	EntryProfile = "profile"
)

// ConfigEntry is a partner, station or send profile managed at run time: the entry's YAML
// document exactly as it would appear in the configuration file's partners, stations or
// profiles list, and the certificate and key files the document names, kept in the
// database so that every node sharing it sees the same.
type ConfigEntry struct {
	Kind string // EntryPartner, EntryStation or EntryProfile
	// Name is the partner's or station's AS2 id, or the profile's name.
	Name string
	// Document is one item of the configuration file's list, in YAML. Relative file names
	// in it refer to Material.
	Document string
	// Material maps a file name (no folder) to its content: certificates, keys, passwords.
	Material map[string][]byte
	// Revision counts the entry's writes, 1 after the create; an update or delete names the
	// revision it was made from, so that two operators do not overwrite each other unseen.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Base, when not 0, is the change counter (ConfigVersion) read before the entries this
	// write was validated with: the write is made only while the counter still has it, so a
	// change another node made meanwhile (which the validation did not see) makes it
	// ErrConflict rather than leaving entries that no longer fit together. The counter starts
	// at 1, so a value read is never 0.
	Base int64
}

// ConfigEntries keeps the configuration entries managed at run time. Each write also
// writes a timeline event ("config_created", "config_updated", "config_deleted") and moves
// the store-wide change counter, in the same transaction.
type ConfigEntries interface {
	// ConfigEntries returns every entry with its material, by kind, then name.
	ConfigEntries(ctx context.Context) ([]*ConfigEntry, error)
	// ConfigEntry returns one entry with its material, or ErrNotFound.
	ConfigEntry(ctx context.Context, kind, name string) (*ConfigEntry, error)
	// CreateConfigEntry inserts e and sets its Revision (1), CreatedAt and UpdatedAt.
	// ErrConflict when an entry of the kind has the name; it refuses an unknown kind, an
	// empty name or an empty document.
	CreateConfigEntry(ctx context.Context, e *ConfigEntry) error
	// UpdateConfigEntry replaces the document and the whole material of the entry of e's
	// kind and name, provided its revision is still e.Revision (0: whatever it is), and sets
	// e.Revision and UpdatedAt. ErrNotFound when there is no such entry, ErrConflict when
	// the revision is stale.
	UpdateConfigEntry(ctx context.Context, e *ConfigEntry) error
	// DeleteConfigEntry removes an entry and its material, provided its revision is still
	// revision (0: whatever it is). ErrNotFound, or ErrConflict when the revision is stale.
	DeleteConfigEntry(ctx context.Context, kind, name string, revision int64) error
	// DeleteConfigEntryAt is DeleteConfigEntry made only while the change counter is still
	// base (0: whatever it is), as ConfigEntry.Base.
	DeleteConfigEntryAt(ctx context.Context, kind, name string, revision, base int64) error
	// ConfigVersion returns the change counter: it moves with every write of an entry, so a
	// node that polls it notices another node's change.
	ConfigVersion(ctx context.Context) (int64, error)
}
