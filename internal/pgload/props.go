package pgload

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// Props are what a dump says about the database it was taken of, for
// creating the target alike: pg_dump -C writes them in its CREATE DATABASE
// statement, and every pg_dump sets client_encoding to the database's
// encoding first. Empty fields are unknown.
type Props struct {
	Encoding       string
	LocaleProvider string // libc, icu, builtin
	Locale         string // LOCALE: collate and ctype alike
	Collate        string
	Ctype          string
	ICULocale      string
	Owner          string
}

// propsScanLimit bounds how much of a dump is read for its properties: they
// sit in its first statements, before any data.
const propsScanLimit = 1 << 20

var (
	createDBRe   = regexp.MustCompile(`(?i)^CREATE DATABASE\s+("(?:[^"]|"")+"|\S+)\s+WITH\s+(.*);\s*$`)
	createOptRe  = regexp.MustCompile(`(?i)\b(ENCODING|LOCALE_PROVIDER|LOCALE|LC_COLLATE|LC_CTYPE|ICU_LOCALE|BUILTIN_LOCALE)\s*=\s*('(?:[^']|'')*'|\w+)`)
	clientEncRe  = regexp.MustCompile(`(?i)^SET client_encoding = '([A-Za-z0-9_]+)';\s*$`)
	ownerRe      = regexp.MustCompile(`(?i)^ALTER DATABASE\s+("(?:[^"]|"")+"|\S+)\s+OWNER TO\s+("(?:[^"]|"")+"|\S+);\s*$`)
	encodingName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// ScanProps reads a plain SQL dump's first statements (at most
// propsScanLimit bytes, stopping at the first COPY) for its properties.
// It never fails: what it cannot find stays empty.
func ScanProps(head []byte) Props {
	var p Props
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Buffer(make([]byte, 64<<10), propsScanLimit)
	var read int
	for sc.Scan() {
		line := sc.Text()
		read += len(line) + 1
		if read > propsScanLimit || strings.HasPrefix(line, "COPY ") {
			break
		}
		if m := clientEncRe.FindStringSubmatch(line); m != nil && p.Encoding == "" {
			p.Encoding = m[1]
			continue
		}
		if m := createDBRe.FindStringSubmatch(line); m != nil {
			for _, o := range createOptRe.FindAllStringSubmatch(m[2], -1) {
				v := unquoteLiteral(o[2])
				switch strings.ToUpper(o[1]) {
				case "ENCODING":
					if encodingName.MatchString(v) {
						p.Encoding = v
					}
				case "LOCALE_PROVIDER":
					p.LocaleProvider = strings.ToLower(v)
				case "LOCALE":
					p.Locale = v
				case "LC_COLLATE":
					p.Collate = v
				case "LC_CTYPE":
					p.Ctype = v
				case "ICU_LOCALE":
					p.ICULocale = v
				}
			}
			continue
		}
		if m := ownerRe.FindStringSubmatch(line); m != nil && p.Owner == "" {
			p.Owner = unquoteIdent(m[2])
		}
	}
	return p
}

func unquoteLiteral(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return strings.ToLower(s)
}

// createOptions renders the WITH clause for CREATE DATABASE: template0, and
// what the dump says. Values are quoted literals, names checked, so nothing
// from the store reaches SQL unquoted.
func (p Props) createOptions(owner string) string {
	var b strings.Builder
	b.WriteString(" WITH TEMPLATE = template0")
	lit := func(k, v string) {
		if v != "" {
			b.WriteString(" " + k + " = '" + strings.ReplaceAll(v, "'", "''") + "'")
		}
	}
	lit("ENCODING", p.Encoding)
	switch p.LocaleProvider {
	case "libc", "icu", "builtin":
		b.WriteString(" LOCALE_PROVIDER = " + p.LocaleProvider)
	}
	if p.Locale != "" {
		lit("LOCALE", p.Locale)
	} else {
		lit("LC_COLLATE", p.Collate)
		lit("LC_CTYPE", p.Ctype)
	}
	lit("ICU_LOCALE", p.ICULocale)
	if owner != "" {
		b.WriteString(" OWNER = " + quoteIdent(owner))
	}
	return b.String()
}

// Describe says what the target is created with, for the log.
func (p Props) Describe() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	add("encoding", p.Encoding)
	add("locale provider", p.LocaleProvider)
	add("locale", p.Locale)
	add("collate", p.Collate)
	add("ctype", p.Ctype)
	add("icu locale", p.ICULocale)
	if len(parts) == 0 {
		return "the cluster's defaults"
	}
	return strings.Join(parts, ", ")
}
