package nix_test

// Assertions on evaluated cases, shared by the lifecycle tests.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
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

// runWrapper runs root's wrapper with the pgarchive it execs replaced by a
// script that prints what it got.
func runWrapper(t *testing.T, text, pkgPath string, env []string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	fake := filepath.Join(dir, "pgarchive")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"PG_BIN=${PGARCHIVE_PG_BIN-} ARGS=$*\"\n"), 0o755)
	text = regexp.MustCompile(`(?m)^source .*$`).ReplaceAllString(text, "source /dev/null")
	script := filepath.Join(dir, "wrapper")
	os.WriteFile(script, []byte(strings.ReplaceAll(text, pkgPath+"/bin/pgarchive", fake)), 0o755)
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrapper %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// field returns NAME=value from the fake's output; ARGS is the rest of the line.
func field(out, name string) string {
	if name == "ARGS" {
		_, rest, _ := strings.Cut(out, "ARGS=")
		return rest
	}
	m := regexp.MustCompile(name + `=(\S*)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}
