package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/yamlx"
)

// Duration is a time.Duration written as Go writes it ("90m", "1h30m") or with whole
// days and weeks ("90d", "2w"), which retention and cooldowns need.
type Duration time.Duration

// ParseDuration parses a duration in the form of Duration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			// NaN, Inf and overflowing values would convert to a negative Duration.
			if err != nil || !(v >= 0) || v*float64(unit) >= math.MaxInt64 {
				return 0, fmt.Errorf("invalid duration %q (write e.g. 30m, 6h, 7d)", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (write e.g. 30m, 6h, 7d)", s)
	}
	return d, nil
}

// DecodeYAML implements yamlx.NodeDecoder.
func (d *Duration) DecodeYAML(dec *yamlx.Decoder, n *yaml.Node, key string) {
	if n.Kind != yaml.ScalarNode {
		dec.Errorf(n, "%s must be a duration such as 30m, 6h or 7d", yamlx.Describe(key))
		return
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		dec.Errorf(n, "%s: %v", yamlx.Describe(key), err)
		return
	}
	*d = Duration(v)
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
