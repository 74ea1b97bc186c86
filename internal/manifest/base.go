package manifest

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Base is what restore-cluster needs to know of a base backup without
// decrypting it: whose it is, where in the WAL it starts and where replay
// from it becomes consistent.
type Base struct {
	// SystemID is pg_control's system identifier, as a decimal string
	// (JSON numbers lose precision past 2^53).
	SystemID string `json:"system_identifier"`
	Major    int    `json:"major"`
	Timeline uint32 `json:"timeline"`
	// StartLSN is the backup's checkpoint redo point (backup_label's
	// START WAL LOCATION); StopLSN is where its WAL range ends
	// (backup_manifest's WAL-Ranges): replay must reach it.
	StartLSN string `json:"start_lsn"`
	StopLSN  string `json:"stop_lsn"`
	// SegmentSize is the cluster's wal_segment_size in bytes.
	SegmentSize int64 `json:"wal_segment_size"`
	// Started is backup_label's START TIME; Stopped is when pg_basebackup
	// ended on the archiving host's clock, no earlier than the backup's
	// real end: a recovery target before it cannot use this backup.
	Started time.Time `json:"started"`
	Stopped time.Time `json:"stopped"`
}

// Cluster is the backup's cluster.
func (b *Base) Cluster() (walname.Cluster, error) {
	id, err := strconv.ParseUint(b.SystemID, 10, 64)
	if err != nil || strconv.FormatUint(id, 10) != b.SystemID {
		return walname.Cluster{}, fmt.Errorf("system identifier %q is not a decimal number", b.SystemID)
	}
	c := walname.Cluster{SystemID: id, Major: b.Major}
	return c, c.Validate()
}

// Range is the backup's start and stop positions.
func (b *Base) Range() (start, stop walname.LSN, err error) {
	if start, err = walname.ParseLSN(b.StartLSN); err != nil {
		return 0, 0, err
	}
	if stop, err = walname.ParseLSN(b.StopLSN); err != nil {
		return 0, 0, err
	}
	if stop < start {
		return 0, 0, fmt.Errorf("stop %s is before start %s", b.StopLSN, b.StartLSN)
	}
	return start, stop, nil
}

// validateBase ties a base section to its archive: only format 4 has one,
// a basebackup dump must have one, and its cluster must be the one the
// archive's database name says (walname.Cluster.BaseDatabase).
func (m *Manifest) validateBase(n naming.Name) error {
	isBase := m.Dump.Format == BaseBackupFormat
	switch {
	case m.Base == nil && !isBase && !n.Tar:
		return nil
	case m.Format < 4:
		return fmt.Errorf("manifest: format %d has no base backups", m.Format)
	case m.Base == nil || !isBase || !n.Tar:
		return errors.New("manifest: a base backup needs a base section, dump format basebackup and a .tar archive name")
	}
	b := m.Base
	c, err := b.Cluster()
	if err != nil {
		return fmt.Errorf("manifest: base: %w", err)
	}
	if c.BaseDatabase() != m.Database {
		return fmt.Errorf("manifest: base backup of %s filed under database %q", c, m.Database)
	}
	if b.Timeline == 0 {
		return errors.New("manifest: base: timeline 0")
	}
	if _, _, err := b.Range(); err != nil {
		return fmt.Errorf("manifest: base: %w", err)
	}
	if !walname.ValidSegmentSize(b.SegmentSize) {
		return fmt.Errorf("manifest: base: WAL segment size %d is not a power of two from 1 MiB to 1 GiB", b.SegmentSize)
	}
	if b.Started.IsZero() || b.Stopped.Before(b.Started) {
		return errors.New("manifest: base: stopped before started")
	}
	return nil
}
