package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/demo"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole archive job on local folders, a generated key and a sample dump",
		Description: `Creates DIR (default: a new temporary directory) holding two local folders joined in an
rclone union named archive-target-database, a new age identity, and a gzip'd sample dump
(or --dump), then archives the dump exactly as "archive" does, decrypts every stored copy
with the identity and checks it equals the dump. Global flags are ignored.

Example:
   pgarchive demo --dir /tmp/pgarchive-demo`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work in `DIR` instead of a new temporary directory"},
			&cli.StringFlag{Name: "dump", Usage: "archive this dump `FILE` instead of the sample", TakesFile: true},
			&cli.StringFlag{Name: "database", Value: "demo", Usage: "database `NAME` to file the archive under"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	dir := c.String("dir")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "pgarchive-demo-"); err != nil {
			return err
		}
	}
	w, err := demo.Setup(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if d := c.String("dump"); d != "" {
		w.Dump = d
	}
	k, err := keys.Load(keys.Sources{Recipients: []string{w.Recipient}})
	if err != nil {
		return err
	}
	src, err := archive.OpenFile(w.Dump)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := remote.LoadConfig(w.RcloneConfig); err != nil {
		return err
	}
	ctx := context.Background()
	ups, err := remote.Resolve(ctx, w.Remote, remote.Options{})
	if err != nil {
		return err
	}
	signer, err := sign.LoadSigner(w.SigningKey)
	if err != nil {
		return err
	}
	res, err := archive.Run(ctx, archive.Job{
		Database: c.String("database"), Source: src, Keys: k, Upstreams: ups,
		Log: logger, Version: version, Host: "demo", Now: time.Now, Signer: signer, CheckDump: true,
	})
	if err != nil {
		return err
	}
	out := c.App.Writer
	fmt.Fprintf(out, "\nDemo world in %s:\n  rclone config  %s\n  identity       %s\n  signing key    %s (trusted by %s)\n  dump           %s\n",
		dir, w.RcloneConfig, w.IdentityFile, w.SigningKey, w.Settings, w.Dump)
	for _, up := range w.Upstreams {
		stored := filepath.Join(up, filepath.FromSlash(res.Key))
		if err := w.Decrypt(stored); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		fmt.Fprintf(out, "  stored         %s (+ .manifest.json, signed in .manifest.json.sig): decrypts to the dump\n", stored)
	}
	self, err := selfCommand(dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	q := textfmt.ShellQuote
	data := filepath.Join(w.Upstreams[0], filepath.FromSlash(res.Key))
	fmt.Fprintf(out, "\nTry:\n  age -d -i %s %s | gunzip | head\n", q(w.IdentityFile), q(data))
	// Every reader goes through the settings file, which trusts the demo's
	// signing key: what they show is checked, signatures included.
	pga := self + " --config " + q(w.Settings)
	db := c.String("database")
	fmt.Fprintf(out, "  %s list\n", pga)
	fmt.Fprintf(out, "  %s verify --deep --identity-file %s\n", pga, q(w.IdentityFile))
	fmt.Fprintf(out, "  %s restore --database %s --output - --identity-file %s | head\n", pga, q(db), q(w.IdentityFile))
	fmt.Fprintf(out, "  %s status\n", pga)
	fmt.Fprintf(out, "  %s report --html %s   # open it in a browser\n", pga, q(filepath.Join(dir, "report.html")))
	fmt.Fprintf(out, "  rm -r %s && %s heal   # then list again\n", q(filepath.Join(w.Upstreams[1], db)), pga)
	fmt.Fprintf(out, "  %s prune --keep-daily 7 --dry-run\n", pga)
	fmt.Fprintf(out, "  ssh-keygen -Y check-novalidate -n pgarchive -s %s < %s\n", q(data+".manifest.json.sig"), q(data+".manifest.json"))
	return nil
}

// selfCommand is how the printed follow-ups call pgarchive, so that they
// work as printed: "pgarchive" when that is this binary on PATH, else its
// absolute path. A `go run` build is deleted when it exits, so it is
// copied into the demo directory first.
func selfCommand(dir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if p, err := exec.LookPath("pgarchive"); err == nil {
		a, errA := os.Stat(p)
		b, errB := os.Stat(exe)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return "pgarchive", nil
		}
	}
	if !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return textfmt.ShellQuote(exe), nil
	}
	dst := filepath.Join(dir, "bin", "pgarchive")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteBytes(dst, data, atomicfile.Options{Perm: 0o755}); err != nil {
		return "", err
	}
	return textfmt.ShellQuote(dst), nil
}
