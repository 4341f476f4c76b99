// Command sleeper is a Lambda function that ignores its deadline: it sleeps for the
// duration its event names, or answers at once. TestFunctionTimeout runs it under
// aws-lambda-rie to check the harness's timeout model.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Sleep string `json:"sleep"`
}

func main() {
	lambda.Start(func(_ context.Context, e event) (string, error) {
		d, _ := time.ParseDuration(e.Sleep)
		time.Sleep(d)
		return "awake", nil
	})
}
