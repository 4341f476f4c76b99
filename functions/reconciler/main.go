// Command reconciler is the Lambda function that keeps a long run alive: invoked on a
// schedule, it re-sends the active run's pending work whose message SQS no longer holds
// (expired after the retention period, or lost), and queues a forgotten export.
// The logic lives in internal/lambdaapp.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
)

func main() {
	app, err := lambdaapp.Load(context.Background())
	if err != nil {
		// A cold start that cannot configure itself fails the init; Lambda logs it.
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("reconciler: cannot start", "err", err)
		os.Exit(1)
	}
	lambda.Start(app.Reconcile)
}
