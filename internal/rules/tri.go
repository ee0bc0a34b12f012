package rules

// Tri is a three-valued truth value (Kleene logic): a comparison with a missing value
// is Unknown, and a rule matches only when its conditions are True.
type Tri uint8

// The truth values.
const (
	False Tri = iota
	True
	Unknown
)

func (t Tri) String() string {
	switch t {
	case False:
		return "false"
	case True:
		return "true"
	}
	return "unknown"
}

func triOf(b bool) Tri {
	if b {
		return True
	}
	return False
}

func triNot(t Tri) Tri {
	switch t {
	case False:
		return True
	case True:
		return False
	}
	return Unknown
}
