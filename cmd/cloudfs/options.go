package main

import (
	"fmt"
	"math"
	"math/big"
	"os/user"
	"regexp"
	"strconv"
	"strings"
)

// mountOpts are the -o options cloudfs understands.
type mountOpts struct {
	allowOther bool
	readOnly   bool
	nonempty   bool
	syncClose  bool // close(2) durable against power loss (fs.Config.SyncOnClose)
	noPassthru bool // every read and write through the daemon (fs.Config.NoPassthrough)
	fsName     string
	uid, gid   *uint32  // the owner every file is presented with (fs.Config.UID, GID)
	kernel     []string // passed to the kernel as they are (nodev, nosuid, ...)
}

// parseOptions parses -o values (each a comma-separated list). Options
// that /etc/fstab and systemd put there for their own use are accepted and
// ignored, so fstab lines work unchanged.
func parseOptions(values []string) (mountOpts, error) {
	var o mountOpts
	for _, v := range values {
		for _, opt := range strings.Split(v, ",") {
			key, val, _ := strings.Cut(opt, "=")
			switch key {
			case "":
			case "allow_other":
				o.allowOther = true
			case "ro":
				o.readOnly = true
			case "rw":
				o.readOnly = false
			case "nonempty":
				o.nonempty = true
			case "sync_close":
				o.syncClose = true
			case "nopassthrough":
				o.noPassthru = true
			case "fsname":
				o.fsName = val
			case "uid", "gid":
				id, err := parseOwner(key, val)
				if err != nil {
					return o, err
				}
				if key == "uid" {
					o.uid = &id
				} else {
					o.gid = &id
				}
			case "default_permissions", // always on
				"atime", "noatime", "relatime", "strictatime", "lazytime",
				"auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "defaults":
			case "dev", "nodev", "suid", "nosuid", "exec", "noexec", "sync", "async", "dirsync":
				o.kernel = append(o.kernel, key)
			default:
				if strings.HasPrefix(key, "x-") || strings.HasPrefix(key, "comment") {
					continue
				}
				return o, userError("unknown mount option -o %s", opt)
			}
		}
	}
	return o, nil
}

// parseOwner parses the value of -o uid= or gid=: a number, or a user or
// group name of this machine.
func parseOwner(key, val string) (uint32, error) {
	if n, err := strconv.ParseUint(val, 10, 32); err == nil {
		return uint32(n), nil
	}
	if val != "" {
		var id string
		if key == "uid" {
			if u, err := user.Lookup(val); err == nil {
				id = u.Uid
			}
		} else if g, err := user.LookupGroup(val); err == nil {
			id = g.Gid
		}
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			return uint32(n), nil
		}
	}
	what := "user"
	if key == "gid" {
		what = "group"
	}
	return 0, userError("-o %s=%s: not a number or a %s of this machine", key, val, what)
}

// parseSize parses a byte count: a decimal number (digits with an
// optional fraction; no sign, exponent, NaN or Inf) with an optional K, M,
// G or T suffix (powers of 1024; a trailing "B" or "iB" is allowed). It is
// computed exactly and must fit in an int64; a fraction of a byte is
// dropped.
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, ok := new(big.Rat), sizeNumber.MatchString(t)
	if ok {
		_, ok = v.SetString(t)
	}
	if !ok {
		return 0, fmt.Errorf("bad size %q (want a number with an optional K, M, G or T suffix, e.g. 512M or 10G)", s)
	}
	// v is not negative, so the truncating division rounds down.
	n := new(big.Int).Mul(v.Num(), big.NewInt(mult))
	n.Quo(n, v.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large (the most is %d bytes, 8 EiB)", s, int64(math.MaxInt64))
	}
	return n.Int64(), nil
}

// sizeNumber is the number part parseSize accepts.
var sizeNumber = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
