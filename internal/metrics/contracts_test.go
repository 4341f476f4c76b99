package metrics_test

import (
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// Both sinks plug into the GitLab client and the discovery handlers.
var (
	_ gitlab.Observer    = (*metrics.Metrics)(nil)
	_ discovery.Recorder = (*metrics.Metrics)(nil)
	_ gitlab.Observer    = (*metrics.EMF)(nil)
	_ discovery.Recorder = (*metrics.EMF)(nil)
	_ gitlab.Observer    = metrics.Sink(nil)
	_ discovery.Recorder = metrics.Sink(nil)
)
