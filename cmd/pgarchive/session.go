package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/job"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// store is the remote a command works on, after the one prelude every
// command that touches it runs: settings resolved, prefix and remote name
// checked, rclone.conf loaded.
type store struct {
	settings *Settings
	prefix   string
}

// openStore runs the prelude. db, when not "", is checked as a database
// name. Nothing is contacted yet: see upstreams.
func openStore(c *cli.Context, db string) (*store, error) {
	s, err := settings(c)
	if err != nil {
		return nil, err
	}
	if db != "" {
		if err := naming.ValidateDatabase(db); err != nil {
			return nil, usageError("%v", err)
		}
	}
	prefix, err := naming.CleanPrefix(s.Prefix)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if err := config.ValidateRemote(s.Remote); err != nil {
		return nil, usageError("%v", err)
	}
	if err := remote.LoadConfig(s.RcloneConfig); err != nil {
		return nil, err
	}
	return &store{settings: s, prefix: prefix}, nil
}

// upstreams resolves the remote's members: the writable ones, or with
// opt.Read every member (read-only ones too).
func (st *store) upstreams(ctx context.Context, opt remote.Options) ([]*remote.Upstream, error) {
	return remote.Resolve(ctx, st.settings.Remote, opt)
}

// policy is the trust policy readers judge archives by. It says once per
// run when authenticity is not checked.
func (st *store) policy() catalog.Policy {
	if st.settings.Trusted == nil && !warnedUnsigned {
		warnedUnsigned = true
		logger.Warn(job.NoTrustWarning)
	}
	return catalog.Policy{Trusted: st.settings.Trusted, MaxSkew: st.settings.MaxClockSkew}
}

// warnedUnsigned makes the warning above once per run.
var warnedUnsigned bool

// session is what every read-side command starts from: the store, every
// upstream of the remote (read-only members too) and their catalog.
type session struct {
	*store
	ups []*remote.Upstream
	cat *catalog.Catalog
}

func openSession(ctx context.Context, c *cli.Context, db string) (*session, error) {
	st, err := openStore(c, db)
	if err != nil {
		return nil, err
	}
	ups, err := st.upstreams(ctx, remote.Options{Read: true})
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Scan(ctx, ups, st.prefix, db, st.policy())
	if err != nil {
		return nil, err
	}
	return &session{store: st, ups: ups, cat: cat}, nil
}

// openSessionFor opens a session for commands taking --database more than
// once: one database narrows the listing to its folder; several (or none)
// need the whole catalog, which the command then filters.
func openSessionFor(ctx context.Context, c *cli.Context, dbs []string) (*session, error) {
	if len(dbs) == 1 {
		return openSession(ctx, c, dbs[0])
	}
	return openSession(ctx, c, "")
}

// deletable says per upstream whether prune may delete there (not on
// read-only union members).
func (s *session) deletable() []bool {
	out := make([]bool, len(s.ups))
	for i, u := range s.ups {
		out[i] = u.Deletes()
	}
	return out
}

// unlisted fails when an upstream could not be listed.
func (s *session) unlisted() error { return job.Unlisted(s.cat) }

// signalContext ends on SIGINT or SIGTERM, so that every command stops its
// children and cleans up instead of dying mid-way.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// decryptKey reads the read side's key: the command's own flags first, then
// the global settings (an archive host's identity-file decrypts too).
func decryptKey(c *cli.Context, s *Settings) (*keys.Identities, error) {
	id, pass := c.String("identity-file"), c.String("passphrase-file")
	if id == "" && pass == "" {
		id, pass = s.Keys.IdentityFile, s.Keys.PassphraseFile
	}
	var err error
	for _, p := range []*string{&id, &pass} {
		if *p, err = config.ExpandCredentials(*p, os.Getenv); err != nil {
			return nil, err
		}
	}
	return keys.LoadIdentities(id, pass)
}

func keyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "identity-file", Aliases: []string{"i"}, Usage: "decrypt with the age or SSH private key in `FILE` (may start with $CREDENTIALS_DIRECTORY); this command's own, it overrides the global --identity-file", TakesFile: true},
		&cli.StringFlag{Name: "passphrase-file", Usage: "decrypt with the passphrase on the first line of `FILE`; overrides the global --passphrase-file", TakesFile: true},
	}
}
