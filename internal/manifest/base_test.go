package manifest

import (
	"bytes"
	"testing"
	"time"
)

func baseSample() *Manifest {
	m := sample()
	m.Database = "base-7312345678901234567-pg15"
	m.Archive = m.Database + "_20261121T142407Z-rabcdefg.tar.gz.age"
	m.Dump.Format = BaseBackupFormat
	m.Base = &Base{SystemID: "7312345678901234567", Major: 15, Timeline: 1, StartLSN: "0/2000028", StopLSN: "0/2000138",
		SegmentSize: 16 << 20, Started: time.Date(2026, 11, 21, 14, 24, 7, 0, time.UTC), Stopped: time.Date(2026, 11, 21, 14, 25, 0, 0, time.UTC)}
	return m
}

func TestBaseRoundTrip(t *testing.T) {
	b, err := baseSample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Base.Cluster()
	if err != nil || c.SystemID != 7312345678901234567 || c.Major != 15 {
		t.Errorf("Cluster = %v, %v", c, err)
	}
}

func TestBaseRejects(t *testing.T) {
	for name, change := range map[string]func(m *Manifest){
		"no base section":        func(m *Manifest) { m.Base = nil },
		"dump has a base":        func(m *Manifest) { m.Dump.Format = "plain" },
		"sql name":               func(m *Manifest) { m.Archive = m.Database + "_20261121T142407Z-rabcdefg.sql.gz.age" },
		"other cluster's folder": func(m *Manifest) { m.Base.SystemID = "7312345678901234568" },
		"other major":            func(m *Manifest) { m.Base.Major = 16 },
		"format 3":               func(m *Manifest) { m.Format = 3 },
		"stop before start":      func(m *Manifest) { m.Base.StopLSN = "0/1000000" },
		"bad lsn":                func(m *Manifest) { m.Base.StartLSN = "0x2000028" },
		"segment size":           func(m *Manifest) { m.Base.SegmentSize = 3 << 20 },
		"timeline 0":             func(m *Manifest) { m.Base.Timeline = 0 },
		"stopped first":          func(m *Manifest) { m.Base.Stopped = m.Base.Started.Add(-time.Second) },
		"leading zero sysid":     func(m *Manifest) { m.Base.SystemID = "07312345678901234567" },
	} {
		m := baseSample()
		change(m)
		if _, err := m.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted it", name)
		}
	}
	m := sample()
	m.Archive = "db1_20261121T142407Z.tar.gz.age"
	if _, err := m.Marshal(); err == nil {
		t.Error("a dump named .tar passed")
	}
}
