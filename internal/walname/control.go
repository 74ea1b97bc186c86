package walname

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseControl reads the cluster's identity from a data directory's
// global/pg_control (its first field is the 64-bit system identifier, in
// the server's byte order: this host's, since pgarchive runs beside it)
// and PG_VERSION (the major version, "15\n").
func ParseControl(pgControl, pgVersion []byte) (Cluster, error) {
	if len(pgControl) < 16 {
		return Cluster{}, errors.New("global/pg_control is too short")
	}
	v := strings.TrimSpace(string(pgVersion))
	major, err := strconv.Atoi(v)
	if err != nil || strconv.Itoa(major) != v {
		return Cluster{}, fmt.Errorf("PG_VERSION %q is not a major version", v)
	}
	c := Cluster{SystemID: binary.NativeEndian.Uint64(pgControl[:8]), Major: major}
	return c, c.Validate()
}

// ReadCluster reads the identity of the cluster in dataDir.
func ReadCluster(dataDir string) (Cluster, error) {
	ctl, err := readSmall(filepath.Join(dataDir, "global", "pg_control"), 8192)
	if err != nil {
		return Cluster{}, err
	}
	ver, err := readSmall(filepath.Join(dataDir, "PG_VERSION"), 16)
	if err != nil {
		return Cluster{}, err
	}
	c, err := ParseControl(ctl, ver)
	if err != nil {
		return Cluster{}, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	return c, nil
}

func readSmall(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's identity: %w (is the working directory, or --pgdata, PostgreSQL's data directory?)", err)
	}
	defer f.Close()
	b := make([]byte, max)
	n, err := f.Read(b)
	if n == 0 && err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b[:n], nil
}
