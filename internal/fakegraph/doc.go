// Package fakegraph is a simulated Meta Marketing API (Graph API) for rulesd's tests,
// benchmarks and demo. A client written against /work/shared/graph-api.md should work against
// it unchanged: it serves the same paths, parameters and wire formats over real HTTP
// (httptest or any http.Server), over data that a test scripts object by object or that
// Generate derives from a seed, on a clock the caller controls.
//
// What is faithful (graph-api.md sections 1-9, with section 13's recorded behaviour winning):
//   - Routes: GET /{ver}/act_{id}, /act_{id}/campaigns|adsets|ads|insights, GET /{ver}/{id},
//     /{campaign}/adsets|ads, /{adset}/ads, /{id}/insights, POST /{ver}/{id} (updates),
//     DELETE /{ver}/{id}, POST /act_{id}/insights (async jobs), GET /{report_run_id}[/insights],
//     batch on POST / and POST /{ver}. Any v{N}.0 prefix (or none) is accepted.
//   - Objects: only requested fields (only id without `fields`); budgets as minor-unit strings,
//     "0" for the unused one; no budget keys on the level that does not hold the budget (CBO);
//     bid_amount as a JSON number; timestamps as 2006-01-02T15:04:05-0700 in the account's
//     zone; effective_status derived from the parents; DELETED and ARCHIVED left out of edges
//     unless asked for; opaque id-based cursors and absolute paging URLs on the request's host
//     whose query starts with access_token; `next` only when more rows exist.
//   - Insights: dates, presets and time_range in the account's time zone (last_Nd excludes
//     today); every number a string without fixed formatting; empty lists omitted; requested
//     counters "0"; no row without delivery; date_start/date_stop always present; one purchase
//     under several action types in a varying order; attribution-window keys only on request;
//     short offset cursors.
//   - Async jobs: report_run_id as a string, Not Started -> Started -> Running (rising percent)
//     -> Running at 100% (results fail with 2601/1815107) -> Completed; or Failed / Skipped.
//   - Writes: {"success":true}; 4 budget changes per hour per object then 613/1487632 and an
//     hour's lock; CBO exclusivity 100/1885621; minimum daily budget per currency 100/1885272;
//     invalid status 100; archived/deleted edit rules.
//   - Errors: HTTP 400 (500 for code 1) with the {"error":{…,"fbtrace_id"}} envelope and a
//     WWW-Authenticate header; throttling as OAuthException 80000 / 80004 (or 17, 613)
//     with subcode 2446079 and no user title; 190 for a bad token, appsecret_proof checked.
//   - Usage headers on every response (X-App-Usage, X-Business-Use-Case-Usage keyed by the bare
//     account number, X-Ad-Account-Usage, X-FB-Ads-Insights-Throttle on insights), from a
//     per-account score (read 1 point, write 3) that decays over a window on the server clock.
//
// What is simplified is listed in README.md beside this file; the main points: reach is
// summed (not deduplicated) across days and ads, paused-then-resumed generated ads deliver as if
// never paused on past days, budgets do not change generated spend, async jobs advance per poll
// rather than with time, and only the fields and parameters listed in README.md are known.
//
// Scripting: New(Options) then AddAccount/AddCampaign/AddAdSet/AddAd and SetDaily/AddDaily for
// exact data, or Generate for volume; Object, Objects, Metrics, Writes, Requests and Counters to
// inspect; Inject, SetFaultRates, SetLatency, ThrottleAccount, SetAsync and QueueAsync for
// faults. Everything is safe for concurrent use.
package fakegraph
