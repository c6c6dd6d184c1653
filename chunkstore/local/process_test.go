package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

const helperEnv = "CLOUDFS_LOCAL_COUNTER_DIR"

// increment adds one to the counter in "head" with optimistic locking,
// retrying lost races.
func increment(ctx context.Context, s *Store) error {
	for {
		data, etag, err := s.Get(ctx, "head")
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(data))
		if err != nil {
			return err
		}
		_, err = s.Put(ctx, "head", []byte(strconv.Itoa(n+1)), chunkstore.Cond{IfMatch: etag})
		if !errors.Is(err, chunkstore.ErrPrecondition) {
			return err
		}
	}
}

// TestMain runs this test binary as the child process of
// TestConditionalAcrossProcesses when helperEnv is set, and as the test
// suite otherwise.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(counterChild(dir))
	}
	os.Exit(m.Run())
}

// counterChild increments the counter in the store at dir 25 times.
func counterChild(dir string) int {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range 25 {
		if err := increment(context.Background(), s); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// TestConditionalAcrossProcesses: processes incrementing one counter with
// IfMatch lose no update, so the check and the rename are atomic across
// processes.
func TestConditionalAcrossProcesses(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), "head", []byte("0"), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	const procs = 3
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"="+s.root)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("child %d: %v\n%s", i, err, out)
			}
		}()
	}
	// This process competes too.
	for range 25 {
		if err := increment(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, _, err := s.Get(context.Background(), "head")
	if err != nil || string(data) != strconv.Itoa(25*(procs+1)) {
		t.Errorf("counter = %q, %v; want %d", data, err, 25*(procs+1))
	}
}
