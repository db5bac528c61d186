package main

import (
	"reflect"
	"testing"

	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/plans"
)

func TestS3Settings(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		in   *plans.RepositoryS3
		want s3be.Config
	}{
		{"none: the SDK's chain", nil, s3be.Config{}},
		{"every field", &plans.RepositoryS3{
			AccessKeyIDEnv: "ID", AccessKeyIDFile: "/id", SecretAccessKeyEnv: "KEY", SecretAccessKeyFile: "/key",
			CredentialsFile: "/aws", Profile: "p", Region: "eu-1", PathStyle: &yes, EC2Metadata: true,
		}, s3be.Config{
			AccessKeyIDEnv: "ID", AccessKeyIDFile: "/id", SecretAccessKeyEnv: "KEY", SecretAccessKeyFile: "/key",
			CredentialsFile: "/aws", Profile: "p", Region: "eu-1", PathStyle: &yes, EC2Metadata: true,
		}},
	} {
		if got := s3Settings(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
