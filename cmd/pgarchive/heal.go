package main

import (
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/job"
)

func healCommand() *cli.Command {
	return &cli.Command{
		Name:      "heal",
		Usage:     "copy archives to the upstreams that lack a good copy, from one that has it (no key needed)",
		ArgsUsage: " ",
		Description: `Lists every upstream of --remote and, for each archive, finds the writable upstreams whose
copy is MISSING, INCOMPLETE, NO-DATA or WRONG-SIZE (as list shows them) or whose backend
hash contradicts the manifest (as keyless verify checks it: MD5 on S3 single-part
objects, CRC-32 on local folders). Each such copy is replaced from an upstream holding a
complete copy: the ciphertext streams from that source to the target, its SHA-256 is
computed on the way, and the target gets its manifest only if the SHA-256 matches the
manifest's and the target verifies the upload (size, and hash where it offers one). A
stale manifest on the target is removed before its data is replaced, so a half-healed
copy never looks complete. If a source turns out damaged while it is read, the next
complete copy is used, and the damaged one is healed as well. Only ciphertext moves: no
key is needed. Read-only (:ro) and no-create (:nc) union members serve as sources only.
An archive that only :ro members still hold whole is not copied to upstreams that hold
nothing of it: prune removed it there (prune never deletes on :ro), and bringing it back
would undo every prune.

--quick trusts the listing and skips asking for backend hashes, which local and SFTP
upstreams compute by reading every copy; it still never copies a damaged source (every
byte moved is checked). archive --heal runs a quick heal of its database.

Every copy healed (or not) is logged: "healed db1/db1_...age on minio-b from minio-a".
Exit status 1 if any copy could not be healed or an upstream could not be listed.

With --metrics-dir (a global option) each heal but a --dry-run writes pgarchive-heal.prom,
per database and writable upstream, labelled command="heal": the last success time, or the
last failure time when a copy there could not be healed or the upstream could not be
listed, and pgarchive_archives, the database's archives with a complete copy there after
the heal (dropped for an unlisted upstream). archive --heal records its database there too;
databases a run did not touch keep their series.

Examples:
   pgarchive --config /etc/pgarchive.json heal --dry-run
   pgarchive heal --database db1
   pgarchive --config /etc/pgarchive.json --metrics-dir /var/lib/prometheus-node-exporter heal --quick`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database", Aliases: []string{"d"}, Usage: "only archives of database `NAME`"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "only say what would be healed, from where"},
			&cli.BoolFlag{Name: "quick", Usage: "trust the listing: don't ask backends for hashes of complete copies"},
		},
		Action: runHeal,
	}
}

func runHeal(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("heal takes no arguments")
	}
	ctx, cancel := signalContext()
	defer cancel()
	db := c.String("database")
	s, err := openSession(ctx, c, db)
	if err != nil {
		return err
	}
	return job.Heal(ctx, job.HealOptions{Catalog: s.cat, Upstreams: s.ups, Database: db,
		Quick: c.Bool("quick"), DryRun: c.Bool("dry-run"), MetricsDir: s.settings.MetricsDir, Log: logger})
}
