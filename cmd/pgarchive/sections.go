package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/retention"
)

// The scheduled commands' options, each resolved once: the command's flag
// when given, else its section of the --config file ("drill", "status",
// "prune"; see internal/config/commands.go), else the flag's default.

// given reports whether a flag was given on the command line or in the
// environment (urfave's IsSet covers both).
func given(c *cli.Context, name string) bool { return c.IsSet(name) }

// databasesOption is --database (repeatable), else the section's list.
func databasesOption(c *cli.Context, fromFile []string) ([]string, error) {
	dbs := c.StringSlice("database")
	if !given(c, "database") {
		dbs = fromFile
	}
	for _, db := range dbs {
		if err := naming.ValidateDatabase(db); err != nil {
			return nil, usageError("%v", err)
		}
	}
	return dbs, nil
}

// maxAgeOption is --max-age, else the section's, else the default.
func maxAgeOption(c *cli.Context, fromFile string) (time.Duration, error) {
	v := c.String("max-age")
	if !given(c, "max-age") && fromFile != "" {
		v = fromFile
	}
	d, err := config.ParseMaxAge(v)
	if err != nil {
		return 0, usageError("--%v", err)
	}
	return d, nil
}

// drillOptions are drill's settings.
type drillOptions struct {
	Databases  []string
	MaxAge     time.Duration
	ChecksFile string
}

func resolveDrill(c *cli.Context, s *Settings) (o drillOptions, err error) {
	sec := config.DrillSection{}
	if s.File.Drill != nil {
		sec = *s.File.Drill
	}
	if o.Databases, err = databasesOption(c, sec.Databases); err != nil {
		return o, err
	}
	if o.MaxAge, err = maxAgeOption(c, sec.MaxAge); err != nil {
		return o, err
	}
	o.ChecksFile = c.String("checks-file")
	if !given(c, "checks-file") {
		o.ChecksFile = sec.ChecksFile
	}
	return o, nil
}

// statusOptions are status's settings.
type statusOptions struct {
	BaseMaxAge time.Duration // the age limit of base backups
	Databases  []string
	MaxAge     time.Duration
}

// statusSettings resolves the settings and status's options from them:
// status and report judge alike.
func statusSettings(c *cli.Context) (statusOptions, error) {
	st, err := settings(c)
	if err != nil {
		return statusOptions{}, err
	}
	return resolveStatus(c, st)
}

func resolveStatus(c *cli.Context, s *Settings) (o statusOptions, err error) {
	sec := config.StatusSection{}
	if s.File.Status != nil {
		sec = *s.File.Status
	}
	if o.Databases, err = databasesOption(c, sec.Databases); err != nil {
		return o, err
	}
	if o.MaxAge, err = maxAgeOption(c, sec.MaxAge); err != nil {
		return o, err
	}
	v := c.String("base-backup-max-age")
	if !given(c, "base-backup-max-age") && sec.BaseBackupMaxAge != "" {
		v = sec.BaseBackupMaxAge
	}
	if o.BaseMaxAge, err = config.ParseMaxAge(v); err != nil {
		return o, usageError("--base-backup-max-age: %v", err)
	}
	return o, nil
}

// keepFlags are prune's rule flags; giving any of them replaces the
// section's rules as a whole (mixing the two would keep what neither says).
var keepFlags = []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly", "keep-within"}

// pruneOptions are prune's settings.
type pruneOptions struct {
	Databases []string
	Policy    retention.Policy
}

func resolvePrune(c *cli.Context, s *Settings) (o pruneOptions, err error) {
	sec := config.PruneSection{}
	if s.File.Prune != nil {
		sec = *s.File.Prune
	}
	if o.Databases, err = databasesOption(c, sec.Databases); err != nil {
		return o, err
	}
	fromFlags := false
	for _, f := range keepFlags {
		fromFlags = fromFlags || given(c, f)
	}
	if !fromFlags && s.File.Prune != nil {
		if o.Policy, err = sec.Policy(); err != nil {
			return o, usageError("--config, prune: %v", err)
		}
	} else if o.Policy, err = prunePolicy(c); err != nil {
		return o, err
	}
	// The credentials allowed to delete, unless the command line names an
	// rclone.conf.
	if sec.RcloneConfig != "" && !(given(c, "rclone-config") && c.String("rclone-config") != "") {
		if s.RcloneConfig, err = config.ExpandCredentials(sec.RcloneConfig, os.Getenv); err != nil {
			return o, err
		}
	}
	return o, nil
}
