package integration

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

const module = "github.com/cloudfs/cloudfs"

// layer returns the top-level layer of a cloudfs package ("fs", "index",
// "chunkstore/s3" counts as "chunkstore"), and "" for other modules.
func layer(pkg string) string {
	if pkg != module && !strings.HasPrefix(pkg, module+"/") {
		return ""
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	top, _, _ := strings.Cut(rest, "/")
	return top
}

// allowed lists, for each layer, the cloudfs layers it may import
// (DESIGN.md: cmd -> fs | uploader -> index -> chunkstore).
var allowed = map[string][]string{
	"cmd":        {"fs", "uploader", "index", "chunkstore"},
	"fs":         {"index", "chunkstore"},
	"uploader":   {"index", "chunkstore"},
	"index":      {"chunkstore"},
	"chunkstore": {},
}

// exclusive lists third-party import prefixes that only one package (or
// package tree, with tree set) may use.
var exclusive = []struct {
	prefix, owner string
	tree          bool
}{
	{"github.com/hanwen/go-fuse/", module + "/fs", true},
	{"github.com/aws/", module + "/chunkstore/s3", true},
	{"github.com/mattn/go-sqlite3", module + "/index", false},
}

// forbidden lists, within the layers, packages that must not import
// certain others (exactly those): the bucket's objects and the tree codec
// know nothing of the SQLite index, the read path (fs) goes through the
// index only, and the pull is below the write-back loop, which reaches it
// through an interface.
var forbidden = map[string][]string{
	module + "/index/bucket":  {module + "/index", module + "/uploader"},
	module + "/index/tree":    {module + "/index", module + "/index/bucket"},
	module + "/index/gc":      {module + "/index", module + "/uploader"},
	module + "/fs":            {module + "/index/bucket", module + "/uploader"},
	module + "/uploader/pull": {module + "/uploader"},
}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// TestLayering fails when a package imports against the layering in
// DESIGN.md. Test files count too, except in integration/, whose job is to
// drive every layer from outside.
func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		l := layer(p.ImportPath)
		if l == "integration" {
			continue
		}
		seen++
		ok, known := allowed[l]
		if !known {
			t.Errorf("%s: top-level folder %q is not a layer of DESIGN.md", p.ImportPath, l)
			continue
		}
		imports := append(append(append([]string{}, p.Imports...), p.TestImports...), p.XTestImports...)
		for _, imp := range imports {
			if il := layer(imp); il != "" && il != l && !contains(ok, il) {
				t.Errorf("%s imports %s: layer %s may import only %v", p.ImportPath, imp, l, ok)
			}
			for _, ex := range exclusive {
				if strings.HasPrefix(imp, ex.prefix) && p.ImportPath != ex.owner &&
					!(ex.tree && strings.HasPrefix(p.ImportPath, ex.owner+"/")) {
					t.Errorf("%s imports %s: only %s may", p.ImportPath, imp, ex.owner)
				}
			}
			for _, no := range forbidden[p.ImportPath] {
				if imp == no {
					t.Errorf("%s imports %s, which it must not (see forbidden)", p.ImportPath, imp)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("go list found no cloudfs packages")
	}
}

func TestLayerOf(t *testing.T) {
	for pkg, want := range map[string]string{
		module + "/chunkstore/s3":  "chunkstore",
		module + "/fs":             "fs",
		module + "/cmd/cloudfs":    "cmd",
		"github.com/aws/smithy-go": "",
		module + "x/y":             "",
	} {
		if got := layer(pkg); got != want {
			t.Errorf("layer(%q) = %q, want %q", pkg, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
