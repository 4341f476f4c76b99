package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Scheduler starts runs: it checks the token, resolves the root groups and queues one
// group-scan message per root.
type Scheduler struct {
	Store      Store
	Queue      Queue
	GitLab     *gitlab.Client
	GitLabURL  string
	RootGroups []string // paths or numeric IDs; empty = every top-level group
	// IncludePersonal adds the projects of personal (user) namespaces to the run.
	IncludePersonal bool
	// IncludeMembers (INCLUDE_MEMBERS): profiles read members, which the estimate counts.
	IncludeMembers bool
	// API (GITLAB_API) decides which API's calls the estimate counts.
	API string
	// RPM is RATE_LIMIT_RPM, the ceiling an estimate's duration assumes; 0 = none.
	RPM int
	// StaleAfter is STALE_AFTER, recorded on the run so the export judges staleness
	// against the run's start whichever process writes it.
	StaleAfter time.Duration
	// MaxCountCalls bounds the requests a run start spends counting its projects
	// (default DefaultMaxCountCalls); past it the run starts without a total. Above
	// GitLab's count cap the count walks 100 projects a request, and the Lambda
	// scheduler has 60 s: a million-project root must not keep the run from starting.
	MaxCountCalls int
	Log           *slog.Logger
	Now           func() time.Time // default time.Now
}

// DefaultMaxCountCalls is Scheduler.MaxCountCalls's default: exact totals up to about
// 30,000 projects a root, and a few seconds at GitLab.com's rate.
const DefaultMaxCountCalls = 200

// countTimeout bounds the count in time as well, for a slow GitLab.
const countTimeout = 20 * time.Second

// boundedEstimate is estimate within MaxCountCalls requests and countTimeout; `scan
// --dry-run` (Estimate) counts without these bounds.
func (s *Scheduler) boundedEstimate(ctx context.Context, msgs []work.Message) (Estimate, error) {
	limit := s.MaxCountCalls
	if limit <= 0 {
		limit = DefaultMaxCountCalls
	}
	ctx, cancel := context.WithTimeout(ctx, countTimeout)
	defer cancel()
	ctx, _ = gitlab.WithCallCounter(ctx, limit)
	return s.estimate(ctx, msgs, false)
}

type fullKey struct{}

// WithFull marks the runs started under ctx as full: every project is profiled again
// instead of being carried over from the previous run. It is a context value so that
// every way of starting a run (scan --full, POST /runs, the Lambda scheduler's
// payload) reaches Start through the layers between without a parameter each.
func WithFull(ctx context.Context) context.Context {
	return context.WithValue(ctx, fullKey{}, true)
}

// IsFull reports whether ctx asks for a full run (WithFull).
func IsFull(ctx context.Context) bool {
	full, _ := ctx.Value(fullKey{}).(bool)
	return full
}

// Start begins a run. When a run is already active it starts nothing and returns that
// run with started false: one run at a time.
func (s *Scheduler) Start(ctx context.Context) (run inventory.Run, started bool, err error) {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	if active, ok, err := s.Store.ActiveRun(ctx); err != nil {
		return inventory.Run{}, false, fmt.Errorf("start run: %w", err)
	} else if ok {
		log.Info("a run is already active; not starting another", "run_id", active.ID, "status", active.Status)
		return active, false, nil
	}
	ctx, calls := gitlab.WithCallCounter(ctx, 0)
	// A bad token or an unreachable GitLab fails here, before any run exists.
	if _, err := s.GitLab.CurrentUser(ctx); err != nil {
		return inventory.Run{}, false, fmt.Errorf("start run: check token: %w", err)
	}

	msgs, roots, err := s.roots(ctx)
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("start run: %w", err)
	}
	inst := s.instance(ctx, log)
	// Counted before the run exists, so that its record holds the total; a count that
	// fails leaves the total unknown and the run goes on.
	est, err := s.boundedEstimate(ctx, msgs)
	if err != nil {
		log.Warn("could not count the projects in scope; the progress line shows no total", "err", err)
		est.Projects = 0
	}
	if s.IncludePersonal {
		msgs = append(msgs, work.Message{Kind: work.KindPersonal})
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if len(msgs) == 0 {
		// An empty inventory would read as an estate without projects.
		return inventory.Run{}, false, fmt.Errorf("start run: %w", ErrSeesNothing)
	}
	run = inventory.Run{ID: NewRunID(now()), GitLabURL: s.GitLabURL, RootGroups: roots, Status: inventory.RunRunning, StartedAt: now().UTC(),
		Scope: &inventory.Scope{RootGroups: slices.Clone(s.RootGroups), IncludePersonal: s.IncludePersonal},
		Full:  IsFull(ctx), ProjectsInScope: est.Projects, StaleAfter: s.StaleAfter,
		Instance: inst}
	if err := s.Store.CreateRun(ctx, run); errors.Is(err, ErrRunActive) {
		active, _, aerr := s.Store.ActiveRun(ctx)
		log.Info("a run is already active; not starting another", "run_id", active.ID)
		return active, false, aerr
	} else if err != nil {
		return inventory.Run{}, false, fmt.Errorf("start run: %w", err)
	}
	log = log.With("run_id", run.ID)
	if err := s.Store.AddAPICalls(ctx, run.ID, calls()); err != nil {
		return run, true, fmt.Errorf("start run %s: count API calls: %w", run.ID, err)
	}

	keys := make([]string, len(msgs))
	for i := range msgs {
		msgs[i].RunID = run.ID
		keys[i] = msgs[i].Key()
	}
	if err := s.Store.AddPending(ctx, run.ID, keys...); err != nil {
		return run, true, s.abandon(ctx, run, fmt.Errorf("start run %s: count roots: %w", run.ID, err))
	}
	if err := s.Queue.Send(ctx, msgs...); err != nil {
		return run, true, s.abandon(ctx, run, fmt.Errorf("start run %s: queue roots: %w", run.ID, err))
	}
	log.Info("run started", append([]any{"root_groups", len(msgs), "full", run.Full}, est.LogAttrs()...)...)
	return run, true, nil
}

// ErrRootsMissing: a root group of ROOT_GROUPS does not exist or the token cannot see it.
var ErrRootsMissing = errors.New("root groups not visible")

// ErrSeesNothing: without ROOT_GROUPS, the token sees no top-level group.
var ErrSeesNothing = errors.New("the token sees no groups: give it access to the groups to scan, or set ROOT_GROUPS")

func (s *Scheduler) roots(ctx context.Context) ([]work.Message, []string, error) {
	if len(s.RootGroups) > 0 {
		msgs, err := s.resolveRoots(ctx)
		return msgs, s.RootGroups, err
	}
	groups, err := s.GitLab.TopLevelGroups(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list top-level groups: %w", err)
	}
	msgs := make([]work.Message, len(groups))
	roots := make([]string, len(groups))
	for i, g := range groups {
		msgs[i] = work.Message{Kind: work.KindGroup, GroupID: g.ID, GroupPath: g.FullPath}
		roots[i] = g.FullPath
	}
	return msgs, roots, nil
}

// resolveRoots looks up every configured root group, so that one that does not exist
// or that the token cannot see fails the start naming it, rather than a run that
// succeeds without it. A root listed twice, or inside another root, is scanned once.
func (s *Scheduler) resolveRoots(ctx context.Context) ([]work.Message, error) {
	var (
		groups  []gitlab.Group
		missing []string
	)
	for _, r := range s.RootGroups {
		g, err := s.GitLab.Group(ctx, r)
		switch {
		case errors.Is(err, gitlab.ErrNotFound):
			missing = append(missing, strconv.Quote(r)+" (404)")
		case errors.Is(err, gitlab.ErrForbidden):
			missing = append(missing, strconv.Quote(r)+" (403)")
		case err != nil:
			return nil, fmt.Errorf("look up root group %q: %w", r, err)
		default:
			groups = append(groups, g)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: ROOT_GROUPS names %s, which GitLab does not show this token: fix ROOT_GROUPS or the token's access",
			ErrRootsMissing, strings.Join(missing, ", "))
	}
	var msgs []work.Message
	for i, g := range groups {
		covered := slices.ContainsFunc(groups[:i], func(o gitlab.Group) bool { return o.ID == g.ID })
		for _, o := range groups {
			covered = covered || strings.HasPrefix(g.FullPath, o.FullPath+"/")
		}
		if !covered {
			msgs = append(msgs, work.Message{Kind: work.KindGroup, GroupID: g.ID, GroupPath: g.FullPath, ParentID: g.ParentID})
		}
	}
	return msgs, nil
}

// abandon marks a run that could not be queued as failed, so that it does not hold the
// one-run-at-a-time lock with nothing queued; the next trigger starts afresh.
func (s *Scheduler) abandon(ctx context.Context, run inventory.Run, cause error) error {
	run.Status = inventory.RunFailed
	run.FinishedAt = time.Now().UTC()
	run.Reason = cause.Error()
	if err := s.Store.UpdateRun(context.WithoutCancel(ctx), run); err != nil {
		return errors.Join(cause, fmt.Errorf("mark run %s failed: %w", run.ID, err))
	}
	return cause
}

// NewRunID returns a sortable, unique run ID such as 20261125T173400Z-1a2b3c.
func NewRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
