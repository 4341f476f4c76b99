package gitlabsim

import (
	"context"
	"fmt"

	graphql "github.com/graph-gophers/graphql-go"
)

// environmentsPerRequest is GitLab's limit on Project.environments: "This field can
// only be resolved for one project in any single request" (FieldCallCount, limit 1).
const environmentsPerRequest = 1

// environmentConn is GitLab's EnvironmentConnection: a plain connection, no count.
type environmentConn struct {
	*conn[gqlEnvironment]
}

// Environments answers the first project of a request that asks, in document order;
// every further one gets null and GitLab's LimitError, as the field extension raises it.
func (r *gqlProject) Environments(ctx context.Context, args pageArgs) (*environmentConn, error) {
	st := stateOf(ctx)
	if first := st.environmentsOf; (first != "" && first != r.rest().PathWithNamespace) || st.environments.Add(1) > environmentsPerRequest {
		return nil, fmt.Errorf("\"environments\" field can be requested only for %d Project(s) at a time.", environmentsPerRequest) //nolint:staticcheck // GitLab's wording
	}
	n := 0
	if r.readEnvironment(ctx) {
		n = int(r.p.count(cEnvironments))
	}
	p, in := r.p, r.s.in
	c, err := newConn(n, args, func(k int) *gqlEnvironment { return &gqlEnvironment{in.environment(p, int64(k))} })
	if err != nil {
		return nil, err
	}
	return &environmentConn{c}, nil
}

// readEnvironment is GitLab's read_environment: prevented with CI/CD off (REST's
// environments answer 403 then) and where the simulator forbids the endpoint.
// Without it GitLab redacts each environment from the connection, so the page is
// empty rather than null.
func (r *gqlProject) readEnvironment(ctx context.Context) bool {
	return r.p.has(fJobs) && !r.denied(ctx, clsEnvironments)
}

type gqlEnvironment struct{ e apiEnvironment }

func (e *gqlEnvironment) ID() graphql.ID { return gid("Environment", e.e.ID) }
func (e *gqlEnvironment) Name() string   { return e.e.Name }
func (e *gqlEnvironment) State() string  { return e.e.State }

// UserPermissions are the token user's abilities on the project.
func (r *gqlProject) UserPermissions() *gqlProjectPermissions { return &gqlProjectPermissions{r} }

type gqlProjectPermissions struct{ r *gqlProject }

func (p *gqlProjectPermissions) ReadEnvironment(ctx context.Context) bool {
	return p.r.readEnvironment(ctx)
}
