package money

import "testing"

func TestConversions(t *testing.T) {
	tests := []struct {
		cur   string
		major float64
		r     Rounding
		minor int64
	}{
		{"USD", 50, Nearest, 5000},
		{"usd", 19.99, Nearest, 1999},
		{"USD", 19.99, Down, 1999},
		{"USD", 12.345, Down, 1234},
		{"USD", 12.345, Up, 1235},
		{"EUR", 0.01, Nearest, 1},
		{"JPY", 5000, Nearest, 5000},
		{"JPY", 1234.5, Down, 1234},
		{"JPY", 1234.5, Up, 1235},
		{"KRW", 10000, Nearest, 10000},
		{"HUF", 3.7, Nearest, 4},
	}
	for _, tt := range tests {
		if got := ToMinor(tt.major, tt.cur, tt.r); got != tt.minor {
			t.Errorf("ToMinor(%v %s, %v) = %d, want %d", tt.major, tt.cur, tt.r, got, tt.minor)
		}
	}
	if got := ToMajor(5000, "USD"); got != 50 {
		t.Errorf("ToMajor(5000 USD) = %v", got)
	}
	if got := ToMajor(5000, "JPY"); got != 5000 {
		t.Errorf("ToMajor(5000 JPY) = %v", got)
	}
	if Offset("TWD") != 1 || Offset("GBP") != 100 {
		t.Error("offset table wrong")
	}
}
