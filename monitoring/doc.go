// Package monitoring holds no code: its directory is the Prometheus, Alertmanager and
// Grafana configuration of the discovery agent, and its tests check that
// configuration with promtool, amtool and the agent's real metrics.
package monitoring
