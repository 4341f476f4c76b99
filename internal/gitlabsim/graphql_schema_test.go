package gitlabsim

import (
	"testing"

	graphql "github.com/graph-gophers/graphql-go"
)

func TestGraphQLSchemaParses(t *testing.T) {
	if _, err := graphql.ParseSchema(graphQLSchema, nil); err != nil {
		t.Fatalf("schema.graphql: %v", err)
	}
}
