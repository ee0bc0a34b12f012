package rules

import (
	"math/rand/v2"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// benchConditions are 20 typical rules: three clauses each, over three windows.
// benchFile holds 20 typical rules: three clauses each, over three windows. The
// scale benchmark of package app uses the same file.
const benchFile = "testdata/bench.yaml"

const benchObjects = 10000

func benchSet(b *testing.B) (*Set, []Row) {
	set, l := LoadFiles([]string{benchFile}, Options{})
	if set == nil {
		b.Fatal(l.Err())
	}
	rows := set.Layout.NewRows(benchObjects)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rows {
		r := &rows[i]
		set.Layout.SetString(r, "effective_status", []string{"ACTIVE", "PAUSED"}[rng.IntN(2)])
		set.Layout.SetString(r, "campaign.objective", []string{"OUTCOME_SALES", "OUTCOME_LEADS"}[rng.IntN(2)])
		for _, w := range []Window{Today, Yesterday, Last7d} {
			v := benchMetrics(rng)
			for m, x := range v {
				set.Layout.SetMetric(r, w, Metric(m), x)
			}
		}
	}
	return set, rows
}

func benchMetrics(rng *rand.Rand) [numMetrics]float64 {
	var v [numMetrics]float64
	v[Impressions] = float64(rng.IntN(10000))
	v[Reach] = v[Impressions] / (1 + rng.Float64()*4)
	v[Clicks] = float64(rng.IntN(300))
	v[LinkClicks] = v[Clicks] * rng.Float64()
	v[Spend] = rng.Float64() * 250
	v[Purchases] = float64(rng.IntN(4) * rng.IntN(5))
	v[PurchaseValue] = v[Purchases] * 40 * rng.Float64()
	return v
}

// BenchmarkEvaluate runs 20 rules over 10,000 objects with three windows; one op is
// one (rule, object) evaluation.
func BenchmarkEvaluate(b *testing.B) {
	set, rows := benchSet(b)
	var rules []*Rule
	for _, g := range set.Groups {
		rules = append(rules, g.Rules...)
	}
	matches := 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		for _, r := range rules {
			for i := range rows {
				if _, m := r.Match(&rows[i]); m {
					matches++
				}
				n++
				if n == b.N {
					goto done
				}
			}
		}
	}
done:
	if b.N >= benchObjects && matches == 0 {
		b.Fatal("no rule matched: the benchmark data is wrong")
	}
}

// exprWindow and exprEnv are the same data as a struct, for plain expr; derived
// metrics are precomputed fields, which flatters expr.
type exprWindow struct {
	Spend         float64 `expr:"spend"`
	Impressions   float64 `expr:"impressions"`
	Reach         float64 `expr:"reach"`
	Clicks        float64 `expr:"clicks"`
	LinkClicks    float64 `expr:"link_clicks"`
	Purchases     float64 `expr:"purchases"`
	PurchaseValue float64 `expr:"purchase_value"`
	CPA           float64 `expr:"cpa"`
	CTR           float64 `expr:"ctr"`
	CPC           float64 `expr:"cpc"`
	CPM           float64 `expr:"cpm"`
	ROAS          float64 `expr:"roas"`
	Frequency     float64 `expr:"frequency"`
}

type exprEnv struct {
	exprWindow
	EffectiveStatus string `expr:"effective_status"`
	Campaign        struct {
		Objective string `expr:"objective"`
	} `expr:"campaign"`
	Today     exprWindow `expr:"today"`
	Yesterday exprWindow `expr:"yesterday"`
}

func exprWindowOf(v [numMetrics]float64) exprWindow {
	w := exprWindow{Spend: v[Spend], Impressions: v[Impressions], Reach: v[Reach], Clicks: v[Clicks], LinkClicks: v[LinkClicks], Purchases: v[Purchases], PurchaseValue: v[PurchaseValue]}
	w.CPA, w.CTR, w.CPC = div(w.Spend, w.Purchases), div(w.Clicks, w.Impressions)*100, div(w.Spend, w.Clicks)
	w.CPM, w.ROAS, w.Frequency = div(w.Spend, w.Impressions)*1000, div(w.PurchaseValue, w.Spend), div(w.Impressions, w.Reach)
	return w
}

// BenchmarkEvaluatePlainExpr evaluates the same rules on expr's VM, the reference the
// spec's target is measured against. (Without three-valued logic: NaN comparisons
// are simply false there.)
func BenchmarkEvaluatePlainExpr(b *testing.B) {
	set, _ := benchSet(b)
	var programs []*vm.Program
	for _, r := range set.Groups[0].Rules {
		p, err := expr.Compile(r.When, expr.Env(&exprEnv{}), expr.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		programs = append(programs, p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	envs := make([]exprEnv, benchObjects)
	for i := range envs {
		e := &envs[i]
		e.EffectiveStatus = []string{"ACTIVE", "PAUSED"}[rng.IntN(2)]
		e.Campaign.Objective = []string{"OUTCOME_SALES", "OUTCOME_LEADS"}[rng.IntN(2)]
		e.Today = exprWindowOf(benchMetrics(rng))
		e.Yesterday = exprWindowOf(benchMetrics(rng))
		e.exprWindow = exprWindowOf(benchMetrics(rng))
	}
	var machine vm.VM
	matches := 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		for _, p := range programs {
			for i := range envs {
				out, err := machine.Run(p, &envs[i])
				if err != nil {
					b.Fatal(err)
				}
				if out.(bool) {
					matches++
				}
				n++
				if n == b.N {
					goto done
				}
			}
		}
	}
done:
	if b.N >= benchObjects && matches == 0 {
		b.Fatal("no rule matched")
	}
}
