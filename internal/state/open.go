package state

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotImplemented is returned (wrapped) by Open for a driver that the configuration
// accepts but this build cannot serve yet.
var ErrNotImplemented = errors.New("not yet implemented")

// Open opens the store named by the configuration's state.driver and state.dsn:
// "sqlite" (the embedded default, also chosen by an empty driver; see OpenSQLite) or
// "postgres" (several replicas;
// not implemented yet: Open returns an error wrapping ErrNotImplemented, so a
// configuration naming it fails at start-up rather than silently using SQLite).
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	switch driver {
	case "sqlite", "":
		s, err := OpenSQLite(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "postgres":
		return nil, fmt.Errorf("open state: postgres: %w", ErrNotImplemented)
	}
	return nil, fmt.Errorf("open state: unknown driver %q (want sqlite or postgres)", driver)
}
