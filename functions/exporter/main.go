// Command exporter is the Lambda function that writes a finished run's exports to S3
// when the export queue delivers the run's export message.
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
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("exporter: cannot start", "err", err)
		os.Exit(1)
	}
	lambda.Start(app.Export)
}
