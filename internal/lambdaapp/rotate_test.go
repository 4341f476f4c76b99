package lambdaapp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// TestRotatedTokenReadOnce: a function started with a token GitLab no longer accepts
// reads the secret again on the 401, once, and goes on with the new token; while the
// secret holds the rejected token, the 401 stands and the secret is not read again.
func TestRotatedTokenReadOnce(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 9, Groups: 1, Projects: 1})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(f.srv.Config(ctx))
	put := func(v string) {
		t.Helper()
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(f.settings.TokenSecretARN), SecretString: aws.String(v),
		}); err != nil {
			t.Fatal(err)
		}
	}
	const old = "glpat-revoked-before-rotation-0000"
	put(old)
	a := f.app(t) // cold start with the old token

	for i := range 2 {
		if err := a.CheckGitLab(ctx); !errors.Is(err, gitlab.ErrUnauthorized) {
			t.Fatalf("check %d with the secret unchanged: %v; want ErrUnauthorized", i, err)
		}
	}
	if n := a.rotation.rereads.Load(); n != 1 {
		t.Errorf("secret read %d times after 401s for one token; want once", n)
	}

	b := f.app(t) // another cold start with the old token; then the token is rotated
	put(`{"token":"` + token + `"}`)
	for i := range 2 {
		if err := b.CheckGitLab(ctx); err != nil {
			t.Fatalf("check %d after rotation: %v", i, err)
		}
	}
	if n := b.rotation.rereads.Load(); n != 1 {
		t.Errorf("secret read %d times after the rotation; want once", n)
	}
	// The client's errors are redacted of the token requests carry now, not only of
	// the one it was built with (gitlab's TestRedactsTokensTheTransportSends).
	if got := b.rotation.tokens(); len(got) != 1 || got[0] != token {
		t.Errorf("tokens to redact after the rotation = %q; want the rotated one", got)
	}
	if !strings.Contains(f.logs.String(), "the secret holds a new one (rotated)") {
		t.Errorf("no log of the rotation:\n%s", f.logs.String())
	}
}
