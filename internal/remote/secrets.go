package remote

import (
	"os"
	"strings"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/config"
	"github.com/rclone/rclone/fs/config/obscure"
	"github.com/rclone/rclone/fs/fspath"

	"github.com/pgarchive/pgarchive/internal/redact"
)

// secretOption reports whether an rclone option holds a secret: the
// backend says so (Sensitive, IsPassword), or its name does.
func secretOption(o *fs.Option) bool {
	return o.Sensitive || o.IsPassword || redact.IsSecretKey(o.Name)
}

// secretNames are the names of every registered backend's secret options,
// in the upper-case form RCLONE_CONFIG_<REMOTE>_<OPTION> uses too.
func secretNames() map[string]bool {
	names := map[string]bool{}
	for _, ri := range fs.Registry {
		for i := range ri.Options {
			if o := &ri.Options[i]; secretOption(o) {
				names[strings.ToLower(o.Name)] = true
			}
		}
	}
	return names
}

// registerSecret adds a value and, for obscured passwords, the password it
// reveals: rclone may print either.
func registerSecret(v string) {
	redact.Default.Add(v)
	if plain, err := obscure.Reveal(v); err == nil {
		redact.Default.Add(plain)
	}
}

// registerConfigSecrets registers the secret values of every section of
// the loaded rclone.conf.
func registerConfigSecrets() {
	names := secretNames()
	data := config.LoadedData()
	for _, section := range data.GetSectionList() {
		for _, key := range data.GetKeyList(section) {
			if names[strings.ToLower(key)] || redact.IsSecretKey(key) {
				if v, ok := data.GetValue(section, key); ok {
					registerSecret(v)
				}
			}
		}
	}
}

// RegisterEnvSecrets registers secrets given to rclone by environment
// (RCLONE_CONFIG_<REMOTE>_<OPTION>, RCLONE_<OPTION>, RCLONE_CONFIG_PASS).
func RegisterEnvSecrets() {
	names := secretNames()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "RCLONE_") || v == "" {
			continue
		}
		lower := strings.ToLower(k)
		secret := k == "RCLONE_CONFIG_PASS"
		for n := range names {
			if strings.HasSuffix(lower, "_"+n) {
				secret = true
				break
			}
		}
		if secret {
			registerSecret(v)
		}
	}
}

// RegisterRemoteSecrets registers the secret parameters of a connection
// string remote, e.g. ":s3,secret_access_key=...:bucket" given with
// --remote or the settings file.
func RegisterRemoteSecrets(remote string) {
	names := secretNames()
	p, err := fspath.Parse(remote)
	if err != nil {
		return
	}
	for k, v := range p.Config {
		if names[strings.ToLower(k)] || redact.IsSecretKey(k) {
			registerSecret(v)
		}
	}
}
