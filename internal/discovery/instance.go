package discovery

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// instance asks GitLab what it is, once per run: the scheduler has the token, and the
// run record carries the answer to whichever process exports (in Lambda the exporter
// asks GitLab nothing). Two calls; the totals need an admin token, and a 403 leaves
// them unknown. Nothing here fails the run: it is a fact for the summary, not scope.
func (s *Scheduler) instance(ctx context.Context, log *slog.Logger) *inventory.Instance {
	v, err := s.GitLab.Version(ctx)
	if err != nil {
		log.Warn("could not read the GitLab version; summary.json's instance stays null", "err", err)
		return nil
	}
	in := &inventory.Instance{Version: v.Version, Revision: v.Revision, Enterprise: v.Enterprise}
	t, err := s.GitLab.Totals(ctx)
	switch {
	case errors.Is(err, gitlab.ErrForbidden):
		log.Debug("the token is not an administrator's: the instance's user and project totals stay unknown")
	case err != nil:
		log.Warn("could not read the instance's totals; they stay unknown", "err", err)
	default:
		in.Users, in.Projects = &t.Users, &t.Projects
	}
	return in
}
