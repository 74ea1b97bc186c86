package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

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
