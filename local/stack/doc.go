// Package stack holds no code: its directory has up.sh and down.sh (make local-up and
// make local-down), and its tests check the deployment files around the agent:
// local/Dockerfile, docker-compose.yml, docker-compose.production.yml, .env.example, the
// local stack the scripts start, and the commands of docs/RUNBOOK.md.
package stack
