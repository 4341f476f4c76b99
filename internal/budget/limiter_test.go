package budget_test

import (
	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

var _ gitlab.Limiter = (*budget.Memory)(nil)
