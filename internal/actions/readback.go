package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"

	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/state"
)

// Getter is the part of the Graph client that reads one object.
type Getter interface {
	Get(ctx context.Context, r graph.Request) ([]byte, error)
}

// ObjectField is an object's current value of one field, as the executor reads it
// back, and the object's name.
type ObjectField struct {
	// Value: a status, a budget or bid in minor units, or absent for an unset budget
	// or bid ("0" or no key).
	Value state.Value
	Name  string
}

// ReadField reads one field of one object now: GET /{objectID}?fields=FIELD,name,
// parsed as the executor's read-back is. accountID selects the token and the rate
// limit state; the error describes the failure with no token or URL (see
// DescribeError).
func ReadField(ctx context.Context, g Getter, accountID, objectID, field string) (ObjectField, error) {
	body, err := g.Get(ctx, graph.Request{
		Account: accountID,
		Path:    objectID,
		Params:  url.Values{"fields": {field + ",name"}},
	})
	if err != nil {
		return ObjectField{}, err
	}
	v, err := decodeField(body, field)
	if err != nil {
		return ObjectField{}, err
	}
	var obj struct {
		Name string `json:"name"`
	}
	// The body decoded as an object above; a name that is not a string is no name.
	_ = json.NewDecoder(bytes.NewReader(body)).Decode(&obj)
	return ObjectField{Value: v, Name: obj.Name}, nil
}

// SameValue reports whether a and b are the same value of field, as the executor
// compares a read-back with its target: a budget or bid of 0 is unset, like an
// absent one.
func SameValue(field string, a, b state.Value) bool { return same(field, a, b) }

// DescribeError renders an error from the Graph for people, as write failures are
// described in the audit log: Meta's code and message, never a token or a URL.
func DescribeError(err error) string { return classify(err).what }
