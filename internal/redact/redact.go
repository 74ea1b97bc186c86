// Package redact keeps secrets out of every line pgarchive writes. Secrets
// are registered as they are read (rclone.conf, RCLONE_CONFIG_* variables,
// a connection-string remote, key files, webhook URLs), and the logging
// handler, which rclone's own lines go through too, passes every message
// and field through Default.String. Lines such as rclone's debug
// `Setting secret_access_key="..." for "m2" from environment variable ...`
// are also caught by their shape, even for a value never registered.
package redact

import (
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "***"

// minLen keeps short values (a "1", "true") from being masked everywhere.
const minLen = 4

// Redactor masks registered secrets and key=value pairs whose key names a
// secret. It is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a secret containing another is masked whole
	r       *strings.Replacer
}

// Default is the process's redactor: one log stream, one set of secrets.
var Default = &Redactor{}

// Add registers secrets; empty and very short values are ignored.
func (x *Redactor) Add(secrets ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	added := false
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if len(s) < minLen || contains(x.secrets, s) {
			continue
		}
		x.secrets = append(x.secrets, s)
		added = true
	}
	if !added {
		return
	}
	sort.Slice(x.secrets, func(i, j int) bool { return len(x.secrets[i]) > len(x.secrets[j]) })
	pairs := make([]string, 0, 2*len(x.secrets))
	for _, s := range x.secrets {
		pairs = append(pairs, s, Mask)
	}
	x.r = strings.NewReplacer(pairs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// secretKey matches the names of settings that hold secrets, as rclone's
// backends and libpq spell them: secret_access_key, pass, password, token,
// client_secret, sas_url, key_file_pass, service_account_credentials...
const secretKey = `(?:[A-Za-z0-9_-]*(?:secret|pass|password|passphrase|token|credentials|sas_url|private_key|session)[A-Za-z0-9_-]*|key)`

// pairs finds key="value", key='value' and key=value (up to a delimiter of
// a connection string or a command line) whose key names a secret.
var pairs = regexp.MustCompile(`(?i)\b(` + secretKey + `)(\s*=\s*)("[^"]*"|'[^']*'|[^\s,:;&"']+)`)

// ageSecret is an age X25519 or post-quantum identity, wherever it shows.
var ageSecret = regexp.MustCompile(`AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]+`)

// String returns s with every secret masked.
func (x *Redactor) String(s string) string {
	x.mu.RLock()
	r := x.r
	x.mu.RUnlock()
	if r != nil {
		s = r.Replace(s)
	}
	s = ageSecret.ReplaceAllString(s, "AGE-SECRET-KEY-"+Mask)
	return pairs.ReplaceAllStringFunc(s, func(m string) string {
		sub := pairs.FindStringSubmatch(m)
		v := sub[3]
		if v == Mask || strings.Trim(v, `"'`) == Mask || strings.Trim(v, `"'`) == "" {
			return m
		}
		q := ""
		if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, `'`) {
			q = v[:1]
		}
		return sub[1] + sub[2] + q + Mask + q
	})
}

// IsSecretKey reports whether a setting's name says it holds a secret.
func IsSecretKey(name string) bool { return secretName.MatchString(name) }

var secretName = regexp.MustCompile(`(?i)^` + secretKey + `$`)
