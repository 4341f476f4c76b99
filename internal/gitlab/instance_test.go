package gitlab

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestStatisticsCount(t *testing.T) {
	tests := []struct {
		raw     string
		want    int64
		wantErr bool
	}{
		{`"50"`, 50, false},
		{`"12,345"`, 12345, false}, // GitLab delimits thousands in its strings
		{`7`, 7, false},            // newer versions write numbers
		{`"-1"`, 0, true},
		{`"many"`, 0, true},
		{`null`, 0, true},
		{``, 0, true},
	}
	for _, tt := range tests {
		got, err := statisticsCount(json.RawMessage(tt.raw))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("statisticsCount(%s) = %d, %v; want %d, error %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("statisticsCount(%s) error %v does not wrap ErrMalformed", tt.raw, err)
		}
	}
}
