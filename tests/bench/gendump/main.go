// Command gendump writes a synthetic plain-SQL `pg_dump -C` of one table, in
// PostgreSQL 15's format, compressed with the system's `gzip -6` until the
// compressed file reaches a target size. It is benchmark input for
// tests/bench/read.sh, not a test.
//
// The rows look like an orders table: sequential ids, random account ids,
// increasing timestamps with microseconds, amounts, a status, an e-mail,
// a note of random words (10% NULL) and a random hex token, which gzip -6
// compresses about 3.5x, as real data rather than a run of zeros.
//
// It writes three files into -dir:
//
//	head-c.sql.gz  gzip member: the dump up to the COPY line, with CREATE DATABASE and \connect
//	head.sql.gz    gzip member: the same with those statements blanked, as
//	               `pgarchive restore --into` hands them to psql
//	body.sql.gz    gzip member: the COPY rows, \., the primary key and pg_dump's
//	               completion lines
//
// head-c.sql.gz + body.sql.gz is the dump (a gzip file may hold several
// members; gunzip and Go's readers read them as one stream), and head.sql.gz +
// body.sql.gz is the baseline's: both decompress the same body bytes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const restrictKey = "Bq3vTqkR7y9m1cYh2Wf0aLxN5eJ8sDgP4uZ6iKoE3rVbMnCt1HwQ7jXs9AdFlGzU"

func header(createDB bool) string {
	var b strings.Builder
	set := `SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
`
	b.WriteString("--\n-- PostgreSQL database dump\n--\n\n\\restrict " + restrictKey + "\n\n")
	b.WriteString("-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)\n")
	b.WriteString("-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)\n\n")
	b.WriteString(set)
	b.WriteString("\n--\n-- Name: bench; Type: DATABASE; Schema: -; Owner: postgres\n--\n\n")
	// The three statements pgarchive blanks (each becomes an empty line).
	create := "CREATE DATABASE bench WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';\n"
	owner := "ALTER DATABASE bench OWNER TO postgres;\n"
	connect := "\\connect bench\n"
	if !createDB {
		create, owner, connect = "\n", "\n", "\n"
	}
	b.WriteString(create + "\n\n" + owner + "\n")
	b.WriteString("\\unrestrict " + restrictKey + "\n" + connect + "\\restrict " + restrictKey + "\n\n")
	b.WriteString(set)
	b.WriteString(`
SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.orders (
    id bigint NOT NULL,
    account_id integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    amount numeric(12,2) NOT NULL,
    status text NOT NULL,
    email text NOT NULL,
    note text,
    token text
);


ALTER TABLE public.orders OWNER TO postgres;

--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.orders (id, account_id, created_at, amount, status, email, note, token) FROM stdin;
`)
	return b.String()
}

const footer = `\.


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict ` + restrictKey + "\n\n"

var (
	statuses = []string{"pending", "paid", "paid", "paid", "shipped", "shipped", "delivered", "delivered", "delivered", "cancelled", "refunded"}
	domains  = []string{"example.com", "example.org", "mail.example.net", "corp.example", "shop.example.co.uk"}
)

// vocabulary makes 1024 pronounceable pseudo-words from fixed syllables.
func vocabulary(r *rand.Rand) [][]byte {
	syl := []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "dan", "el", "fu", "gar", "hol", "in", "jor", "ost", "pra", "que", "ren", "sti", "tra", "ul", "wen", "xa", "yo", "zel", "an", "chi", "dro"}
	seen := map[string]bool{}
	var words [][]byte
	for len(words) < 1024 {
		var w strings.Builder
		for n := 1 + r.IntN(3); n > 0; n-- {
			w.WriteString(syl[r.IntN(len(syl))])
		}
		if !seen[w.String()] {
			seen[w.String()] = true
			words = append(words, []byte(w.String()))
		}
	}
	return words
}

// gzip6 compresses data with the system's gzip -6 into one gzip member.
func gzip6(data []byte) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.Command("gzip", "-6", "-c")
	cmd.Stdin = bytes.NewReader(data)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out.Bytes(), nil
}

func writeGz(path, text string) error {
	gz, err := gzip6([]byte(text))
	if err != nil {
		return err
	}
	return os.WriteFile(path, gz, 0o644)
}

func main() {
	gzMiB := flag.Float64("gz-mib", 1024, "stop adding rows once the compressed body reaches this many MiB")
	dir := flag.String("dir", ".", "where to write head-c.sql.gz, head.sql.gz and body.sql.gz")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*dir, int64(*gzMiB*(1<<20)), *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gendump:", err)
		os.Exit(1)
	}
}

func run(dir string, target int64, seed uint64) error {
	if err := writeGz(filepath.Join(dir, "head-c.sql.gz"), header(true)); err != nil {
		return err
	}
	if err := writeGz(filepath.Join(dir, "head.sql.gz"), header(false)); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "body.sql.gz"))
	if err != nil {
		return err
	}
	defer f.Close()
	g := newRows(seed)
	// Segments of segmentSize plain bytes become gzip members, compressed by
	// one gzip -6 per core and written in order: gzip -6 manages ~18 MB/s
	// of this text per core, too slow alone for a 1 GiB dump.
	const segmentSize = 32 << 20
	workers := max(runtime.NumCPU(), 1)
	order := make(chan chan []byte, workers-1) // bounds the segments in flight
	var written, consumed, lastGz atomic.Int64
	var gzErr atomic.Pointer[error]
	lastGz.Store(segmentSize / 3)
	go func() {
		defer close(order)
		for produced := int64(0); ; produced++ {
			// Stop once what is written plus what is in flight reaches the target.
			if written.Load()+(produced-consumed.Load())*lastGz.Load() >= target {
				return
			}
			seg := g.segment(segmentSize)
			done := make(chan []byte, 1)
			go func() {
				gz, err := gzip6(seg)
				if err != nil {
					gzErr.Store(&err)
				}
				done <- gz
			}()
			order <- done
		}
	}()
	for done := range order {
		gz := <-done
		if err := gzErr.Load(); err != nil {
			return *err
		}
		if _, err := f.Write(gz); err != nil {
			return err
		}
		lastGz.Store(int64(len(gz)))
		written.Add(int64(len(gz)))
		consumed.Add(1)
	}
	gzBytes := written.Load()
	tailGz, err := gzip6([]byte(footer))
	if err != nil {
		return err
	}
	if _, err := f.Write(tailGz); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	gzBytes += int64(len(tailGz))
	plain := g.plain + int64(len(header(true))+len(footer))
	fmt.Printf("rows=%d plain_bytes=%d body_gz_bytes=%d ratio=%.2f\n", g.rows, plain, gzBytes, float64(plain)/float64(gzBytes))
	return nil
}

// rows makes the COPY rows of the orders table.
type rows struct {
	r     *rand.Rand
	words [][]byte
	zipf  *rand.Zipf
	ts    int64
	rows  int64
	plain int64
}

func newRows(seed uint64) *rows {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	words := vocabulary(r)
	return &rows{r: r, words: words,
		zipf: rand.NewZipf(r, 1.1, 2, uint64(len(words)-1)), // some words are common, as in text
		ts:   time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}
}

// segment returns whole rows of at least size bytes.
func (g *rows) segment(size int) []byte {
	const hexdig = "0123456789abcdef"
	r := g.r
	row := make([]byte, 0, size+4096)
	for len(row) < size {
		g.rows++
		g.ts += int64(r.IntN(4))
		acct := 1 + r.IntN(200000)
		row = strconv.AppendInt(row, g.rows, 10)
		row = append(row, '\t')
		row = strconv.AppendInt(row, int64(acct), 10)
		row = append(row, '\t')
		row = time.Unix(g.ts, 0).UTC().AppendFormat(row, "2006-01-02 15:04:05")
		if us := r.IntN(1000000); us > 0 { // as PostgreSQL prints them: no trailing zeros
			row = append(row, '.')
			for d := 100000; d > 0 && us > 0; d /= 10 {
				row = append(row, byte('0'+us/d))
				us %= d
			}
		}
		row = append(row, "+00\t"...)
		row = strconv.AppendInt(row, int64(r.IntN(500)), 10)
		row = append(row, '.')
		row = append(row, byte('0'+r.IntN(10)), byte('0'+r.IntN(10)), '\t')
		row = append(row, statuses[r.IntN(len(statuses))]...)
		row = append(row, "\tuser"...)
		row = strconv.AppendInt(row, int64(acct), 10)
		row = append(row, '@')
		row = append(row, domains[acct%len(domains)]...)
		row = append(row, '\t')
		if r.IntN(10) == 0 {
			row = append(row, `\N`...)
		} else {
			for n := 4 + r.IntN(13); n > 0; n-- {
				row = append(row, g.words[g.zipf.Uint64()]...)
				if n > 1 {
					row = append(row, ' ')
				}
			}
		}
		row = append(row, '\t')
		if r.IntN(2) == 0 {
			row = append(row, `\N`...)
		} else {
			for i := 0; i < 12; i++ {
				row = append(row, hexdig[r.IntN(16)])
			}
		}
		row = append(row, '\n')
	}
	g.plain += int64(len(row))
	return row
}
