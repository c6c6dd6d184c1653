package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// querier is what transaction bodies use: a read transaction (*sql.Tx) or
// a write transaction (*wtx).
type querier interface {
	Exec(query string, args ...any) (sql.Result, error)
	Query(query string, args ...any) (*sql.Rows, error)
	QueryRow(query string, args ...any) *sql.Row
}

// wtx is a write transaction on the pinned write connection. It runs
// statements prepared once per connection (database/sql would prepare
// them again in every sql.Tx, which costs more than the statement).
// Use it only under DB.wmu.
type wtx struct {
	db  *DB
	ctx context.Context
}

func (t *wtx) stmt(query string) (*sql.Stmt, error) {
	if st := t.db.stmts[query]; st != nil {
		return st, nil
	}
	st, err := t.db.w.PrepareContext(t.ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	t.db.stmts[query] = st
	return st, nil
}

func (t *wtx) Exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *wtx) Query(query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

// QueryRow returns a row whose Scan reports a prepare error as well.
func (t *wtx) QueryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		// Let the failure surface through Scan, as database/sql does.
		return t.db.w.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// writeLocked runs fn in one write transaction (BEGIN IMMEDIATE on the
// write connection). With durable set the commit runs with
// synchronous=FULL: the WAL is fsynced before writeLocked returns. A
// transaction that finds the disk full runs once more if Options.OnFull
// freed space (fn must be safe to run again: it is, like every
// transaction body, a function of the database alone).
func (db *DB) writeLocked(ctx context.Context, durable bool, fn func(tx querier) error) error {
	err := db.writeOnce(ctx, durable, fn)
	if errors.Is(err, ErrFull) && db.onFull != nil && db.onFull() {
		db.log.Warn("cache disk full: released the ballast for the index")
		err = db.writeOnce(ctx, durable, fn)
	}
	return err
}

func (db *DB) writeOnce(ctx context.Context, durable bool, fn func(tx querier) error) (err error) {
	if durable {
		if _, err := db.w.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
			return mapErr(err)
		}
		defer func() {
			if _, rerr := db.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=NORMAL"); rerr != nil && err == nil {
				err = mapErr(rerr)
			}
		}()
	}
	if _, err := db.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return mapErr(err)
	}
	if err := fn(&wtx{db: db, ctx: ctx}); err != nil {
		db.rollback()
		return mapErr(err)
	}
	if _, err := db.w.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		db.rollback()
		return mapErr(err)
	}
	db.unsynced = !durable
	return nil
}

// rollback ends a failed transaction; SQLite may have rolled it back
// already (a failed COMMIT on a full disk), which is not an error here.
func (db *DB) rollback() {
	db.w.ExecContext(context.Background(), "ROLLBACK")
}

// rtx is a read transaction whose statements are prepared once per pooled
// read connection (a pool-level statement used in a transaction reuses the
// connection's prepared copy). With a nil tx (DB.read1) the statements run
// on the pool directly, each on whichever connection is free.
type rtx struct {
	db  *DB
	tx  *sql.Tx
	ctx context.Context
}

func (t *rtx) stmt(query string) (*sql.Stmt, error) {
	t.db.rmu.Lock()
	st := t.db.rstmts[query]
	t.db.rmu.Unlock()
	if st == nil {
		var err error
		if st, err = t.db.r.PrepareContext(t.ctx, query); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		t.db.rmu.Lock()
		if old := t.db.rstmts[query]; old != nil {
			st.Close()
			st = old
		} else {
			t.db.rstmts[query] = st
		}
		t.db.rmu.Unlock()
	}
	if t.tx == nil {
		return st, nil
	}
	return t.tx.StmtContext(t.ctx, st), nil
}

func (t *rtx) Exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *rtx) Query(query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *rtx) QueryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		if t.tx == nil {
			return t.db.r.QueryRowContext(t.ctx, query, args...)
		}
		return t.tx.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// queryInos runs query, whose rows are one inode number each, and returns
// them in order.
func queryInos(tx querier, query string, args ...any) ([]uint64, error) {
	rows, err := tx.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var ino uint64
		if err := rows.Scan(&ino); err != nil {
			return nil, err
		}
		out = append(out, ino)
	}
	return out, rows.Err()
}
