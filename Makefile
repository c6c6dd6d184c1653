# cloudfs — see README.md. Every target works on a fresh Debian machine:
# .ci/install-deps installs what is missing (fuse3, MinIO, test programs).

SHELL    := /bin/bash
GO       ?= go
MNT      ?= $(CURDIR)/mnt
BIN      := bin/cloudfs
RACE_BIN := bin/cloudfs-race
# Unit tier: every package but the end-to-end tests (no mount, no network).
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /integration)
TIMEOUT_UNIT ?= 10m
TIMEOUT_INTEGRATION ?= 25m
# GOBENCHTIME (per hot-function benchmark) and the CLOUDFS_BENCH_* variables
# (sizes of the end-to-end report) scale `make bench`.
GOBENCHTIME ?= 1s

# make install: the binary into $(PREFIX)/bin, and the mount(8) helpers
# $(SBINDIR)/mount.fuse.cloudfs (fstab type fuse.cloudfs) and
# $(SBINDIR)/mount.cloudfs (type cloudfs) as symlinks to it.
PREFIX  ?= /usr/local
SBINDIR ?= /sbin

.PHONY: all build build-race test test-unit test-fuzz test-integration bench lint mount unmount clean deps install uninstall

all: build

build:
	$(GO) build -o $(BIN) ./cmd/cloudfs

build-race:
	$(GO) build -race -o $(RACE_BIN) ./cmd/cloudfs

deps:
	.ci/install-deps >/dev/null

# Everything CI runs: lint, unit and integration tiers with -race, then a
# check that no mount or daemon was left behind.
test: lint deps build-race
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-fuzz
	$(MAKE) --no-print-directory test-integration
	.ci/check-leftovers

test-unit:
	$(GO) test -race -count=1 -timeout $(TIMEOUT_UNIT) $(UNIT_PKGS)

# The Go fuzz targets of every decoder fed from the bucket, FUZZTIME each
# (default 10s; 7 targets, about 80s in all with building). go test takes
# one -fuzz pattern per package and run, hence the loop over
# package:target pairs.
FUZZTIME ?= 10s
FUZZ_TARGETS = \
	./chunkstore:FuzzDecode ./chunkstore:FuzzDecodeDelta ./chunkstore:FuzzVerifyGroups \
	./index/tree:FuzzDecode \
	./index/bucket:FuzzReadHead ./index/bucket:FuzzReadVolume ./index/bucket:FuzzParseDevice ./index/bucket:FuzzParseMark

test-fuzz:
	@set -e; for pt in $(FUZZ_TARGETS); do \
		echo "fuzz $${pt%%:*} $${pt##*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${pt##*:}\$$" -fuzztime $(FUZZTIME) "$${pt%%:*}"; \
	done

test-integration: deps build-race
	CLOUDFS_BINARY=$(CURDIR)/$(RACE_BIN) CLOUDFS_MINIO=$$(.ci/install-deps | tail -n1) \
		$(GO) test -race -count=1 -timeout $(TIMEOUT_INTEGRATION) -v ./integration/...
	.ci/check-leftovers

# The hot-function Go benchmarks (chunking, hashing, codec, cache, extent
# and tree encode/decode; one core, GOBENCHTIME each, default 1s), then the
# end-to-end report (integration BenchmarkReport, once): cloudfs beside
# local disk, go-fuse loopback and raw S3, as one table printed and kept
# under bench/results/ with the Go benchmark output appended.
# CLOUDFS_BENCH_ONLY=cold-read,programs runs only those phases of the report
# (names: benchPhases in integration/bench_test.go); the others show as skipped.
bench: deps build
	@mkdir -p bench/results
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchtime $(GOBENCHTIME) -cpu 1 -timeout 10m \
		./chunkstore/... ./index/... | tee bench/results/go-bench.tmp
	CLOUDFS_BINARY=$(CURDIR)/$(BIN) CLOUDFS_MINIO=$$(.ci/install-deps | tail -n1) \
		CLOUDFS_BENCH_GO_OUTPUT=$(CURDIR)/bench/results/go-bench.tmp \
		$(GO) test -run '^$$' -bench '^BenchmarkReport$$' -benchtime 1x -timeout 20m ./integration/
	CLOUDFS_MINIO=$$(.ci/install-deps | tail -n1) \
		$(GO) test -run '^$$' -bench '^BenchmarkS3PutGet1MiB$$' -benchtime 256x -timeout 5m ./integration/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Mounts the embedded default store (a local directory, no cloud account)
# at $(MNT), in the background.
mount: build
	.ci/install-deps --fuse-only
	mkdir -p $(MNT)
	$(BIN) mount --background $(MNT)
	@echo "cloudfs is mounted at $(MNT); unmount with: make unmount (or fusermount3 -u $(MNT))"

unmount:
	fusermount3 -u $(MNT)

clean:
	rm -rf bin bench/results

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/cloudfs
	install -d $(DESTDIR)$(SBINDIR)
	ln -sfn $(PREFIX)/bin/cloudfs $(DESTDIR)$(SBINDIR)/mount.fuse.cloudfs
	ln -sfn $(PREFIX)/bin/cloudfs $(DESTDIR)$(SBINDIR)/mount.cloudfs

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/cloudfs $(DESTDIR)$(SBINDIR)/mount.fuse.cloudfs $(DESTDIR)$(SBINDIR)/mount.cloudfs
