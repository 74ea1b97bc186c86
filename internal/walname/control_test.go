package walname

import (
	"testing"
)

func TestParseControlRejects(t *testing.T) {
	ctl := make([]byte, 300)
	ctl[0] = 1
	if _, err := ParseControl(ctl, []byte("15\n")); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string][2]string{
		"short":   {"12345678", "15"},
		"zero id": {string(make([]byte, 300)), "15"},
		"version": {string(ctl), "15beta"},
		"old":     {string(ctl), "9"},
	} {
		if _, err := ParseControl([]byte(tc[0]), []byte(tc[1])); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadCluster(t.TempDir()); err == nil {
		t.Error("an empty directory passed for a data directory")
	}
}
