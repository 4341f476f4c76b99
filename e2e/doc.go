// Package e2e runs the Lambda functions end to end on one machine: each function's
// bootstrap under aws-lambda-rie, moto_server as AWS, the GitLab simulator as GitLab.
// The harness plays the SQS event source (batches, batchItemFailures, redelivery
// after the visibility timeout) and compares the S3 exports with the simulator's
// truth. e2e_test.go runs it as a test; cmd/e2e-aws (make e2e-aws) runs it to watch.
package e2e
