package notify

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const secretPath = "/services/T000/B000/s3cr3tT0ken"

func fastSender() *Sender {
	return &Sender{Timeout: 2 * time.Second, Attempts: 3, Backoff: 10 * time.Millisecond}
}

// replies serves the given statuses in turn (the last one from then on)
// and records the bodies it got.
func replies(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32, *[]string) {
	var n atomic.Int32
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		i := int(n.Add(1)) - 1
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(b))
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
		io.WriteString(w, "echo "+r.URL.Path+" invalid_payload")
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &bodies
}

func mustWebhook(t *testing.T, raw string) *Webhook {
	t.Helper()
	w, err := ParseWebhook(raw)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSendRetriesServerErrors(t *testing.T) {
	srv, n, bodies := replies(t, 500, 503, 200)
	var logged []string
	s := fastSender()
	s.Log = func(attempt int, err error, wait time.Duration) { logged = append(logged, err.Error()) }
	res, err := s.Send(context.Background(), mustWebhook(t, srv.URL+secretPath), []byte(`{"text":"hi"}`), "application/json")
	if err != nil || res.Status != 200 || res.Attempts != 3 || n.Load() != 3 {
		t.Fatalf("res %+v err %v after %d requests", res, err, n.Load())
	}
	if (*bodies)[2] != "POST "+secretPath+` application/json {"text":"hi"}` {
		t.Errorf("request: %q", (*bodies)[2])
	}
	if len(logged) != 2 || !strings.Contains(logged[0], "HTTP 500") || strings.Contains(strings.Join(logged, " "), "s3cr3t") {
		t.Errorf("retry log %q", logged)
	}
}

func TestSendClientErrorIsFinal(t *testing.T) {
	srv, n, _ := replies(t, 400)
	w := mustWebhook(t, srv.URL+secretPath)
	_, err := fastSender().Send(context.Background(), w, []byte("{}"), "application/json")
	if err == nil || n.Load() != 1 {
		t.Fatalf("a 400 must fail without retries: %v after %d requests", err, n.Load())
	}
	msg := err.Error()
	if !strings.Contains(msg, w.Host()) || !strings.Contains(msg, "HTTP 400 Bad Request") || !strings.Contains(msg, "invalid_payload") ||
		strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "T000") {
		t.Errorf("error %q must name host and status, not the path", msg)
	}
}

func TestSendGivesUp(t *testing.T) {
	srv, n, _ := replies(t, 502)
	_, err := fastSender().Send(context.Background(), mustWebhook(t, srv.URL+secretPath), []byte("{}"), "application/json")
	if err == nil || n.Load() != 3 || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("want 3 attempts then an error, got %v after %d", err, n.Load())
	}
}

func TestSendUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = fastSender().Send(context.Background(), mustWebhook(t, "http://user:pw@"+addr+secretPath+"?token=q"), []byte("{}"), "application/json")
	if err == nil || !strings.Contains(err.Error(), "http://"+addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("want connection refused naming the host, got %v", err)
	}
	for _, secret := range []string{"s3cr3t", "token=q", "pw"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	s := &Sender{Timeout: 100 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond}
	_, err := s.Send(context.Background(), mustWebhook(t, srv.URL+secretPath), []byte("{}"), "application/json")
	if err == nil || !strings.Contains(err.Error(), "no response within 100ms") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("timeout: %v", err)
	}
}

func TestSendNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/x", http.StatusTemporaryRedirect))
	defer srv.Close()
	_, err := fastSender().Send(context.Background(), mustWebhook(t, srv.URL+secretPath), []byte("{}"), "application/json")
	if err == nil || !strings.Contains(err.Error(), "307") || elsewhere.Load() != 0 {
		t.Errorf("a redirect must not be followed: %v, %d requests elsewhere", err, elsewhere.Load())
	}
}

func TestParseWebhook(t *testing.T) {
	for _, bad := range []string{"", "hooks.example.com" + secretPath, "ftp://h" + secretPath, "https://" + secretPath[1:] + "%zz", "https:///x" + secretPath} {
		_, err := ParseWebhook(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error leaks the URL: %v", err)
		}
	}
	if w := mustWebhook(t, " https://hooks.example.com"+secretPath+"\n"); w.Host() != "https://hooks.example.com" {
		t.Errorf("Host() = %q", w.Host())
	}
}

func TestReadWebhookFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "webhook-url")
	os.WriteFile(p, []byte("https://hooks.example.com"+secretPath+"\nsecond line\n"), 0o600)
	if w, err := ReadWebhookFile(p); err != nil || w.url.Path != secretPath {
		t.Errorf("first line: %v %v", w, err)
	}
	os.WriteFile(p, []byte("https://hooks.example.com"+secretPath), 0o600) // no newline
	if _, err := ReadWebhookFile(p); err != nil {
		t.Error(err)
	}
	os.WriteFile(p, []byte("\nhttps://hooks.example.com"+secretPath), 0o600)
	if _, err := ReadWebhookFile(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "first line is empty") {
		t.Errorf("empty first line: %v", err)
	}
	if _, err := ReadWebhookFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("missing file: %v", err)
	}
}
