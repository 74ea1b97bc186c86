package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/retention"
)

// The settings of the commands the NixOS module schedules (drill, status,
// prune) live in sections named after them, with the commands' own flag
// names as keys. The module writes each unit's arguments there instead of on
// its command line, so that `pgarchive check-config` validates them at
// build time with the very parsers the commands use: Nix copies none of
// them. On the command line a command's flags win over its section.

// DrillSection is {"drill": {...}}.
type DrillSection struct {
	Databases  []string `json:"database,omitempty"`
	MaxAge     string   `json:"max-age,omitempty"`
	ChecksFile string   `json:"checks-file,omitempty"`
}

// StatusSection is {"status": {...}}.
type StatusSection struct {
	Databases []string `json:"database,omitempty"`
	MaxAge    string   `json:"max-age,omitempty"`
	// BaseBackupMaxAge is the age limit of base backups (weekly, say).
	BaseBackupMaxAge string `json:"base-backup-max-age,omitempty"`
}

// PruneSection is {"prune": {...}}. RcloneConfig, when set, replaces the
// global rclone-config for prune only: the credentials allowed to delete.
type PruneSection struct {
	Databases    []string `json:"database,omitempty"`
	KeepLast     int      `json:"keep-last,omitempty"`
	KeepHourly   int      `json:"keep-hourly,omitempty"`
	KeepDaily    int      `json:"keep-daily,omitempty"`
	KeepWeekly   int      `json:"keep-weekly,omitempty"`
	KeepMonthly  int      `json:"keep-monthly,omitempty"`
	KeepYearly   int      `json:"keep-yearly,omitempty"`
	KeepWithin   string   `json:"keep-within,omitempty"`
	RcloneConfig string   `json:"rclone-config,omitempty"`
}

// ParseMaxAge reads --max-age: a Go duration, 0 for no limit, never
// negative.
func ParseMaxAge(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("max-age %q: %w (write e.g. 26h, 90m or 192h; no d for days)", s, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("max-age %q must not be negative", s)
	}
	return d, nil
}

// Policy is the section's keep rules; HasRules says whether it has any.
func (p *PruneSection) Policy() (retention.Policy, error) {
	pol := retention.Policy{Last: p.KeepLast, Hourly: p.KeepHourly, Daily: p.KeepDaily,
		Weekly: p.KeepWeekly, Monthly: p.KeepMonthly, Yearly: p.KeepYearly}
	if p.KeepWithin != "" {
		d, err := retention.ParseDuration(p.KeepWithin)
		if err != nil {
			return pol, fmt.Errorf("keep-within: %w", err)
		}
		pol.Within = d
	}
	return pol, pol.Validate()
}

func validateDatabases(dbs []string) error {
	for _, db := range dbs {
		if err := naming.ValidateDatabase(db); err != nil {
			return err
		}
	}
	return nil
}

func (c *File) validateSections() error {
	var errs []error
	wrap := func(section string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", section, err))
		}
	}
	if d := c.Drill; d != nil {
		wrap("drill", validateDatabases(d.Databases))
		if d.MaxAge != "" {
			_, err := ParseMaxAge(d.MaxAge)
			wrap("drill", err)
		}
		if strings.ContainsRune(d.ChecksFile, 0) {
			wrap("drill", errors.New("checks-file contains a NUL byte"))
		}
	}
	if s := c.Status; s != nil {
		wrap("status", validateDatabases(s.Databases))
		for _, v := range []string{s.MaxAge, s.BaseBackupMaxAge} {
			if v != "" {
				_, err := ParseMaxAge(v)
				wrap("status", err)
			}
		}
	}
	if p := c.Prune; p != nil {
		wrap("prune", validateDatabases(p.Databases))
		_, err := p.Policy()
		if errors.Is(err, retention.ErrEmptyPolicy) {
			err = errors.New("no keep rule: set at least one of keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly or keep-within (pgarchive refuses to prune without one rather than delete all but the newest archive)")
		}
		wrap("prune", err)
		if strings.ContainsRune(p.RcloneConfig, 0) {
			wrap("prune", errors.New("rclone-config contains a NUL byte"))
		}
	}
	return errors.Join(errs...)
}
