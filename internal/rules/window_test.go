package rules

import (
	"testing"
	"time"
)

// TestDateRange checks the windows of SPEC 3.1: dates in the account's time zone,
// last_Nd the N full days ending yesterday, lifetime the API's maximum; also on days
// whose DST change happens at midnight, when 00:00 does not exist in the zone.
func TestDateRange(t *testing.T) {
	tests := []struct {
		tz, at       string // the run's scheduled time, in tz
		w            Window
		since, until string
	}{
		{"UTC", "2026-11-20 10:00", Today, "2026-11-20", "2026-11-20"},
		{"UTC", "2026-11-20 10:00", Yesterday, "2026-11-19", "2026-11-19"},
		{"UTC", "2026-11-20 10:00", Last3d, "2026-11-17", "2026-11-19"},
		{"UTC", "2026-11-20 10:00", Last7d, "2026-11-13", "2026-11-19"},
		{"UTC", "2026-03-01 00:10", Last30d, "2026-01-30", "2026-02-28"},
		// The account's zone decides the date, not UTC's.
		{"America/Los_Angeles", "2026-11-20 20:00", Today, "2026-11-20", "2026-11-20"},
		{"Asia/Tokyo", "2026-11-20 06:00", Yesterday, "2026-11-19", "2026-11-19"},
		// DST at 02:00 (Berlin) and at midnight (no 00:00 that day).
		{"Europe/Berlin", "2026-03-29 12:00", Today, "2026-03-29", "2026-03-29"},
		{"America/Santiago", "2026-09-06 12:00", Today, "2026-09-06", "2026-09-06"},
		{"America/Santiago", "2026-09-06 12:00", Last7d, "2026-08-30", "2026-09-05"},
		{"America/Havana", "2026-03-08 12:00", Yesterday, "2026-03-07", "2026-03-07"},
		{"America/Asuncion", "2024-10-06 09:00", Last3d, "2024-10-03", "2024-10-05"},
		// The day after a midnight change, counting back across it.
		{"America/Santiago", "2026-09-07 08:00", Last3d, "2026-09-04", "2026-09-06"},
	}
	for _, tt := range tests {
		t.Run(tt.tz+" "+tt.at+" "+tt.w.String(), func(t *testing.T) {
			loc, err := time.LoadLocation(tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.ParseInLocation("2006-01-02 15:04", tt.at, loc)
			if err != nil {
				t.Fatal(err)
			}
			since, until, ok := tt.w.DateRange(at.UTC(), loc)
			if !ok || since != tt.since || until != tt.until {
				t.Errorf("DateRange = %s..%s (%v), want %s..%s", since, until, ok, tt.since, tt.until)
			}
		})
	}
	if _, _, ok := Lifetime.DateRange(time.Now(), time.UTC); ok {
		t.Error("lifetime has a date range; it must be read with date_preset=maximum")
	}
}
