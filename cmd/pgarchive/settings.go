package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/rclone/rclone/fs"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/logging"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: []string{"PGARCHIVE_CONFIG"}, Usage: "read settings from this JSON `FILE` (written by the NixOS module); flags and environment win over it"},
		&cli.StringFlag{Name: "rclone-config", EnvVars: []string{"RCLONE_CONFIG"}, Usage: "rclone.conf defining the remote, e.g. /run/secrets/rclone.conf (may start with $CREDENTIALS_DIRECTORY)", TakesFile: true},
		&cli.StringFlag{Name: "remote", EnvVars: []string{"PGARCHIVE_REMOTE"}, Value: "archive-target-database:", Usage: "rclone remote to store archives on; a union is written member by member, e.g. archive-target-database:"},
		&cli.StringFlag{Name: "prefix", EnvVars: []string{"PGARCHIVE_PREFIX"}, Usage: "optional folder inside the remote, e.g. hosts/pg1 gives hosts/pg1/<db>/<db>_<time>.sql.gz.age"},
		&cli.StringSliceFlag{Name: "recipient", Aliases: []string{"r"}, EnvVars: []string{"PGARCHIVE_RECIPIENTS"}, Usage: "encrypt to this public `KEY` (repeatable): age1... (X25519), age1pq1... (post-quantum), ssh-ed25519 or ssh-rsa"},
		&cli.StringFlag{Name: "recipients-file", Aliases: []string{"R"}, EnvVars: []string{"PGARCHIVE_RECIPIENTS_FILE"}, Usage: "encrypt to the recipients in `FILE`, one per line, # comments (age's format)", TakesFile: true},
		&cli.StringFlag{Name: "identity-file", Aliases: []string{"i"}, EnvVars: []string{"PGARCHIVE_IDENTITY_FILE"}, Usage: "the age or SSH identity in `FILE`: archive encrypts to its public half (as age -e -i does); list, verify, restore and drill decrypt with it unless given their own --identity-file", TakesFile: true},
		&cli.StringFlag{Name: "passphrase-file", EnvVars: []string{"PGARCHIVE_PASSPHRASE_FILE"}, Usage: "the passphrase on the first line of `FILE`: archive encrypts with it (age scrypt; cannot be combined with recipients); readers decrypt with it unless given their own --passphrase-file", TakesFile: true},
		&cli.StringFlag{Name: "dump-dir", EnvVars: []string{"PGARCHIVE_DUMP_DIR"}, Value: "/var/backup/postgresql", Usage: "where postgresqlBackup writes dumps (services.postgresqlBackup.location); used when archive has no --file"},
		&cli.StringFlag{Name: "dump-compression", EnvVars: []string{"PGARCHIVE_DUMP_COMPRESSION"}, Value: "gzip", Usage: "postgresqlBackup's compression: gzip (<db>.sql.gz), zstd (<db>.sql.zstd) or none (<db>.sql)"},
		&cli.StringFlag{Name: "pg-bin", EnvVars: []string{"PGARCHIVE_PG_BIN"}, Usage: "`DIR` holding PostgreSQL's psql, pg_restore, initdb and pg_ctl, used by restore --into and drill; default: PATH, then the newest /usr/lib/postgresql/*/bin", TakesFile: true},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"PGARCHIVE_STATE_DIR"}, Usage: "`DIR` for the backlog: encrypted archives that some upstream did not take, kept for retry (never plaintext); empty: no backlog (the NixOS module uses /var/lib/pgarchive)", TakesFile: true},
		&cli.StringFlag{Name: "backlog-max-size", EnvVars: []string{"PGARCHIVE_BACKLOG_MAX_SIZE"}, Value: "10Gi", Usage: "largest the backlog in --state-dir may grow; when a new archive would pass it, the oldest archives are dropped from it, with an error in the log"},
		&cli.StringFlag{Name: "metrics-dir", EnvVars: []string{"PGARCHIVE_METRICS_DIR"}, Usage: "`DIR` of node_exporter's textfile collector: archive, drill, prune, heal and status write their metrics there (Prometheus text format, replaced atomically); empty: no metrics", TakesFile: true},
		&cli.StringFlag{Name: "log-target", EnvVars: []string{"PGARCHIVE_LOG_TARGET"}, Value: "auto", Usage: "auto (journald when run by systemd, else stderr), journal or stderr"},
		&cli.IntFlag{Name: "low-level-retries", EnvVars: []string{"PGARCHIVE_LOW_LEVEL_RETRIES"}, Value: 3, Usage: "how often rclone retries a failing request; S3 retries it again inside its SDK, so a dead upstream costs about N x N attempts with backoff while the others wait (rclone's own default of 10 means minutes)"},
		&cli.StringFlag{Name: "signing-key", EnvVars: []string{"PGARCHIVE_SIGNING_KEY"}, Usage: "archive, retry and heal sign each manifest with the OpenSSH ed25519 private key in `FILE` (e.g. the host's /etc/ssh/ssh_host_ed25519_key via LoadCredential; may start with $CREDENTIALS_DIRECTORY)", TakesFile: true},
		&cli.StringSliceFlag{Name: "trusted-signer", EnvVars: []string{"PGARCHIVE_TRUSTED_SIGNERS"}, Usage: "readers accept only archives signed by this public `KEY` (repeatable; an \"ssh-ed25519 AAAA... comment\" line); others are UNTRUSTED: never restored, drilled, counted or copied"},
		&cli.StringFlag{Name: "trusted-signers-file", EnvVars: []string{"PGARCHIVE_TRUSTED_SIGNERS_FILE"}, Usage: "like --trusted-signer, one key per line of `FILE`, # comments", TakesFile: true},
		&cli.StringFlag{Name: "max-clock-skew", EnvVars: []string{"PGARCHIVE_MAX_CLOCK_SKEW"}, Value: "10m", Usage: "an archive named more than this `DURATION` ahead of this host's clock is FUTURE: never counted as fresh, kept, deleted or restored as the latest"},
		&cli.BoolFlag{Name: "verbose", Usage: "also log debug details, including rclone's"},
	}
}

// Settings are the global settings after precedence is applied.
type Settings struct {
	RcloneConfig    string
	Remote          string
	Prefix          string
	Keys            keys.Sources
	DumpDir         string
	DumpCompression string
	LogTarget       string
	PgBin           string
	StateDir        string
	BacklogMaxSize  int64 // bytes
	MetricsDir      string
	SigningKey      string
	// Trusted is nil when no trusted signer is configured: readers then
	// work, but warn that authenticity is not checked.
	Trusted      *sign.Trusted
	MaxClockSkew time.Duration
	// File is the --config file as read (empty without one), for the
	// commands' own sections.
	File *config.File
}

// resolved caches the one resolution of a run: every command resolves the
// global settings once, and the --config file is read once (setupLogging
// needs its log target before any command runs).
var resolved struct {
	file     *config.File
	settings *Settings
}

// configFile reads --config once per run; no --config is an empty file.
func configFile(c *cli.Context) (*config.File, error) {
	if resolved.file != nil {
		return resolved.file, nil
	}
	file := &config.File{}
	if p := c.String("config"); p != "" {
		var err error
		if file, err = config.Load(p); err != nil {
			return nil, err
		}
	}
	resolved.file = file
	return file, nil
}

// settings returns the global settings, resolved on first use.
func settings(c *cli.Context) (*Settings, error) {
	if resolved.settings == nil {
		s, err := resolveSettings(c)
		if err != nil {
			return nil, err
		}
		resolved.settings = s
	}
	return resolved.settings, nil
}

// resolveSettings applies flag > environment > config file > default.
// urfave's IsSet is true for both flags and environment variables.
func resolveSettings(cmd *cli.Context) (*Settings, error) {
	file, err := configFile(cmd)
	if err != nil {
		return nil, err
	}
	// The global flags, not a command's own flags of the same name
	// (restore's --identity-file).
	c := globalContext(cmd)
	// An empty environment variable (RCLONE_CONFIG= exported by a shell
	// profile, say) does not hide the file's value.
	pick := func(name, fromFile string) string {
		if (c.IsSet(name) && c.String(name) != "") || fromFile == "" {
			return c.String(name)
		}
		return fromFile
	}
	s := &Settings{
		File:            file,
		RcloneConfig:    pick("rclone-config", file.RcloneConfig),
		Remote:          pick("remote", file.Remote),
		Prefix:          pick("prefix", file.Prefix),
		DumpDir:         pick("dump-dir", file.DumpDir),
		DumpCompression: pick("dump-compression", file.DumpCompression),
		LogTarget:       pick("log-target", file.LogTarget),
		PgBin:           pick("pg-bin", file.PgBin),
		StateDir:        pick("state-dir", file.StateDir),
		MetricsDir:      pick("metrics-dir", file.MetricsDir),
		SigningKey:      pick("signing-key", file.SigningKey),
		Keys: keys.Sources{
			Recipients:     file.Recipients,
			RecipientsFile: file.RecipientsFile,
			IdentityFile:   file.IdentityFile,
			PassphraseFile: file.PassphraseFile,
		},
	}
	// Keys come from one place: any key given as a flag or in the
	// environment replaces all of the file's (its identity would otherwise
	// join a passphrase given by hand, which age refuses).
	for _, name := range []string{"recipient", "recipients-file", "identity-file", "passphrase-file"} {
		if c.IsSet(name) && c.String(name) != "" {
			s.Keys = keys.Sources{Recipients: c.StringSlice("recipient"), RecipientsFile: c.String("recipients-file"),
				IdentityFile: c.String("identity-file"), PassphraseFile: c.String("passphrase-file")}
			break
		}
	}
	remote.RegisterRemoteSecrets(s.Remote)
	if s.BacklogMaxSize, err = config.ParseSize(pick("backlog-max-size", file.BacklogMaxSize)); err != nil {
		return nil, usageError("--backlog-max-size: %v", err)
	}
	if s.MaxClockSkew, err = config.ParseClockSkew(pick("max-clock-skew", file.MaxClockSkew)); err != nil {
		return nil, usageError("--max-clock-skew: %v", err)
	}
	signersFile := pick("trusted-signers-file", file.TrustedSignersFile)
	for _, p := range []*string{&s.RcloneConfig, &s.Keys.RecipientsFile, &s.Keys.IdentityFile, &s.Keys.PassphraseFile, &s.SigningKey, &signersFile} {
		if *p, err = config.ExpandCredentials(*p, os.Getenv); err != nil {
			return nil, err
		}
	}
	signers := file.TrustedSigners
	if c.IsSet("trusted-signer") {
		signers = c.StringSlice("trusted-signer")
	}
	if s.Trusted, err = sign.LoadTrusted(signers, signersFile); err != nil {
		return nil, err
	}
	return s, nil
}

// globalContext is the context that parsed the global flags: the one whose
// command (urfave's root command) defines --config.
func globalContext(c *cli.Context) *cli.Context {
	for _, x := range c.Lineage() {
		if x.Command == nil {
			continue
		}
		for _, f := range x.Command.Flags {
			for _, n := range f.Names() {
				if n == "config" {
					return x
				}
			}
		}
	}
	return c
}

// setupLogging routes pgarchive's and rclone's logs to one handler and
// applies the settings rclone reads from its global config.
func setupLogging(c *cli.Context) error {
	target := c.String("log-target")
	if !c.IsSet("log-target") {
		// A config file that can't be read is reported by the command,
		// through the logger set up here.
		if f, err := configFile(c); err == nil && f.LogTarget != "" {
			target = f.LogTarget
		}
	}
	if err := config.ValidateLogTarget(target); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	t, err := logging.Choose(target, os.Getenv)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	ci := fs.GetConfig(c.Context)
	ci.LogLevel = fs.LogLevelNotice
	if n := c.Int("low-level-retries"); n >= 1 {
		ci.LowLevelRetries = n
	} else {
		return cli.Exit("--low-level-retries must be at least 1", exitUsage)
	}
	if c.Bool("verbose") {
		level = slog.LevelDebug
		ci.LogLevel = fs.LogLevelDebug
	}
	// Before anything can log: rclone prints environment-given secrets
	// while it sets up a remote (--verbose).
	remote.RegisterEnvSecrets()
	h := logging.New(t, level, os.Stderr)
	logHandler = h
	logger = slog.New(h)
	fs.SetLogger(h)
	return nil
}

func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}
