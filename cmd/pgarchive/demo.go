package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/demo"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
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
	fmt.Fprintf(out, "\nTry:\n  age -d -i %s %s | gunzip | head\n", w.IdentityFile, filepath.Join(w.Upstreams[0], filepath.FromSlash(res.Key)))
	// Every reader goes through the settings file, which trusts the demo's
	// signing key: what they show is checked, signatures included.
	cfg := w.Settings
	fmt.Fprintf(out, "  pgarchive --config %s list\n", cfg)
	fmt.Fprintf(out, "  pgarchive --config %s verify --deep --identity-file %s\n", cfg, w.IdentityFile)
	fmt.Fprintf(out, "  pgarchive --config %s restore --database %s --output - --identity-file %s | head\n", cfg, c.String("database"), w.IdentityFile)
	fmt.Fprintf(out, "  pgarchive --config %s status\n", cfg)
	fmt.Fprintf(out, "  rm -r %s/%s && pgarchive --config %s heal   # then list again\n", w.Upstreams[1], c.String("database"), cfg)
	fmt.Fprintf(out, "  pgarchive --config %s prune --keep-daily 7 --dry-run\n", cfg)
	fmt.Fprintf(out, "  ssh-keygen -Y check-novalidate -n pgarchive -s %s.manifest.json.sig < %s.manifest.json\n", filepath.Join(w.Upstreams[0], filepath.FromSlash(res.Key)), filepath.Join(w.Upstreams[0], filepath.FromSlash(res.Key)))
	return nil
}
