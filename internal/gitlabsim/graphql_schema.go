package gitlabsim

import _ "embed"

// graphQLSchema is the subset of GitLab's GraphQL schema the simulator serves at
// POST /api/graphql; see the file's header for the GitLab sources it follows.
//
//go:embed schema.graphql
var graphQLSchema string
