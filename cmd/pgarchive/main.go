// Command pgarchive encrypts PostgreSQL dumps with age and stores them on
// every upstream of an rclone remote. See README.md and docs/format.md.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/rclone/rclone/lib/atexit"
	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/logging"
	"github.com/pgarchive/pgarchive/internal/redact"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// exitUsage marks errors in how pgarchive was called, as opposed to
// failures while archiving.
const exitUsage = 2

func main() {
	// rclone's backends register exit handlers that, on SIGTERM, abort
	// uploads and os.Exit(143) at once: no log line, no failure metric.
	// pgarchive handles SIGTERM and SIGINT itself (signalContext), and
	// cancelling the context aborts the same uploads.
	atexit.IgnoreSignals()
	app := newApp()
	err := app.Run(hoistGlobalFlags(app, os.Args))
	if err != nil && err.Error() != "" {
		if logger != nil {
			logger.Error(err.Error())
		} else {
			fmt.Fprintf(os.Stderr, "pgarchive: error: %s\n", redact.Default.String(err.Error()))
		}
	}
	if logHandler != nil {
		logHandler.Flush()
	}
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// logger and logHandler are set up by the Before hook once the log target
// is known.
var (
	logger     *slog.Logger
	logHandler *logging.Handler
)

func newApp() *cli.App {
	app := &cli.App{
		Name:    "pgarchive",
		Usage:   "encrypt PostgreSQL dumps with age and store them on every upstream of an rclone remote",
		Version: version,
		Description: `pgarchive runs after each pg_dump (as ExecStartPost of NixOS' postgresqlBackup units)
and turns the plaintext dump into an age-encrypted archive on every upstream of an rclone
union: each upstream is uploaded to concurrently, verified, and given a manifest only once
its copy is complete. Plaintext never leaves the host.

Settings come from flags, then environment variables, then the JSON file given with
--config (keys are the long flag names, e.g. {"remote": "archive-target-database:",
"recipients": ["age1..."]}), then the defaults shown below. Keys come from one place: a key
given as a flag or in the environment replaces every key in the file. The scheduled
commands read their own options from sections of the file, keyed by their flag names:
{"drill": {"database": ["db1"], "max-age": "26h", "checks-file": "..."}, "status":
{"database": [...], "max-age": "26h"}, "prune": {"keep-daily": 7, "keep-within": "30d",
"database": [...], "rclone-config": "..."}}; flags given to the command win, and any
--keep-* flag replaces the file's keep rules as a whole. pgarchive check-config validates
a file with the parsers the commands use.

Examples:
   pgarchive --rclone-config /run/secrets/rclone.conf --recipient age1ql3z... archive --database db1
   pg_dump -C db2 | zstd | pgarchive --config /etc/pgarchive.json archive --database db2 --file -
   pgarchive demo        # the whole job on local folders, a generated key and a sample dump`,
		Flags:  globalFlags(),
		Before: setupLogging,
		Commands: []*cli.Command{archiveCommand(), listCommand(), verifyCommand(), restoreCommand(), drillCommand(), pruneCommand(), statusCommand(), reportCommand(),
			notifyCommand(), retryCommand(), healCommand(), checkConfigCommand(), demoCommand(),
			walPushCommand(), walFetchCommand(), basebackupCommand(), restoreClusterCommand()},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // main reports errors, through the logger
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return cli.Exit(fmt.Sprintf("%v (see pgarchive --help)", err), exitUsage)
		},
	}
	for _, cmd := range app.Commands {
		cmd.CustomHelpTemplate = cli.CommandHelpTemplate + globalNote
	}
	return app
}

// globalNote ends every command's help: the global flags are not repeated
// there, but are accepted on either side of the command name.
const globalNote = `
GLOBAL OPTIONS:
   Every global option (pgarchive --help lists them: --config, --rclone-config, --remote,
   --recipient, --signing-key, --trusted-signer, ...) may come before or after the command
   name: pgarchive archive --database db1 --recipient age1... works. An option this command
   defines itself (above) is this command's: restore --identity-file decrypts with that key.
`
