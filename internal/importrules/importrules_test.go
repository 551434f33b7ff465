package importrules

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/spark-edge/spark/"

// pkg is one package of the module as `go list` reports it: its path
// relative to the module and what its production and test files import.
type pkg struct {
	path        string
	imports     []string // production files
	testImports []string // _test.go files, both packages
}

// listPackages runs `go list` over the whole module (the deploy module is
// separate and imports nothing of this one).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-f",
		`{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}`,
		module+"...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list the module's packages: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			t.Fatalf("go list: unexpected line %q", sc.Text())
		}
		pkgs = append(pkgs, pkg{
			path:        strings.TrimPrefix(f[0], module),
			imports:     strings.Fields(f[1]),
			testImports: strings.Fields(f[2]),
		})
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	return pkgs
}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// rel returns imp relative to the module, and whether it is the module's.
func rel(imp string) (string, bool) {
	if !strings.HasPrefix(imp, module) {
		return "", false
	}
	return strings.TrimPrefix(imp, module), true
}

// isCaddy reports whether imp is Caddy itself or one of its modules.
func isCaddy(imp string) bool {
	return strings.HasPrefix(imp, "github.com/caddyserver/caddy/")
}

// testOnly are the packages production code never imports.
var testOnly = []string{
	"internal/testutil", "internal/testredis", "internal/testpg", "internal/testphotos",
	"caddymodule/internal/caddytest", "origin/store/postgis/pgtest", "origin/push/pushfake",
	"imageproxy/internal/vipsref", "eventbus/bustest", "origin/store/storetest",
}

// leaves import nothing of the module.
var leaves = []string{
	"internal/contract", "internal/authtoken", "internal/backoff", "internal/redisconn", "internal/gcpace",
	"internal/testutil", "caddymodule/internal/duration", "caddymodule/internal/fastreq",
	"caddymodule/internal/promreg", "caddymodule/internal/problem", "caddymodule/internal/tagpurge", "caddymodule/handover", "origin/store",
	"origin/push/pushfake", "imageproxy/internal/vipsref", "loadtest/sparkv1",
	"loadtest/refhub",
	// loadtest itself imports internal/contract only (the load generator's
	// rule): its virtual users read and send Spark-Read-After positions.
}

// libraries are testable alone: no Caddy, no origin, no plugin.
var libraries = []string{"tiered", "geocache", "imageproxy", "eventbus"}

// plugins are the Caddy modules; each stands alone but for deck's use of
// image's spark_image_plan app.
var plugins = []string{"auth", "batch", "cache", "deck", "gc", "handover", "image", "realtime"}

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.path == "internal/importrules" {
			continue
		}
		for _, imp := range p.imports {
			if msg := productionRule(p.path, imp); msg != "" {
				t.Errorf("%s imports %s: %s", p.path, strings.TrimPrefix(imp, module), msg)
			}
		}
		for _, imp := range p.testImports {
			if r, ok := rel(imp); ok && r == "cmd/spark" {
				t.Errorf("%s's tests import cmd/spark: nothing imports the binary", p.path)
			}
		}
	}
}

// productionRule returns why the production import from → imp breaks a rule
// of the map, or "" when it is allowed.
func productionRule(from, imp string) string {
	r, own := rel(imp)
	isTestOnly := func(path string) bool {
		for _, t := range testOnly {
			if under(path, t) {
				return true
			}
		}
		return false
	}
	if own && r == "cmd/spark" {
		return "nothing imports the binary"
	}
	if own && isTestOnly(r) && !isTestOnly(from) && from != "chaos" {
		return "a test-only package in production code"
	}
	for _, l := range leaves {
		if from == l && own {
			return "a leaf imports nothing of the module"
		}
	}
	switch {
	case under(from, "caddymodule"):
		if own && (under(r, "origin") || under(r, "loadtest") || under(r, "cmd")) {
			return "the edge knows the origin by HTTP and internal/contract only"
		}
		if own && under(r, "caddymodule") && !under(r, "caddymodule/internal") {
			for _, pl := range plugins {
				if under(from, "caddymodule/"+pl) && !under(r, "caddymodule/"+pl) &&
					!(pl == "deck" && r == "caddymodule/image") {
					return "plugins do not import each other (deck -> image for the plan app is the one exception)"
				}
			}
		}
		if under(from, "caddymodule/internal") && own && !under(r, "caddymodule/internal") &&
			r != "internal/authtoken" && r != "internal/testutil" {
			return "caddymodule/internal/* imports only each other, internal/authtoken and internal/testutil"
		}
	case under(from, "origin"):
		if isCaddy(imp) {
			return "the origin runs without Caddy"
		}
		if own && (under(r, "caddymodule") || under(r, "loadtest") || under(r, "chaos")) {
			return "the origin never imports the edge or the load generator"
		}
		if own && from != "origin" && r == "origin" {
			return "origin's subpackages do not import origin"
		}
	case under(from, "loadtest"):
		if own && !under(r, "loadtest") && r != "internal/contract" {
			return "the load generator speaks HTTP/WebSocket only (internal/contract is its one import outside loadtest)"
		}
	}
	for _, lib := range libraries {
		if under(from, lib) && !isTestOnly(from) {
			if isCaddy(imp) {
				return "libraries run without Caddy"
			}
			if own && (under(r, "origin") || under(r, "caddymodule") || under(r, "loadtest")) {
				return "libraries import no origin, plugin or load generator"
			}
		}
	}
	return ""
}

// TestProductionRuleCatchesBreaks keeps the rules honest: each broken import
// below must be reported.
func TestProductionRuleCatchesBreaks(t *testing.T) {
	for _, c := range []struct{ from, imp string }{
		{"caddymodule/cache", module + "origin"},
		{"caddymodule/cache", module + "caddymodule/image"},
		{"caddymodule/internal/redisconf", module + "tiered"},
		{"origin", "github.com/caddyserver/caddy/v2"},
		{"origin", module + "caddymodule/cache"},
		{"origin/store/postgis", module + "origin"},
		{"tiered", "github.com/caddyserver/caddy/v2/modules/caddyhttp"},
		{"geocache", module + "origin/store"},
		{"loadtest/chat", module + "origin"},
		{"internal/contract", module + "tiered"},
		{"origin", module + "internal/testutil"},
		{"tiered", module + "cmd/spark"},
	} {
		if productionRule(c.from, c.imp) == "" {
			t.Errorf("%s -> %s was allowed; the map forbids it", c.from, c.imp)
		}
	}
	for _, c := range []struct{ from, imp string }{
		{"caddymodule/deck", module + "caddymodule/image"},
		{"caddymodule/cache", module + "tiered"},
		{"origin/store/postgis", module + "geocache"},
		{"loadtest/appopen", module + "internal/contract"},
		{"eventbus/bustest", module + "internal/testutil"},
	} {
		if msg := productionRule(c.from, c.imp); msg != "" {
			t.Errorf("%s -> %s refused (%s); the map allows it", c.from, c.imp, msg)
		}
	}
}
