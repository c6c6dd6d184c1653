package integration

// Workloads of BenchmarkReport that are Go code rather than a program run:
// test data, the editor-style save, random reads, stat of every path, and
// the in-process chunk+hash measurement.

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/restic/chunker"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// benchBytes returns n pseudo-random (incompressible) bytes, the same for
// the same seed.
func benchBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// writeFileSync writes data to path and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mibps is a throughput in MiB/s.
func mibps(bytes int64, d time.Duration) float64 {
	return float64(bytes) / (1 << 20) / d.Seconds()
}

// perSec is a rate in items per second.
func perSec(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// makeSmallFiles writes n files of 4 KiB of distinct random bytes into dir.
func makeSmallFiles(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := benchBytes(7, n*4096)
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), data[i*4096:(i+1)*4096], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeTree creates a tree of entries entries under dir: directories of at
// most 1,000 empty files each. It returns every path relative to dir.
func makeTree(dir string, entries int) ([]string, error) {
	dirs := (entries + 1000) / 1001 // each directory and its files
	files := entries - dirs
	paths := make([]string, 0, entries)
	for d := range dirs {
		name := fmt.Sprintf("d%03d", d)
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return nil, err
		}
		paths = append(paths, name)
		n := files / dirs
		if d < files%dirs {
			n++
		}
		for i := range n {
			p := filepath.Join(name, fmt.Sprintf("f%05d", i))
			f, err := os.Create(filepath.Join(dir, p))
			if err != nil {
				return nil, err
			}
			if err := f.Close(); err != nil {
				return nil, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// statAll lstats every path under dir and returns the time it took.
func statAll(dir string, paths []string) (time.Duration, error) {
	start := time.Now()
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// editorSave saves path the way an editor does: the whole content written
// to a new temporary file beside it, with patch at off, fsynced, then
// renamed over the original. It copies with plain reads and writes (no
// copy_file_range), as an editor writing its buffer does.
func editorSave(path string, off int64, patch []byte) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	for pos := int64(0); ; {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			block := buf[:n]
			lo, hi := max(off, pos), min(off+int64(len(patch)), pos+int64(n))
			if lo < hi {
				copy(block[lo-pos:hi-pos], patch[lo-off:hi-off])
			}
			if _, err := out.Write(block); err != nil {
				return err
			}
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		} else if err != nil {
			return err
		}
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// verifyFile compares the file at path with want, reading 1 MiB at a time.
func verifyFile(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := 0; ; {
		n, err := io.ReadFull(f, buf)
		if n > 0 && (off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n])) {
			return fmt.Errorf("%s: bytes at %d differ from what was written", path, off)
		}
		off += n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if off != len(want) {
				return fmt.Errorf("%s: %d bytes, want %d", path, off, len(want))
			}
			return nil
		} else if err != nil {
			return err
		}
	}
}

// randomOffsets returns n 4 KiB-aligned offsets of 4 KiB reads in a file of
// size bytes, one in each of n equal stripes (so no two reads are near each
// other), in a shuffled order. The same seed gives the same offsets.
func randomOffsets(size int64, n int, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	stripe := size / int64(n)
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = (int64(i)*stripe + rng.Int64N(max(1, stripe-4096))) &^ 4095
	}
	rng.Shuffle(n, func(i, j int) { offs[i], offs[j] = offs[j], offs[i] })
	return offs
}

// preadAll reads 4 KiB at each offset of path (opened with
// POSIX_FADV_RANDOM, as a random reader would) and returns each read's
// latency; every read is compared with want.
func preadAll(path string, offsets []int64, want []byte) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		return nil, fmt.Errorf("fadvise %s: %w", path, err)
	}
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, len(offsets))
	for _, off := range offsets {
		start := time.Now()
		n, err := f.ReadAt(buf, off)
		lat = append(lat, time.Since(start))
		if err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", path, off, err)
		}
		if !bytes.Equal(buf[:n], want[off:off+4096]) {
			return nil, fmt.Errorf("read %s at %d: bytes differ from what was written", path, off)
		}
	}
	return lat, nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// the latencies, in milliseconds.
func percentile(lat []time.Duration, p float64) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return float64(s[max(0, i)]) / float64(time.Millisecond)
}

// chunkHashPasses times cutting and hashing data with cloudfs's chunker
// (chunkstore.NewChunker with the default Params) and with the libraries
// alone (restic/chunker with the same bounds and zeebo/blake3), alternating
// passes, and returns the best pass of each.
func chunkHashPasses(data []byte, passes int) (cloudfs, libs time.Duration, err error) {
	p := chunkstore.DefaultParams(chunkstore.TestPol)
	ours := func() (time.Duration, error) {
		start := time.Now()
		c, err := chunkstore.NewChunker(bytes.NewReader(data), 0, p)
		if err != nil {
			return 0, err
		}
		for {
			if _, err := c.Next(); err == io.EOF {
				return time.Since(start), nil
			} else if err != nil {
				return 0, err
			}
		}
	}
	buf := make([]byte, 0, p.MaxSize)
	theirs := func() (time.Duration, error) {
		start := time.Now()
		c := chunker.NewWithBoundaries(bytes.NewReader(data), p.Pol, p.MinSize, p.MaxSize)
		c.SetAverageBits(p.AverageBits)
		for {
			ch, err := c.Next(buf)
			if err == io.EOF {
				return time.Since(start), nil
			} else if err != nil {
				return 0, err
			}
			blake3.Sum256(ch.Data)
			buf = ch.Data
		}
	}
	cloudfs, libs = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range passes {
		d, err := ours()
		if err != nil {
			return 0, 0, err
		}
		cloudfs = min(cloudfs, d)
		if d, err = theirs(); err != nil {
			return 0, 0, err
		}
		libs = min(libs, d)
	}
	return cloudfs, libs, nil
}
