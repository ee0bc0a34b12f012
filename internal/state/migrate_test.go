package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		want    []int
		wantErr string
	}{
		{"ordered by number, not name", fstest.MapFS{
			"m/0002_b.sql": file("B"), "m/0001_z.sql": file("A"), "m/README": file("x"),
		}, []int{1, 2}, ""},
		{"ten after nine", fstest.MapFS{
			"m/1_a.sql": file(""), "m/2_a.sql": file(""), "m/3_a.sql": file(""), "m/4_a.sql": file(""), "m/5_a.sql": file(""),
			"m/6_a.sql": file(""), "m/7_a.sql": file(""), "m/8_a.sql": file(""), "m/9_a.sql": file(""), "m/10_a.sql": file(""),
		}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, ""},
		{"gap", fstest.MapFS{"m/0001_a.sql": file(""), "m/0003_c.sql": file("")}, nil, "expected version 2, found 3"},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": file(""), "m/0001_b.sql": file("")}, nil, "expected version 2, found 1"},
		{"bad name", fstest.MapFS{"m/init.sql": file("")}, nil, "NNNN_name.sql"},
		{"zero", fstest.MapFS{"m/0000_a.sql": file("")}, nil, "NNNN_name.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.fs, "m")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("versions %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("versions %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestMigrationRollsBack checks that a failing migration leaves the database at the
// previous version, with nothing of the failed one applied.
func TestMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	ms := []migration{
		{1, "good", `CREATE TABLE a (x INTEGER)`},
		{2, "bad", `CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1); THIS IS NOT SQL`},
	}
	db := OpenRawSQLiteForTest(t, filepath.Join(t.TempDir(), "m.db"))
	err := migrateSQLite(ctx, db, ms)
	if err == nil || !strings.Contains(err.Error(), "migrate 0002_bad") {
		t.Fatalf("error = %v, want one naming 0002_bad", err)
	}
	if v, err := schemaVersion(ctx, db); err != nil || v != 1 {
		t.Fatalf("version %d, %v; want 1", v, err)
	}
	if _, err := db.Exec(`SELECT 1 FROM b`); err == nil {
		t.Error("table b of the failed migration exists")
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM a`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the failed migration: %d, %v", n, err)
	}
	// Fixed, it applies on the next open.
	ms[1].sql = `CREATE TABLE b (x INTEGER)`
	if err := migrateSQLite(ctx, db, ms); err != nil {
		t.Fatal(err)
	}
	if v, _ := schemaVersion(ctx, db); v != 2 {
		t.Errorf("version %d after the fix, want 2", v)
	}
}
