// Package textfmt renders counts and sizes for people, the same way in log
// lines, tables, notices and errors. It is pure and has no dependencies, so
// any package may use it without pulling in I/O.
package textfmt

import (
	"fmt"
	"strings"
)

// Plural renders "1 archive", "2 archives", "3 copies": nouns ending in a
// consonant and y take -ies.
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if len(noun) >= 2 && strings.HasSuffix(noun, "y") && !strings.ContainsRune("aeiou", rune(noun[len(noun)-2])) {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Bytes renders a size in binary units with one decimal (512 B, 1.5 GiB).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ShellQuote quotes s for a POSIX shell unless it is plainly safe: what
// pgarchive prints for users to run, and the commands it hands to shells
// (PostgreSQL's restore_command, pg_ctl's -o).
func ShellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@+=,-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
