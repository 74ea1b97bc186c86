package naming

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
)

// Compression describes how a dump is compressed; the suffix follows
// nixpkgs' postgresqlBackup (".sql.gz", ".sql.zstd", ".sql").
type Compression struct {
	Name   string // "gzip", "zstd", "none", ...
	Suffix string // "", ".gz", ".zstd", ...
	magic  []byte
}

// Compressions lists what pgarchive recognises, postgresqlBackup's first.
var Compressions = []Compression{
	{Name: "gzip", Suffix: ".gz", magic: []byte{0x1f, 0x8b}},
	{Name: "zstd", Suffix: ".zstd", magic: []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Name: "none", Suffix: ""},
	{Name: "xz", Suffix: ".xz", magic: []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Name: "bzip2", Suffix: ".bz2", magic: []byte("BZh")},
	{Name: "lz4", Suffix: ".lz4", magic: []byte{0x04, 0x22, 0x4d, 0x18}},
}

// CompressionByName maps postgresqlBackup's `compression` option value.
func CompressionByName(name string) (Compression, error) {
	for _, c := range Compressions {
		if c.Name == name {
			return c, nil
		}
	}
	return Compression{}, fmt.Errorf("unknown dump compression %q (expected gzip, zstd or none)", name)
}

// CompressionBySuffix finds the compression a suffix stands for.
func CompressionBySuffix(suffix string) (Compression, bool) {
	if suffix == ".zst" {
		suffix = ".zstd"
	}
	for _, c := range Compressions {
		if c.Suffix == suffix {
			return c, true
		}
	}
	return Compression{}, false
}

// CompressionFromPath reads the compression from a dump file name such as
// db1.sql.gz. ok is false when the name does not end in .sql[.<known>].
func CompressionFromPath(p string) (c Compression, ok bool) {
	base := filepath.Base(p)
	i := strings.LastIndex(base, ".sql")
	if i < 0 {
		return Compression{}, false
	}
	return CompressionBySuffix(base[i+len(".sql"):])
}

// SniffCompression tells the compression from a dump's first bytes; input
// that matches no known magic is taken as plain SQL.
func SniffCompression(head []byte) Compression {
	for _, c := range Compressions {
		if c.magic != nil && bytes.HasPrefix(head, c.magic) {
			return c
		}
	}
	none, _ := CompressionByName("none")
	return none
}

// DumpPath is where postgresqlBackup leaves the dump of db.
func DumpPath(dir, db string, c Compression) string {
	return filepath.Join(dir, db+".sql"+c.Suffix)
}
