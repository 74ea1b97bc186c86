package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/config"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
	"github.com/pgarchive/pgarchive/internal/verify"
)

// session is what every read-side command starts from: the settings, every
// upstream of the remote (read-only members too) and their catalog.
type session struct {
	settings *Settings
	prefix   string
	ups      []*remote.Upstream
	cat      *catalog.Catalog
}

func openSession(ctx context.Context, c *cli.Context, db string) (*session, error) {
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
	ups, err := remote.Resolve(ctx, s.Remote, remote.Options{Read: true})
	if err != nil {
		return nil, err
	}
	cat, err := scan(ctx, s, ups, prefix, db)
	if err != nil {
		return nil, err
	}
	return &session{settings: s, prefix: prefix, ups: ups, cat: cat}, nil
}

// scan reads the catalog under the settings' trust policy, saying once per
// run when authenticity is not checked.
func scan(ctx context.Context, s *Settings, ups []*remote.Upstream, prefix, db string) (*catalog.Catalog, error) {
	if s.Trusted == nil && !warnedUnsigned {
		warnedUnsigned = true
		logger.Warn("authenticity is not checked: no --trusted-signer is configured, so anyone who can write to the store can plant archives that look genuine")
	}
	return catalog.Scan(ctx, ups, prefix, db, catalog.Policy{Trusted: s.Trusted, MaxSkew: s.MaxClockSkew})
}

// warnedUnsigned makes the warning above once per run.
var warnedUnsigned bool

// databaseFlags returns the repeatable --database values, each checked.
func databaseFlags(c *cli.Context) ([]string, error) {
	dbs := c.StringSlice("database")
	for _, db := range dbs {
		if err := naming.ValidateDatabase(db); err != nil {
			return nil, usageError("%v", err)
		}
	}
	return dbs, nil
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

// unlisted reports upstreams that could not be listed; their absence makes
// every listing incomplete, so the commands fail after showing the rest.
func (s *session) unlisted() error {
	var bad []string
	for i, err := range s.cat.ListErrs {
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", s.cat.Upstreams[i], err))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("could not list %d of %d upstreams: %s", len(bad), len(s.cat.Upstreams), strings.Join(bad, "; "))
}

// signalContext ends on SIGINT or SIGTERM, so that restores and drills stop
// their children and clean up instead of dying mid-way.
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

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list archives, newest first, and which upstreams hold a complete copy",
		Description: `Lists every upstream of --remote (read-only union members too) and shows each archive once:
database, creation time (from its name, never from storage timestamps), size, and per
upstream one of:
   ok            its own manifest present and its data object of that manifest's size
   MISSING       nothing there
   INCOMPLETE    data without manifest: a failed (or still running) upload
   NO-DATA       manifest without data
   WRONG-SIZE    data object size differs from its manifest
   BAD-MANIFEST  its manifest can't be read or validated
   DIFFERS       its manifest differs from the archive's (the one the copies whose data
                 agrees with it hold, or the trusted one); heal replaces it
   UNTRUSTED     whole, but with trusted signers configured no copy's manifest carries a
                 valid signature by one of them (never restored, drilled or counted)
An archive named more than --max-clock-skew ahead of this host's clock is marked FUTURE.
No key is needed. Exit status 1 when an upstream could not be listed.

Examples:
   pgarchive --config /etc/pgarchive.json list
   pgarchive list --database db1 --json | jq '.[0]'`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array for scripts instead of a table"},
		},
		Action: runList,
	}
}

func runList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("list takes no arguments")
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSession(ctx, c, c.String("database"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		err = printJSON(c, s.cat)
	} else {
		printTable(c, s.cat)
	}
	if err != nil {
		return err
	}
	return s.unlisted()
}

type jsonCopy struct {
	Upstream string `json:"upstream"`
	State    string `json:"state"`
	Size     *int64 `json:"size,omitempty"`
}

type jsonArchive struct {
	Database    string     `json:"database"`
	Archive     string     `json:"archive"`
	Key         string     `json:"key"`
	Created     time.Time  `json:"created"`
	Size        int64      `json:"size"`
	DumpSize    int64      `json:"dump_size,omitempty"`
	Compression string     `json:"compression,omitempty"`
	Complete    int        `json:"complete_copies"`
	Healthy     bool       `json:"healthy"`
	Trust       string     `json:"trust"` // unchecked, trusted or untrusted
	Signer      string     `json:"signer,omitempty"`
	Future      bool       `json:"future,omitempty"`
	Copies      []jsonCopy `json:"copies"`
}

func printJSON(c *cli.Context, cat *catalog.Catalog) error {
	out := make([]jsonArchive, 0, len(cat.Archives))
	for _, a := range cat.Archives {
		j := jsonArchive{Database: a.Name.Database, Archive: a.Name.Base(), Key: a.Key, Created: a.Name.Created,
			Size: archiveSize(a), Complete: len(a.CompleteCopies()), Healthy: a.Healthy(),
			Trust: a.Trust.String(), Signer: a.Signer, Future: a.Future}
		if a.Manifest != nil {
			j.DumpSize, j.Compression = a.Manifest.Dump.Size, a.Manifest.Dump.Compression
		}
		for i, cp := range a.Copies {
			jc := jsonCopy{Upstream: cat.Upstreams[i], State: a.State(i).String()}
			if cp.HasData {
				jc.Size = &cp.DataSize
			}
			j.Copies = append(j.Copies, jc)
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// archiveSize is the manifest's size, else the largest copy seen.
func archiveSize(a *catalog.Archive) int64 {
	if a.Manifest != nil {
		return a.Manifest.Ciphertext.Size
	}
	var n int64
	for _, cp := range a.Copies {
		n = max(n, cp.DataSize)
	}
	return n
}

func printTable(c *cli.Context, cat *catalog.Catalog) {
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "DATABASE\tCREATED (UTC)\tSIZE\tARCHIVE\t%s\n", strings.Join(cat.Upstreams, "\t"))
	bad := 0
	for _, a := range cat.Archives {
		states := make([]string, len(a.Copies))
		for i := range a.Copies {
			st := a.State(i)
			states[i] = st.String()
			if st != catalog.Complete {
				states[i] = strings.ToUpper(states[i])
			}
		}
		if !a.Healthy() {
			bad++
		}
		created := a.Name.Created.Format("2006-01-02 15:04:05")
		if a.Future {
			created += " FUTURE"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.Name.Database, created,
			textfmt.Bytes(archiveSize(a)), a.Name.Base(), strings.Join(states, "\t"))
	}
	w.Flush()
	fmt.Fprintf(c.App.Writer, "%s on %s", textfmt.Plural(len(cat.Archives), "archive"), textfmt.Plural(len(cat.Upstreams), "upstream"))
	if bad > 0 {
		fmt.Fprintf(c.App.Writer, "; %d without a complete copy on every upstream", bad)
	}
	fmt.Fprintln(c.App.Writer)
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that every upstream holds every archive intact",
		Description: `Without a key: checks each archive on every upstream: manifest present and equal to the
other upstreams' copies, data object of the manifest's size, and the backend's own hash
where the manifest records one of its kind (S3 single-part uploads: MD5; local folders:
CRC-32; SFTP: SHA-256). S3 multipart objects carry no whole-object hash: size only.
With --trusted-signer (a global flag), every copy of an UNTRUSTED archive (no valid
signature by a trusted key on any upstream) is a problem, named with the reason.

With --deep and a key: also downloads every copy, decrypts it (age's authenticated
encryption proves each chunk intact), decompresses it, compares the dump's SHA-256 with
the manifest and checks that a plain-SQL dump ends with pg_dump's completion line.

Every problem is logged naming the archive and the upstream; exit status 1 if any.

Examples:
   pgarchive --config /etc/pgarchive.json verify
   pgarchive verify --database db1 --latest --deep --identity-file /run/agenix/restore-key`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "latest", Usage: "only the newest archive of each database"},
			&cli.BoolFlag{Name: "deep", Usage: "download, decrypt and decompress every copy (needs a key)"},
		}, keyFlags()...),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("verify takes no arguments")
	}
	ctx, cancel := signalContext()
	defer cancel()
	s, err := openSession(ctx, c, c.String("database"))
	if err != nil {
		return err
	}
	opt := verify.Options{Deep: c.Bool("deep"), Log: logger}
	if opt.Deep {
		if opt.Identities, err = decryptKey(c, s.settings); err != nil {
			return err
		}
	} else if c.IsSet("identity-file") || c.IsSet("passphrase-file") {
		return usageError("a key is only used with --deep")
	}
	archives := s.cat.Archives
	if c.Bool("latest") {
		archives = newestPerDatabase(archives)
	}
	if len(archives) == 0 {
		if err := s.unlisted(); err != nil {
			return err
		}
		return fmt.Errorf("no archives found on remote %q%s", s.settings.Remote, forDB(c.String("database")))
	}
	res := verify.Run(ctx, s.ups, s.cat, archives, opt)
	if err := ctx.Err(); err != nil {
		return err
	}
	logger.Info(fmt.Sprintf("verify: %s, %s ok, %s", textfmt.Plural(res.Archives, "archive"), textfmt.Plural(res.CopiesOK, "copy"), textfmt.Plural(len(res.Problems), "problem")))
	if n := len(res.Problems); n > 0 {
		return fmt.Errorf("verify found %s (listed above)", textfmt.Plural(n, "problem"))
	}
	return nil
}

func newestPerDatabase(all []*catalog.Archive) []*catalog.Archive {
	seen := map[string]bool{}
	var out []*catalog.Archive
	for _, a := range all { // newest first
		if !seen[a.Name.Database] {
			seen[a.Name.Database] = true
			out = append(out, a)
		}
	}
	return out
}

func forDB(db string) string {
	if db == "" {
		return ""
	}
	return " for database " + db
}
