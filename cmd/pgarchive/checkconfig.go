package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/config"
)

func checkConfigCommand() *cli.Command {
	return &cli.Command{
		Name:      "check-config",
		Usage:     "validate a settings file without touching secrets or the network",
		ArgsUsage: "FILE",
		Description: `Checks that FILE is a settings object pgarchive accepts: known keys only, a sane remote,
prefix, compression and log target, and a valid combination of key sources. Secret files
are not opened (they exist only at run time). The NixOS module runs this at build time.

Example:
   pgarchive check-config /etc/pgarchive.json`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("check-config takes exactly one FILE")
			}
			if _, err := config.Load(c.Args().First()); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: ok\n", c.Args().First())
			return nil
		},
	}
}
