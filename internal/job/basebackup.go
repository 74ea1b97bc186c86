package job

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/basebackup"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/pgbin"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// BaseBackupOptions are basebackup's settings; Archive carries everything an archive
// run needs but its database name and source, which Run fills in.
type BaseBackupOptions struct {
	Conn        string // libpq connection string; "" uses the environment (PGHOST, ...)
	PgBin       string
	Compression string // "none", "gzip", "lz4" or "zstd" (pg_basebackup --compress=client-...)
	Archive     NightlyOptions
}

// server is what Run asks the server before the backup.
type server struct {
	cluster     walname.Cluster
	segSize     int64
	archiveMode string
}

func ask(ctx context.Context, conn string) (server, error) {
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return server{}, fmt.Errorf("connecting to the cluster: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	var s server
	var version int
	err = c.QueryRow(ctx, `SELECT system_identifier, current_setting('server_version_num')::int,
		(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), current_setting('archive_mode')
		FROM pg_control_system()`).Scan(&s.cluster.SystemID, &version, &s.segSize, &s.archiveMode)
	if err != nil {
		return server{}, fmt.Errorf("asking the cluster for its identity: %w", err)
	}
	s.cluster.Major = version / 10000
	return s, s.cluster.Validate()
}

// BaseBackup takes a base backup and archives it as database
// walname.Cluster.BaseDatabase. WAL is not included (-X none): the backup
// needs the archived WAL from its start to its stop position, so a
// cluster whose archive_mode is off is refused.
func BaseBackup(ctx context.Context, opt BaseBackupOptions) (*archive.Result, error) {
	srv, err := ask(ctx, opt.Conn)
	if err != nil {
		return nil, err
	}
	if srv.archiveMode == "off" {
		return nil, fmt.Errorf("%s has archive_mode off: a base backup without archived WAL cannot be restored; turn archiving on (archive_command = 'pgarchive wal-push %%p') first", srv.cluster)
	}
	bin, err := pgbin.Find(opt.PgBin, "pg_basebackup")
	if err != nil {
		return nil, err
	}
	args := []string{"-D", "-", "-F", "tar", "-X", "none", "-c", "fast", "-w", "-l", "pgarchive"}
	if opt.Conn != "" {
		args = append(args, "-d", opt.Conn)
	}
	if opt.Compression != "none" {
		args = append(args, "--compress=client-"+opt.Compression)
	}
	started := time.Now().UTC()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &pgbin.Tail{Max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w", err)
	}
	waited := false
	wait := func() error {
		waited = true
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("pg_basebackup failed: %v: %s", err, stderr.String())
		}
		return nil
	}
	defer func() {
		if !waited {
			cancel()
			_ = cmd.Wait()
		}
	}()
	src, err := archive.OpenStream(out)
	if err != nil {
		return nil, err
	}
	src.Label = "pg_basebackup of " + srv.cluster.String()
	in := basebackup.NewInspector(src.Compression.Name)
	a := opt.Archive
	a.Database, a.Source, a.CheckDump = srv.cluster.BaseDatabase(), src, false
	var info basebackup.Info
	var stopped time.Time
	a.Base = &archive.BaseBackup{Inspect: in,
		Finish: func() error {
			// The stream ended: pg_basebackup's verdict first, then the tar's.
			if err := wait(); err != nil {
				return err
			}
			stopped = time.Now().UTC()
			var err error
			if info, err = in.Close(); err != nil {
				return err
			}
			if info.Cluster != srv.cluster {
				return fmt.Errorf("the backup is of %s, the server said %s", info.Cluster, srv.cluster)
			}
			return nil
		},
		Describe: func() (*manifest.Base, error) {
			return &manifest.Base{SystemID: strconv.FormatUint(info.Cluster.SystemID, 10), Major: info.Cluster.Major,
				Timeline: info.Timeline, StartLSN: info.StartLSN.String(), StopLSN: info.StopLSN.String(),
				SegmentSize: srv.segSize, Started: started, Stopped: stopped}, nil
		}}
	res, err := Nightly(ctx, a)
	in.Abort() // a stream that failed early leaves the inspector waiting
	if err != nil && !waited {
		if werr := wait(); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return res, err
}
