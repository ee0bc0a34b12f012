// Package money converts between the minor units Meta uses for budgets and bids and
// the major units marketers write, with Meta's own offset table (graph-api.md 1.7):
// JPY, KRW, HUF, TWD and a few others have offset 1, which is not ISO 4217's table.
package money

import (
	"math"
	"strings"
)

// offsetOne lists the currencies whose budget value 1 is one whole unit.
var offsetOne = map[string]bool{
	"CLP": true, "COP": true, "CRC": true, "HUF": true, "ISK": true, "IDR": true,
	"JPY": true, "KRW": true, "PYG": true, "TWD": true, "VND": true,
}

// Offset is the number of minor units in one major unit of the currency: 1 or 100.
func Offset(currency string) int64 {
	if offsetOne[strings.ToUpper(currency)] {
		return 1
	}
	return 100
}

// ToMajor converts minor units to major units (5000 USD cents -> 50.00).
func ToMajor(minor int64, currency string) float64 {
	return float64(minor) / float64(Offset(currency))
}

// Rounding says which way a conversion to minor units rounds.
type Rounding int

// Rounding modes.
const (
	Nearest Rounding = iota
	Down
	Up
)

// ToMinor converts major units to minor units, rounding as asked. The value is first
// rounded to 1e-6 of a minor unit so that 19.99 * 100 (1998.9999999999998) counts as
// 1999, not 1998.
func ToMinor(major float64, currency string, r Rounding) int64 {
	v := major * float64(Offset(currency))
	v = math.Round(v*1e6) / 1e6
	switch r {
	case Down:
		return int64(math.Floor(v))
	case Up:
		return int64(math.Ceil(v))
	}
	return int64(math.Round(v))
}
