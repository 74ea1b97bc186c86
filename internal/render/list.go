// Package render writes what the read-side commands print for people and
// scripts: list's table and JSON, status's table and JSON, prune's dry-run
// plans. It decides nothing: the catalog, status and prune packages judge,
// this package only lays their results out, so the output format lives in
// one place and can be tested without a remote.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

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
	Format      string     `json:"format,omitempty"` // plain, dumpall, custom, tar; absent when unknown
	Complete    int        `json:"complete_copies"`
	Healthy     bool       `json:"healthy"`
	Trust       string     `json:"trust"` // unchecked, trusted or untrusted
	Signer      string     `json:"signer,omitempty"`
	Future      bool       `json:"future,omitempty"`
	Copies      []jsonCopy `json:"copies"`
}

// ListJSON writes the catalog as list --json prints it.
func ListJSON(w io.Writer, cat *catalog.Catalog) error {
	out := make([]jsonArchive, 0, len(cat.Archives))
	for _, a := range cat.Archives {
		j := jsonArchive{Database: a.Name.Database, Archive: a.Name.Base(), Key: a.Key, Created: a.Name.Created,
			Size: archiveSize(a), Complete: len(a.CompleteCopies()), Healthy: a.Healthy(),
			Trust: a.Trust.String(), Signer: a.Signer, Future: a.Future}
		if a.Manifest != nil {
			j.DumpSize, j.Compression, j.Format = a.Manifest.Dump.Size, a.Manifest.Dump.Compression, a.Manifest.Dump.Format
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
	enc := json.NewEncoder(w)
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

// ListTable writes the catalog as list prints it: one row per archive,
// one column per upstream, and a summary line.
func ListTable(out io.Writer, cat *catalog.Catalog) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "DATABASE\tCREATED (UTC)\tSIZE\tFORMAT\tARCHIVE\t%s\n", strings.Join(cat.Upstreams, "\t"))
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
		format := "-"
		if a.Manifest != nil && a.Manifest.Dump.Format != "" {
			format = a.Manifest.Dump.Format
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name.Database, created,
			textfmt.Bytes(archiveSize(a)), format, a.Name.Base(), strings.Join(states, "\t"))
	}
	w.Flush()
	fmt.Fprintf(out, "%s on %s", textfmt.Plural(len(cat.Archives), "archive"), textfmt.Plural(len(cat.Upstreams), "upstream"))
	if bad > 0 {
		fmt.Fprintf(out, "; %d without a complete copy on every upstream", bad)
	}
	fmt.Fprintln(out)
}
