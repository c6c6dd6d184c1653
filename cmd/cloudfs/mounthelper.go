package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The mount(8) helper. /etc/fstab lines and systemd .mount units of type
// fuse.cloudfs reach cloudfs in one of two ways:
//
//   - /sbin/mount.fuse.cloudfs (a symlink to cloudfs, made by make
//     install): mount(8) runs it as `mount.fuse.cloudfs REMOTE MOUNTPOINT
//     [-sfnv] [-o OPTIONS]`; /sbin/mount.cloudfs does the same for type
//     cloudfs.
//   - without it, mount(8) runs mount.fuse3, which runs `cloudfs REMOTE
//     MOUNTPOINT -o OPTIONS` through /bin/sh with no PATH set (so the
//     shell's default path must find cloudfs: /usr/local/bin or /usr/bin).
//     The old `cloudfs#REMOTE` source of type fuse comes the same way.
//
// Either way cloudfs sees no command word: a first argument that is a
// path or an s3:// URL, or the program name mount.cloudfs, selects the
// helper, which translates the options to mount flags and mounts in the
// background (mount(8) waits for the helper to exit).

// helperNames are the program names that make cloudfs the mount helper.
var helperNames = map[string]bool{"mount.cloudfs": true, "mount.fuse.cloudfs": true}

// isHelperCall reports whether args (without the program name) are a
// mount(8)-style call: REMOTE MOUNTPOINT [options].
func isHelperCall(args []string) bool {
	if len(args) < 2 {
		return false
	}
	a := args[0]
	return strings.Contains(a, "://") || strings.HasPrefix(a, "/") || strings.HasPrefix(a, "cloudfs#") ||
		strings.HasPrefix(a, "./") || strings.HasPrefix(a, "../")
}

// helperOptions maps -o keys of the helper to cloudfs mount flags.
var helperOptions = map[string]string{
	"cache_dir":       "--cache-dir",
	"cache_size":      "--cache-size",
	"settle_delay":    "--settle-delay",
	"poll_interval":   "--poll-interval",
	"writeback":       "--writeback",
	"endpoint":        "--endpoint",
	"region":          "--region",
	"profile":         "--profile",
	"connect_timeout": "--connect-timeout",
	"log_level":       "--log-level",
}

// defaultPath is PATH for a helper started with none (mount(8) removes it
// from the environment): the daemon may need fusermount3.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cmdMountHelper runs `mount.cloudfs REMOTE MOUNTPOINT [-sfnv] [-t TYPE]
// [-o OPTIONS]`.
func cmdMountHelper(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		os.Stderr.WriteString(helperUsage())
		if len(args) == 0 {
			return userError("mount helper wants REMOTE MOUNTPOINT")
		}
		return nil
	}
	mountArgs, fake, err := helperArgs(args)
	if err != nil {
		return err
	}
	if fake {
		return nil // mount -f: do everything but the mount
	}
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", defaultPath)
	}
	return cmdMount(mountArgs)
}

// helperArgs translates a mount(8)-style call into `cloudfs mount`
// arguments (always --background); fake reports -f.
func helperArgs(args []string) (mountArgs []string, fake bool, err error) {
	var pos, opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t":
			if i+1 == len(args) {
				return nil, false, userError("mount helper: %s needs a value", a)
			}
			if a == "-o" {
				opts = append(opts, args[i+1])
			}
			i++
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case strings.HasPrefix(a, "-t"):
		case a == "-f":
			fake = true
		case a == "-s", a == "-n", a == "-v", a == "-i":
			// sloppy, no mtab, verbose, no helper: nothing to do
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return nil, false, userError("mount helper: unknown flag %s (want REMOTE MOUNTPOINT [-o OPTIONS])", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, false, userError("mount helper wants REMOTE MOUNTPOINT [-o OPTIONS], got %d arguments", len(pos))
	}
	remote := strings.TrimPrefix(pos[0], "cloudfs#")
	switch remote {
	case "cloudfs", "default", "none":
		remote = "" // the embedded local store
	}
	mountArgs = []string{"--background"}
	var kernel []string
	for _, o := range opts {
		for _, opt := range strings.Split(o, ",") {
			key, val, hasVal := strings.Cut(opt, "=")
			if flag, ok := helperOptions[key]; ok {
				if !hasVal || val == "" {
					return nil, false, userError("mount option %s needs a value (%s=...)", key, key)
				}
				mountArgs = append(mountArgs, flag+"="+val)
				continue
			}
			switch key {
			case "", "subtype":
			default:
				kernel = append(kernel, opt)
			}
		}
	}
	if len(kernel) > 0 {
		mountArgs = append(mountArgs, "-o", strings.Join(kernel, ","))
	}
	if remote != "" {
		mountArgs = append(mountArgs, remote)
	}
	mnt, err := filepath.Abs(pos[1])
	if err != nil {
		return nil, false, userError("mountpoint %s: %v", pos[1], err)
	}
	return append(mountArgs, mnt), fake, nil
}

// helperUsage describes the helper's calling convention.
func helperUsage() string {
	keys := make([]string, 0, len(helperOptions))
	for k := range helperOptions {
		keys = append(keys, k+"=")
	}
	slices.Sort(keys)
	return "usage: mount.cloudfs REMOTE MOUNTPOINT [-o OPTIONS]\n" +
		"OPTIONS: those of cloudfs mount -o, and " + strings.Join(keys, ", ") + "\n"
}
