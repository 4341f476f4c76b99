package metrics

import "time"

// ExerciseAll records one of each event and leaves a run in progress, so that a scrape
// shows every metric family the agent can export. The configuration tests (dashboard,
// alerts, runbook) check the names their queries use against such a scrape.
func ExerciseAll(s Sink) {
	s.RunStarted("run-1")
	s.Request("projects/:id", 200, 50*time.Millisecond)
	s.Retry("429")
	s.RateLimitRemaining(100)
	s.EffectiveRPM(1900)
	s.GroupDone("complete")
	s.ProjectDone("complete", "ready")
	s.ScanError("forbidden", "hooks")
	s.QueueDepth(3)
	s.SetBudgetTokens(10)
	s.SetDeadLetters(0)
	s.RunFinished(true, time.Minute)
	s.RunStarted("run-2")
	s.RateLimitRemaining(100)
	s.EffectiveRPM(1900)
}
