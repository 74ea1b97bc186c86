package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/status"
)

// Nothing found still gives a summary line and valid JSON (an empty array,
// never null), which scripts rely on.
func TestEmpty(t *testing.T) {
	cat := &catalog.Catalog{Upstreams: []string{"a", "b"}}
	var b bytes.Buffer
	ListTable(&b, cat)
	if !strings.HasSuffix(b.String(), "0 archives on 2 upstreams\n") || !strings.HasPrefix(b.String(), "DATABASE") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	if err := ListJSON(&b, cat); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("json %q, %v", b.String(), err)
	}
	r := status.Check(cat, nil, time.Now(), time.Hour)
	b.Reset()
	if err := StatusJSON(&b, r, WALValues(nil, nil)); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || got["ok"] != r.OK() || got["entries"] == nil || got["wal"] == nil {
		t.Errorf("status json %s: %v", b.String(), err)
	}
	b.Reset()
	StatusTable(&b, r)
	if !strings.HasPrefix(b.String(), r.Summary()) {
		t.Errorf("status table does not start with the summary:\n%s", b.String())
	}
}
