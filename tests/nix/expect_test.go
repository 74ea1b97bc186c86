package nix_test

// Assertions on evaluated cases, shared by the lifecycle tests.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func checkSettings(t *testing.T, bin, what string, s settingsFile, pkgPath string, want m) {
	t.Helper()
	var got m
	if err := json.Unmarshal([]byte(s.JSON), &got); err != nil {
		t.Fatalf("%s settings: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s settings %s\nwant %v", what, s.JSON, want)
	}
	if !strings.Contains(s.Build, pkgPath+`/bin/pgarchive check-config "$jsonPath"`) {
		t.Errorf("%s settings are not validated at build time: %q", what, s.Build)
	}
	f := filepath.Join(t.TempDir(), what+".json")
	os.WriteFile(f, []byte(s.JSON), 0o644)
	if out, err := exec.Command(bin, "check-config", f).CombinedOutput(); err != nil {
		t.Errorf("check-config of the %s settings: %v\n%s", what, err, out)
	}
}

func expectConfig(t *testing.T, name string, u unit, wants ...m) {
	t.Helper()
	for _, want := range wants {
		for k, v := range want {
			if !reflect.DeepEqual(u.ServiceConfig[k], v) {
				t.Errorf("%s %s = %#v, want %#v", name, k, u.ServiceConfig[k], v)
			}
		}
	}
}

func expectAbsent(t *testing.T, name string, u unit, directives ...string) {
	t.Helper()
	for _, k := range directives {
		if v, ok := u.ServiceConfig[k]; ok {
			t.Errorf("%s %s = %v, want none", name, k, v)
		}
	}
}

func expectHooks(t *testing.T, name string, u unit, failure, success bool) {
	t.Helper()
	var wantF, wantS []string
	if failure {
		wantF = []string{failureHook}
	}
	if success {
		wantS = []string{successHook}
	}
	if len(u.OnFailure) != len(wantF) || (failure && !reflect.DeepEqual(u.OnFailure, wantF)) {
		t.Errorf("%s OnFailure = %v, want %v", name, u.OnFailure, wantF)
	}
	if len(u.OnSuccess) != len(wantS) || (success && !reflect.DeepEqual(u.OnSuccess, wantS)) {
		t.Errorf("%s OnSuccess = %v, want %v", name, u.OnSuccess, wantS)
	}
}

func expectOnline(t *testing.T, name string, u unit) {
	t.Helper()
	if !contains(u.Wants, "network-online.target") || !contains(u.After, "network-online.target") {
		t.Errorf("%s wants %v after %v, want network-online.target in both", name, u.Wants, u.After)
	}
}

func expectTimer(t *testing.T, got evalCase, name, onCalendar string) {
	t.Helper()
	tm, ok := got.Timers[name]
	if !ok {
		t.Errorf("no timer %s among %v", name, got.Timers)
		return
	}
	if tm.TimerConfig["OnCalendar"] != onCalendar || tm.TimerConfig["Persistent"] != true ||
		tm.TimerConfig["RandomizedDelaySec"] == nil || !reflect.DeepEqual(tm.WantedBy, []string{"timers.target"}) {
		t.Errorf("timer %s %+v, want OnCalendar %s, Persistent, a random delay, wanted by timers.target", name, tm, onCalendar)
	}
}

func expectSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	g := append([]string(nil), got...)
	sort.Strings(g)
	sort.Strings(want)
	if !reflect.DeepEqual(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Errorf("%s %q, want %q", what, got, want)
	}
}

// verifyAll runs systemd-analyze verify on every unit and timer of a case,
// and checks that each OnFailure=/OnSuccess= names a template the case
// defines. Backup units get the ExecStart NixOS renders from their script.
func verifyAll(t *testing.T, bin string, got evalCase) {
	t.Helper()
	files := map[string]string{}
	for name, u := range got.Units {
		u = withProgram(u, got.PackagePath, bin)
		if _, ok := u.ServiceConfig["ExecStart"]; !ok {
			u.ServiceConfig["ExecStart"] = "/bin/true"
		}
		// systemd-analyze only loads what it is given.
		u.Requires = nil
		files[name+".service"] = serviceText(u)
		for _, hook := range append(append([]string(nil), u.OnFailure...), u.OnSuccess...) {
			template, _, _ := strings.Cut(hook, "%n.service")
			if _, ok := got.Units[template]; !ok {
				t.Errorf("%s: %s names %s.service, which is not defined", name, hook, template)
			}
		}
	}
	for name, tm := range got.Timers {
		files[name+".timer"] = timerText(tm)
	}
	analyzeVerify(t, files)
}

// execArgs splits an Exec line as systemd does for the arguments the module
// writes: words separated by spaces, double-quoted words unquoted with C
// escapes, and $$ and %% undoubled (the module escapes both). %i and
// ${CREDENTIALS_DIRECTORY} are left for the caller to substitute.
func execArgs(t *testing.T, line string) []string {
	t.Helper()
	var out []string
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimLeft(rest, " ") {
		var word string
		if rest[0] == '"' {
			end := 1
			for end < len(rest) && (rest[end] != '"' || rest[end-1] == '\\') {
				end++
			}
			if end >= len(rest) {
				t.Fatalf("unterminated quote in %s", line)
			}
			w, err := strconv.Unquote(rest[:end+1])
			if err != nil {
				t.Fatalf("%s: %v", rest[:end+1], err)
			}
			word, rest = w, rest[end+1:]
		} else {
			word, rest, _ = strings.Cut(rest, " ")
		}
		out = append(out, strings.NewReplacer("$$", "$", "%%", "%").Replace(word))
	}
	return out
}

// expectBuildRefusal writes settings to a file and checks that the real
// binary's check-config (which the build runs) refuses them naming want.
func expectBuildRefusal(t *testing.T, bin string, s settingsFile, want string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(f, []byte(s.JSON), 0o644)
	out, err := exec.Command(bin, "check-config", f).CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("check-config of %s: %v, want a refusal naming %q:\n%s", s.JSON, err, want, out)
	}
}

// expectTypeError checks that evaluation failed on the option's type, the
// way NixOS refuses a bad definition, naming the option and the value.
func expectTypeError(t *testing.T, err error, option, value string) {
	t.Helper()
	if err == nil {
		t.Fatalf("evaluation succeeded, want %s = %s refused by its type", option, value)
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if !strings.Contains(msg, "A definition for option `"+option+"' is not of type") || !strings.Contains(msg, value) {
		t.Fatalf("want %s = %s refused by its type, got:\n%v", option, value, err)
	}
}
