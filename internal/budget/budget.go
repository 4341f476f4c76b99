// Package budget paces GitLab API calls: a shared request rate that follows what GitLab
// announces, pauses on exhausted limits, and a per-run cap on the number of calls.
// Memory implements it within one process; internal/dynamobudget shares it between
// Lambda invocations in DynamoDB.
package budget

import "errors"

// ErrExhausted is returned (wrapped) by Wait once the run's call budget is spent.
var ErrExhausted = errors.New("API call budget exhausted")
