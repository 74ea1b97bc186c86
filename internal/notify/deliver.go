package notify

import (
	"github.com/pgarchive/pgarchive/internal/redact"

	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// A webhook URL is a secret: Slack's and most others' carry the token in
// the path. Errors and logs here name only the scheme and host, and errors
// from net/http, which quote the whole URL, are unwrapped first.

// Webhook is a parsed webhook URL.
type Webhook struct {
	url *url.URL
}

// ParseWebhook checks a webhook URL without ever echoing it.
func ParseWebhook(raw string) (*Webhook, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errors.New("the webhook URL does not parse as a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("the webhook URL must start with https:// (or http://)")
	}
	if u.Host == "" {
		return nil, errors.New("the webhook URL has no host")
	}
	// Everything after the host is the token (Slack, ntfy, Gotify...).
	redact.Default.Add(strings.TrimSpace(raw), u.RequestURI(), u.User.String())
	return &Webhook{url: u}, nil
}

// ReadWebhookFile reads a webhook URL from the first line of path (a
// systemd credential, typically).
func ReadWebhookFile(path string) (*Webhook, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("webhook URL file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, 64<<10), 64<<10).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("webhook URL file %s: %w", path, err)
	}
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("webhook URL file %s: the first line is empty", path)
	}
	w, err := ParseWebhook(line)
	if err != nil {
		return nil, fmt.Errorf("webhook URL file %s: %w", path, err)
	}
	return w, nil
}

// Host is what may be shown of the webhook: scheme and host.
func (w *Webhook) Host() string { return w.url.Scheme + "://" + w.url.Host }

// redact removes the secret parts of the URL from text a receiver sent
// back, in case it echoes the request.
func (w *Webhook) redact(s string) string {
	for _, secret := range []string{w.url.String(), w.url.EscapedPath(), w.url.Path, w.url.RawQuery, w.url.User.String()} {
		if len(secret) > 1 {
			s = strings.ReplaceAll(s, secret, "…")
		}
	}
	return s
}

// Sender posts bodies to a webhook, retrying what may pass on a second try.
type Sender struct {
	Client   *http.Client // nil: a plain client without redirects
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration // before the second attempt; doubles after each
	// Log is told about each failed attempt that will be retried.
	Log func(attempt int, err error, wait time.Duration)
}

// DefaultSender: 10 s per attempt, 4 attempts, 1 s then 2 s then 4 s apart.
func DefaultSender() *Sender {
	return &Sender{Timeout: 10 * time.Second, Attempts: 4, Backoff: time.Second}
}

// Result says how a delivery went.
type Result struct {
	Status   int // last HTTP status; 0 when no response came
	Attempts int
}

// permanentError is not worth retrying (4xx but 408 and 429).
type permanentError struct{ error }

// Send posts body with contentType. Network errors, timeouts, 408, 429
// and 5xx responses are retried; any other non-2xx fails at once.
func (s *Sender) Send(ctx context.Context, w *Webhook, body []byte, contentType string) (Result, error) {
	client := s.Client
	if client == nil {
		// A redirect would carry the body (and maybe the secret path) to
		// another place; webhooks do not redirect.
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	attempts := max(s.Attempts, 1)
	wait := s.Backoff
	var res Result
	var err error
	for res.Attempts < attempts {
		res.Attempts++
		res.Status, err = s.post(ctx, client, w, body, contentType)
		if err == nil {
			return res, nil
		}
		var perm permanentError
		if errors.As(err, &perm) || res.Attempts == attempts || ctx.Err() != nil {
			break
		}
		if s.Log != nil {
			s.Log(res.Attempts, err, wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait *= 2
	}
	return res, fmt.Errorf("webhook %s: %w (after %d attempt%s)", w.Host(), err, res.Attempts, map[bool]string{true: "s"}[res.Attempts != 1])
}

func (s *Sender) post(ctx context.Context, client *http.Client, w *Webhook, body []byte, contentType string) (int, error) {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{errors.New("cannot build the request")}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "pgarchive-notify")
	resp, err := client.Do(req)
	if err != nil {
		return 0, scrub(err, s.Timeout)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp.StatusCode, nil
	}
	err = fmt.Errorf("HTTP %s%s", resp.Status, w.redact(replyText(snippet)))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests {
		return resp.StatusCode, err
	}
	return resp.StatusCode, permanentError{err}
}

// scrub drops the URL net/http puts in its errors and keeps the cause.
func scrub(err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("no response within %s", timeout)
		}
		err = ue.Err
	}
	return err
}

// replyText is the start of the receiver's answer (Slack says why it
// refused, e.g. "invalid_payload"), on one line.
func replyText(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if s == "" {
		return ""
	}
	return ": " + clip(flatten(s), 200)
}
