// Command worker is the Lambda function that scans groups: the scan queue's SQS event
// source (ReportBatchItemFailures) delivers group messages to it in batches.
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
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("worker: cannot start", "err", err)
		os.Exit(1)
	}
	lambda.Start(app.Work)
}
