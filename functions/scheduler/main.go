// Command scheduler is the Lambda function that starts a discovery run. EventBridge
// Scheduler invokes it on the template's ScanSchedule; a person with aws lambda invoke.
// A second trigger while a run is active starts nothing and says so.
// The logic lives in internal/lambdaapp and internal/discovery.
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
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("scheduler: cannot start", "err", err)
		os.Exit(1)
	}
	lambda.Start(app.Schedule)
}
