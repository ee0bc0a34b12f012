package fakegraph

import (
	"fmt"
	"net/http"
)

// APIError is a Graph error, rendered as {"error": {...}} with a fresh fbtrace_id.
type APIError struct {
	Message     string
	Type        string // default OAuthException
	Code        int
	Subcode     int    // 0 = no error_subcode key
	UserTitle   string // error_user_title, omitted when empty
	UserMsg     string // error_user_msg, omitted when empty
	IsTransient bool
	// HTTPStatus defaults to 400, which is how Graph sends nearly every error, throttling included.
	HTTPStatus int
	// BlameFields fills error_data.blame_field_specs.
	BlameFields []string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("graph error %d/%d: %s", e.Code, e.Subcode, e.Message)
}

func (e *APIError) status() int {
	if e.HTTPStatus != 0 {
		return e.HTTPStatus
	}
	return http.StatusBadRequest
}

func (e *APIError) body(trace string) jobj {
	typ := e.Type
	if typ == "" {
		typ = "OAuthException"
	}
	o := jobj{{"message", e.Message}, {"type", typ}, {"code", e.Code}}
	if e.Subcode != 0 {
		o = append(o, kv{"error_subcode", e.Subcode})
	}
	if e.IsTransient {
		o = append(o, kv{"is_transient", true})
	}
	if e.UserTitle != "" {
		o = append(o, kv{"error_user_title", e.UserTitle})
	}
	if e.UserMsg != "" {
		o = append(o, kv{"error_user_msg", e.UserMsg})
	}
	if len(e.BlameFields) > 0 {
		specs := make([]any, len(e.BlameFields))
		for i, f := range e.BlameFields {
			specs[i] = []string{f}
		}
		o = append(o, kv{"error_data", jobj{{"blame_field_specs", specs}}})
	}
	o = append(o, kv{"fbtrace_id", trace})
	return jobj{{"error", o}}
}

// knownErrors holds the canonical bodies of the errors the daemon must handle (graph-api 5-7, 13).
var knownErrors = map[[2]int]APIError{
	{1, 0}:        {Message: "An unknown error occurred", Code: 1, IsTransient: true, HTTPStatus: 500},
	{2, 0}:        {Message: "An unexpected error has occurred. Please retry your request later.", Code: 2, IsTransient: true},
	{4, 0}:        {Message: "(#4) Application request limit reached", Code: 4, IsTransient: true},
	{10, 0}:       {Message: "(#10) Application does not have permission for this action", Code: 10},
	{17, 0}:       {Message: "(#17) User request limit reached", Code: 17, IsTransient: true},
	{17, 2446079}: {Message: "(#17) User request limit reached", Code: 17, Subcode: 2446079, IsTransient: true},
	{100, 0}:      {Message: "(#100) Invalid parameter", Code: 100},
	{100, 33}: {Message: "Unsupported request. Object does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
		Type: "GraphMethodException", Code: 100, Subcode: 33},
	{100, 1504018}: {Message: "Please reduce the amount of data you're asking for, then retry your request", Code: 100, Subcode: 1504018,
		IsTransient: true, UserTitle: "Request Timed Out", UserMsg: "The request took too long to process. Reduce the amount of data or use an asynchronous job."},
	{100, 1885272}: {Message: "Invalid parameter", Code: 100, Subcode: 1885272, UserTitle: "Budget Is Too Low",
		UserMsg: "The budget for this ad set must be at least $1.00 per day.", BlameFields: []string{"daily_budget"}},
	{100, 1885621}: {Message: "Invalid parameter", Code: 100, Subcode: 1885621, UserTitle: "Can't Set Budget",
		UserMsg: "You can only set an ad set budget or a campaign budget."},
	{104, 0}:   {Message: "An access token is required to request this resource.", Code: 104},
	{190, 0}:   {Message: "Invalid OAuth access token - Cannot parse access token", Code: 190},
	{190, 463}: {Message: "Error validating access token: Session has expired on Tuesday, 12-Mar-24 15:00:00 PDT.", Code: 190, Subcode: 463},
	{200, 0}:   {Message: "(#200) Ad account owner has NOT grant ads_management or ads_read permission", Code: 200},
	{613, 0}:   {Message: "(#613) Calls to this api have exceeded the rate limit.", Code: 613, IsTransient: true},
	{613, 1487742}: {Message: "(#613) Calls to this api have exceeded the rate limit.", Code: 613, Subcode: 1487742, IsTransient: true,
		UserTitle: "Too Many Calls", UserMsg: "There have been too many calls from this ad-account. Please wait a bit and try again."},
	{613, 1487632}: {Message: "(#613) Calls to this api have exceeded the rate limit.", Code: 613, Subcode: 1487632,
		UserTitle: "Budget Change Limit Reached", UserMsg: "You can only change your budget 4 times per hour. Please try again later."},
	{2601, 1815107}: {Message: "(#2601) Error accessing adreport job.", Code: 2601, Subcode: 1815107, IsTransient: true},
	{2635, 0}:       {Message: "(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version.", Code: 2635},
	{80000, 2446079}: {Message: "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-insights.",
		Code: 80000, Subcode: 2446079, IsTransient: true},
	{80004, 2446079}: {Message: "(#80004) There have been too many calls to this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.",
		Code: 80004, Subcode: 2446079, IsTransient: true},
}

// NewAPIError returns the canonical error for a code and subcode (messages as Graph sends
// them); an unknown pair gets a generic "(#code)" message.
func NewAPIError(code, subcode int) *APIError {
	if e, ok := knownErrors[[2]int{code, subcode}]; ok {
		return &e
	}
	if e, ok := knownErrors[[2]int{code, 0}]; ok {
		e.Subcode = subcode
		return &e
	}
	return &APIError{Message: fmt.Sprintf("(#%d) An error occurred", code), Code: code, Subcode: subcode}
}

func errParam(format string, a ...any) *APIError {
	return &APIError{Message: "(#100) " + fmt.Sprintf(format, a...), Code: 100}
}

func errNoObject(method, id string) *APIError {
	e := NewAPIError(100, 33)
	e.Message = fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
		method, id)
	return e
}
