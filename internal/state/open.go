package state

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotImplemented is returned (wrapped) by Open for a driver that the configuration
// accepts but this build cannot serve yet. Every driver is implemented today; it is
// kept for callers that test for it.
var ErrNotImplemented = errors.New("not yet implemented")

// Open opens the store named by the configuration's state.driver and state.dsn:
// "sqlite" (the embedded default, also chosen by an empty driver; see OpenSQLite) or
// "postgres" (several replicas sharing one database; see OpenPostgres).
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	switch driver {
	case "sqlite", "":
		s, err := OpenSQLite(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "postgres":
		s, err := OpenPostgres(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("open state: unknown driver %q (want sqlite or postgres)", driver)
}
