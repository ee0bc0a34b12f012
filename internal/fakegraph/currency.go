package fakegraph

// offsetOne lists the currencies whose API amounts are whole units (graph-api 1.7).
var offsetOne = map[string]bool{
	"CLP": true, "COP": true, "CRC": true, "HUF": true, "ISK": true, "IDR": true,
	"JPY": true, "KRW": true, "PYG": true, "TWD": true, "VND": true,
}

// usdRate is a rough number of currency units per US dollar, used to scale generated spend
// and minimum budgets. Unknown currencies count as 1.
var usdRate = map[string]float64{
	"USD": 1, "EUR": 0.92, "GBP": 0.79, "JPY": 150, "BRL": 5, "AUD": 1.5, "INR": 83, "CAD": 1.35,
	"KRW": 1350, "MXN": 17, "CHF": 0.9, "SEK": 10.5, "HUF": 360, "TWD": 32, "IDR": 15600,
}

// minorPerMajor is the API's budget offset: 100 minor units per unit, or 1.
func minorPerMajor(currency string) float64 {
	if offsetOne[currency] {
		return 1
	}
	return 100
}

func moneyDecimals(currency string) int {
	if offsetOne[currency] {
		return 0
	}
	return 2
}

func rate(currency string) float64 {
	if r, ok := usdRate[currency]; ok {
		return r
	}
	return 1
}

// minDailyBudget is the smallest daily budget in minor units: about one US dollar, except
// JPY which Meta sets at 100 yen. Options.MinDailyBudget overrides per currency.
func (s *Server) minDailyBudget(currency string) int64 {
	if v, ok := s.opts.MinDailyBudget[currency]; ok {
		return v
	}
	if currency == "JPY" {
		return 100
	}
	r := rate(currency)
	if r < 1 {
		r = 1 // EUR, GBP, CHF: Meta's floor is one unit, not a converted dollar
	}
	return int64(r * minorPerMajor(currency))
}
