package manifest

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func sample() *Manifest {
	return &Manifest{
		Format:   FormatVersion,
		Database: "db1",
		Archive:  "db1_20261121T142407Z.sql.gz.age",
		Created:  time.Date(2026, 11, 21, 14, 24, 7, 0, time.UTC),
		Dump:     Dump{Size: 1000, SHA256: strings.Repeat("ab", 32), Compression: "gzip", Source: "file", Format: "plain"},
		Ciphertext: Blob{Size: 1234, SHA256: strings.Repeat("cd", 32), MD5: strings.Repeat("ef", 16), CRC32: "0a1b2c3d",
			HeaderSHA256: strings.Repeat("12", 32)},
		Key: Key{Recipients: []Recipient{
			{Kind: "x25519", Fingerprint: "sha256:0123456789abcdef0123456789abcdef"},
			{Kind: "ssh-ed25519", Fingerprint: "SHA256:abc"},
		}},
		Pgarchive: Provenance{Version: "test", Host: "pg1"},
	}
}

func TestRoundTrip(t *testing.T) {
	b, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := m.Marshal()
	if !bytes.Equal(b, again) {
		t.Errorf("round trip changed the manifest:\n%s\n%s", b, again)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]func(m *Manifest){
		"format":        func(m *Manifest) { m.Format = FormatVersion + 1 },
		"dump format":   func(m *Manifest) { m.Dump.Format = "directory" },
		"format in v2":  func(m *Manifest) { m.Format = 2 },
		"no header pin": func(m *Manifest) { m.Ciphertext.HeaderSHA256 = "" },
		"pin in v1":     func(m *Manifest) { m.Format = 1 },
		"db mismatch":   func(m *Manifest) { m.Database = "db2" },
		"time mismatch": func(m *Manifest) { m.Created = m.Created.Add(time.Second) },
		"compression":   func(m *Manifest) { m.Dump.Compression = "zstd" },
		"source":        func(m *Manifest) { m.Dump.Source = "pipe" },
		"empty dump":    func(m *Manifest) { m.Dump.Size = 0 },
		"cipher small":  func(m *Manifest) { m.Ciphertext.Size = m.Dump.Size },
		"bad sha":       func(m *Manifest) { m.Dump.SHA256 = strings.Repeat("AB", 32) },
		"short sha":     func(m *Manifest) { m.Ciphertext.SHA256 = "abcd" },
		"bad md5":       func(m *Manifest) { m.Ciphertext.MD5 = strings.Repeat("ef", 15) },
		"upper crc32":   func(m *Manifest) { m.Ciphertext.CRC32 = "0A1B2C3D" },
		"no recipients": func(m *Manifest) { m.Key.Recipients = nil },
		"scrypt fp":     func(m *Manifest) { m.Key.Recipients = []Recipient{{Kind: "scrypt", Fingerprint: "x"}} },
		"no version":    func(m *Manifest) { m.Pgarchive.Version = "" },
		"bad archive":   func(m *Manifest) { m.Archive = "db1.sql.gz" },
	}
	for name, mutate := range cases {
		m := sample()
		mutate(m)
		if _, err := m.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted an invalid manifest", name)
		}
	}
}

// Format 2 manifests (without the dump's format) still parse.
func TestParsesFormat2(t *testing.T) {
	m := sample()
	m.Format, m.Dump.Format = 2, ""
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := sample().Marshal()
	for name, in := range map[string]string{
		"not json":      "hello",
		"future format": `{"format": 9}`,
		"unknown field": strings.Replace(string(good), `"database":`, `"surprise": true, "database":`, 1),
		"trailing":      string(good) + "{}",
		"huge":          `{"format":1,"database":"` + strings.Repeat("a", MaxSize) + `"}`,
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}

// FuzzParse: whatever Parse accepts is valid and survives a round trip.
func FuzzParse(f *testing.F) {
	good, _ := sample().Marshal()
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted manifest does not marshal: %v", err)
		}
		m2, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parse failed: %v", err)
		}
		out2, _ := m2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("unstable round trip")
		}
	})
}
