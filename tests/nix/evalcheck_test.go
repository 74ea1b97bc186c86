package nix_test

import (
	"path/filepath"
	"testing"

	"github.com/pgarchive/pgarchive/tests/harness"
	"github.com/pgarchive/pgarchive/tests/nix/nixeval"
)

// TestModuleEvalCheckAsserts runs the Nix-level half of the flake's
// module-eval check (nix/module-eval-check.nix) here, where nixosSystem is
// unavailable: lib.evalModules with the stubs stands in for it, so every
// case the check builds is evaluated and each of its asserts (clean cases,
// expected assertion messages, units present or absent) must hold. The
// check's shell script greps unit files only NixOS renders; TestModule*,
// TestDrillModule, TestLifecycleModule and TestStatusModule cover that
// ground with systemd-analyze.
func TestModuleEvalCheckAsserts(t *testing.T) {
	lib := nixpkgsLib(t)
	var name string
	file := filepath.Join(harness.ModuleRoot(t), "tests", "nix", "stub", "eval-check.nix")
	if err := nixeval.EvalJSON(t, file, map[string]string{"libDir": lib}, &name); err != nil {
		t.Fatal(err)
	}
	if name != "pgarchive-module-eval" {
		t.Fatalf("module-eval check evaluates to %q, want the derivation pgarchive-module-eval", name)
	}
}
